"""Single sign-on through OpenID Connect, against a real provider (issue 11, "Accounts").

The provider is allauth's own OpenID Connect identity provider, a small Django project
of its own (tests/oidc_provider), migrated, seeded and started with ``runserver`` in a
separate process on a free loopback port. Custos runs on pytest-django's live server,
and a real HTTP client (requests) follows every redirect between the two: Custos's
sign-in page → the provider's authorisation endpoint → its sign-in page → its consent
page → Custos's callback, which exchanges the code for tokens over HTTP and checks the
ID token's signature with the provider's published keys.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.urls import reverse

from governance.models import AccountEvent, AccountEventKind, Clearance, Person, Role, User
from tests.factories import make_user
from tests.oidc_provider.seed import PASSWORD as PROVIDER_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_NAME = "Example Identity"
CLIENT_SECRET = "custos-test-client-secret"  # noqa: S105 - the test provider's client


# --- the provider ---------------------------------------------------------------------


@dataclass
class Provider:
    url: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def provider(live_server, tmp_path_factory):
    """The identity provider, running until the module's tests are done."""
    workdir = tmp_path_factory.mktemp("oidc-provider")
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
        "OIDC_PROVIDER_DB": str(workdir / "provider.sqlite3"),
        "OIDC_PROVIDER_PRIVATE_KEY": _private_key_pem(),
        "PYTHONPATH": str(ROOT),
    }
    callback = f"{live_server.url}/accounts/oidc/sso/login/callback/"

    def run(*args):
        subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True
        )

    run("-m", "django", "migrate", "--noinput")
    run("-m", "tests.oidc_provider.seed", callback, CLIENT_SECRET)
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the test identity provider did not start:\n"
                    + (workdir / "server.log").read_text()
                )
            time.sleep(0.2)
        yield Provider(url=url)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def sso(provider, settings, transactional_db):
    """Custos configured for the provider, as CUSTOS_OIDC_* would configure it. (The
    database fixture is named, not marked, so that tests/conftest.py puts the migrations'
    rows back after the live server's test empties the tables.)"""
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": PROVIDER_NAME,
                    "client_id": "custos",
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": provider.url},
                }
            ],
        }
    }
    return provider


# --- a browser without JavaScript ------------------------------------------------------


class _Forms(HTMLParser):
    """Every form of a page: its action, and the name/value pairs it would submit (a
    name may repeat, as checkboxes do), with each submit button's own pair kept apart."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._button: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "fields": [], "buttons": []})
        elif not self.forms:
            return
        elif tag == "input":
            kind = attrs.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in attrs:
                return
            if kind == "submit":
                self.forms[-1]["buttons"].append(
                    {"name": attrs.get("name"), "value": attrs.get("value", ""), "text": ""}
                )
            elif attrs.get("name"):
                self.forms[-1]["fields"].append((attrs["name"], attrs.get("value", "")))
        elif tag == "button":
            self._button = {"name": attrs.get("name"), "value": attrs.get("value", ""), "text": ""}
            self.forms[-1]["buttons"].append(self._button)

    def handle_data(self, data):
        if self._button is not None:
            self._button["text"] += data

    def handle_endtag(self, tag):
        if tag == "button":
            self._button = None


def _submit(session, response, *, button: str = "", **values):
    """Submit the form of ``response`` holding the button whose text contains
    ``button`` (or the only form), with ``values`` filled in, following redirects."""
    parser = _Forms()
    parser.feed(response.text)
    candidates = [
        (form, b)
        for form in parser.forms
        for b in (form["buttons"] or [None])
        if not button or (b and button in b["text"].strip())
    ]
    assert candidates, f"no form with “{button}” at {response.url}:\n{response.text[:3000]}"
    form, pressed = candidates[0]
    data = [(k, v) for k, v in form["fields"] if k not in values] + list(values.items())
    if pressed and pressed["name"]:
        data.append((pressed["name"], pressed["value"]))
    return session.post(urljoin(response.url, form["action"]), data=data, timeout=30)


def sign_in_with_provider(live_server, email: str):
    """Sign-in page → provider → sign in there → consent → back to Custos."""
    session = requests.Session()
    page = session.get(f"{live_server.url}/accounts/login/", timeout=30)
    at_provider = _submit(session, page, button=f"Sign in with {PROVIDER_NAME}")
    assert at_provider.url.startswith("http://127.0.0.1:"), at_provider.url
    consent = _submit(session, at_provider, login=email, password=PROVIDER_PASSWORD)
    assert "Authorize" in consent.text, consent.text[:2000]
    back = _submit(session, consent, button="Authorize")
    assert back.url.startswith(live_server.url), back.url
    return session, back


def _signed_in_as(session, live_server) -> str | None:
    response = session.get(f"{live_server.url}/accounts/profile/", timeout=30)
    if response.url.startswith(f"{live_server.url}/accounts/login/"):
        return None
    assert response.status_code == 200
    return response.text


def _dpo_sets_sso_signup(*, enabled: bool, parameters: dict | None = None):
    dpo = Client()
    dpo.force_login(make_user(Role.DPO))
    response = dpo.post(
        reverse("rule-edit", args=["sso-signup"]),
        {
            "severity": "block",
            "enabled": "on" if enabled else "",
            "description": "",
            "parameters": json.dumps(parameters or {}),
        },
    )
    assert response.status_code == 302, response.content.decode()


# --- the tests ----------------------------------------------------------------------------


def test_the_sign_in_page_offers_the_provider_only_when_configured(db, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert "Sign in with" not in Client().get("/accounts/login/").content.decode()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": PROVIDER_NAME,
                    "client_id": "custos",
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": "http://127.0.0.1:9"},
                }
            ]
        }
    }
    assert f"Sign in with {PROVIDER_NAME}" in Client().get("/accounts/login/").content.decode()


def test_an_existing_login_is_matched_by_verified_email_and_keeps_its_roles(live_server, sso):
    analyst = make_user(Role.ANALYST, email="known@example.org", clearance=Clearance.PERSONAL)
    session, landing = sign_in_with_provider(live_server, "known@example.org")
    assert landing.status_code == 200 and landing.url == f"{live_server.url}/", landing.text[-3000:]
    profile = _signed_in_as(session, live_server)
    assert profile and "known@example.org" in profile and "Analyst" in profile
    analyst.refresh_from_db()
    assert set(analyst.groups.values_list("name", flat=True)) == {Role.ANALYST}
    assert analyst.clearance == Clearance.PERSONAL
    # Still one login, its password untouched, and the identity remembered.
    assert User.objects.filter(email="known@example.org").count() == 1
    assert analyst.has_usable_password()
    assert analyst.socialaccount_set.get().provider == "sso"
    event = AccountEvent.objects.get(event=AccountEventKind.SIGNED_IN, user=analyst)
    assert event.method == "sso" and PROVIDER_NAME in event.detail
    # Signing in again goes through the remembered identity.
    session, landing = sign_in_with_provider(live_server, "known@example.org")
    assert "known@example.org" in _signed_in_as(session, live_server)


def test_a_steward_signing_in_by_sso_still_sets_up_two_factor_authentication(live_server, sso):
    """SSO does not lift Custos's own rule: a role that needs a second factor is taken
    to set one up before any page of the role."""
    make_user(Role.STEWARD, email="known@example.org")
    session, landing = sign_in_with_provider(live_server, "known@example.org")
    assert landing.url.startswith(f"{live_server.url}/accounts/2fa/"), landing.url
    signoffs = session.get(f"{live_server.url}/reviews/stewards/", allow_redirects=False)
    assert signoffs.status_code == 302 and "/accounts/2fa/" in signoffs.headers["Location"]


def test_an_unknown_address_is_refused_until_the_dpo_allows_sso_logins(live_server, sso):
    person = Person.objects.create(external_id="E-1001", name="Nia", email="newcomer@example.org")
    session, refused = sign_in_with_provider(live_server, "newcomer@example.org")
    assert refused.status_code == 403
    assert "data protection officer has not allowed" in refused.text
    assert _signed_in_as(session, live_server) is None
    assert not User.objects.filter(email="newcomer@example.org").exists()
    refusal = AccountEvent.objects.get(event=AccountEventKind.SSO_REFUSED)
    assert refusal.email == "newcomer@example.org"

    # The DPO allows it only for another domain: still refused.
    _dpo_sets_sso_signup(enabled=True, parameters={"domains": ["example.com"]})
    _, refused = sign_in_with_provider(live_server, "newcomer@example.org")
    assert refused.status_code == 403

    _dpo_sets_sso_signup(enabled=True, parameters={"domains": ["example.org"]})
    session, landing = sign_in_with_provider(live_server, "newcomer@example.org")
    assert landing.status_code == 200
    assert "newcomer@example.org" in _signed_in_as(session, live_server)
    user = User.objects.get(email="newcomer@example.org")
    # A data subject's login: no roles, the default clearance, linked to the person.
    assert not user.groups.exists() and not user.is_staff
    assert user.clearance == Clearance.INTERNAL
    assert user.full_name == "Nia Newcomer"
    assert not user.has_usable_password()
    person.refresh_from_db()
    assert person.user == user
    assert AccountEvent.objects.filter(event=AccountEventKind.SIGNED_IN, user=user).exists()


def test_an_unverified_address_never_signs_in_nor_gets_a_login(live_server, sso):
    existing = make_user(Role.ANALYST, email="unverified@example.org")
    _dpo_sets_sso_signup(enabled=True)
    session, refused = sign_in_with_provider(live_server, "unverified@example.org")
    assert refused.status_code == 403
    assert "did not confirm that it has verified your e-mail address" in refused.text
    assert _signed_in_as(session, live_server) is None
    assert not existing.socialaccount_set.exists()
    assert User.objects.filter(email="unverified@example.org").count() == 1
    assert AccountEvent.objects.filter(
        event=AccountEventKind.SSO_REFUSED, email="unverified@example.org"
    ).exists()
    assert not AccountEvent.objects.filter(event=AccountEventKind.SIGNED_IN, user=existing).exists()


def test_single_sign_on_is_configured_from_the_environment():
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("CUSTOS_OIDC_")
    } | {
        "DJANGO_SETTINGS_MODULE": "governance.settings",
        "CUSTOS_OIDC_SERVER_URL": "https://login.example.org/realms/staff",
        "CUSTOS_OIDC_CLIENT_ID": "custos-portal",
        "CUSTOS_OIDC_CLIENT_SECRET": "from-the-vault",
        "CUSTOS_OIDC_NAME": "Example staff login",
    }
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.SOCIALACCOUNT_PROVIDERS))"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True
    ).stdout
    (app,) = json.loads(out)["openid_connect"]["APPS"]
    assert app == {
        "provider_id": "sso",
        "name": "Example staff login",
        "client_id": "custos-portal",
        "secret": "from-the-vault",
        "settings": {"server_url": "https://login.example.org/realms/staff"},
    }
    # The sign-in form is redirected to the provider: the policy lets it go there only.
    policy = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']))"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", policy], cwd=ROOT, env=env, check=True, capture_output=True
    ).stdout
    assert json.loads(out) == ["'self'", "https://login.example.org"]
    del env["CUSTOS_OIDC_SERVER_URL"]
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True
    ).stdout
    assert json.loads(out) == {}
