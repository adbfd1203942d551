"""Two-factor authentication (issue 11, Accounts): required for stewards, committee
members, the DPO, auditors and administrators before any page of their role; optional
for learners and analysts. Every sign-in here goes through allauth's real forms with
real codes computed from the secret, as an authenticator app would."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal import auth as totp_auth
from django.core.checks import run_checks
from django.test import Client

from governance.models import Committee, CommitteeMembership, Role
from governance.services import accounts
from tests.factories import (
    PASSWORD,
    give_totp,
    make_dataset,
    make_user,
    recovery_codes,
    totp_code,
)

pytestmark = pytest.mark.django_db

SETUP = "/accounts/2fa/"
ROLE_PAGES = {
    Role.STEWARD: ["/", "/datasets/new/", "/reviews/stewards/", "/reviews/corrections/"],
    Role.DPO: ["/", "/people/", "/policies/new/"],
    Role.AUDITOR: ["/", "/audit/"],
    Role.ADMINISTRATOR: ["/", "/audit/", "/admin/"],
    Role.COMMITTEE: ["/", "/reviews/committee/", "/reviews/objections/"],
}


@pytest.fixture
def clock(monkeypatch):
    """The time allauth's TOTP check sees (codes are valid for 30 seconds and each is
    accepted once); ``clock.now`` moves it without sleeping."""
    clock = SimpleNamespace(now=time.time())
    monkeypatch.setattr(totp_auth, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


def sign_in(client: Client, user, *, code: str | None = None):
    """The sign-in form, then (if the login has a second factor) the code form."""
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    if code is not None:
        assert response["Location"] == "/accounts/2fa/authenticate/"
        response = client.post("/accounts/2fa/authenticate/", {"code": code})
    return response


def confirm(client: Client):
    """allauth asks for the password again before a change to how one signs in."""
    response = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert response.status_code == 302, response.content.decode()


@pytest.mark.parametrize("role", list(ROLE_PAGES))
def test_a_role_that_needs_mfa_is_taken_to_set_it_up_from_every_page(role):
    user = make_user(role, is_superuser=role == Role.ADMINISTRATOR)
    if role == Role.STEWARD:
        make_dataset(user)
    client = Client()
    response = sign_in(client, user)
    assert response.status_code == 302
    for page in ROLE_PAGES[role] + ["/accounts/profile/", "/datasets/"]:
        response = client.get(page)
        assert (response.status_code, response["Location"]) == (302, SETUP), page
    setup = client.get(SETUP)
    text = setup.content.decode()
    assert "Your role needs two-factor authentication" in text
    assert "Authenticator app" in text and "Security keys" in text
    # A session-authenticated API call is refused with a message, not redirected.
    response = client.get("/api/v1/datasets/")
    assert response.status_code == 403
    assert "two-factor authentication" in response.json()["message"]
    # What setting up needs stays open: the account pages, sign-out, static files.
    assert client.get("/accounts/password/change/").status_code == 200
    # Setting up asks for the password again first (allauth), then shows the secret.
    response = client.get("/accounts/2fa/totp/activate/")
    assert response["Location"].startswith("/accounts/reauthenticate/")
    confirm(client)
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    assert client.get("/static/css/custos.css").status_code != 302
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"


def test_a_committee_seat_alone_needs_mfa():
    member = make_user()  # no role: only a seat
    committee = Committee.objects.create(slug="ethics", name="Ethics", quorum=1)
    CommitteeMembership.objects.create(committee=committee, user=member, seat="chair")
    client = Client()
    sign_in(client, member)
    assert client.get("/reviews/objections/")["Location"] == SETUP


@pytest.mark.parametrize("role", [None, Role.ANALYST])
def test_learners_and_analysts_need_no_second_factor(role):
    user = make_user(*([role] if role else []))
    client = Client()
    response = sign_in(client, user)
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/me/").status_code == 200
    assert client.get("/api/v1/datasets/").status_code == 200
    if role:
        assert client.get("/requests/").status_code == 200
    # Optional: they may still set one up.
    assert client.get(SETUP).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_steward_sets_up_an_app_then_signs_in_with_its_codes(clock):
    steward = make_user(Role.STEWARD)
    client = Client()
    sign_in(client, steward)
    assert client.get("/reviews/stewards/")["Location"] == SETUP
    confirm(client)
    page = client.get("/accounts/2fa/totp/activate/")
    assert "Authenticator secret" in page.content.decode()
    secret = client.session[totp_auth.SECRET_SESSION_KEY]

    wrong = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    response = client.post(
        "/accounts/2fa/totp/activate/", {"code": totp_code(secret, at=clock.now)}
    )
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=steward, type="totp").exists()
    assert len(recovery_codes(steward)) == 10
    # The code just entered proved the app: the steward's pages open at once.
    assert client.get("/reviews/stewards/").status_code == 200

    client.post("/accounts/logout/")
    clock.now += 30
    response = client.post("/accounts/login/", {"login": steward.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/reviews/stewards/")["Location"].startswith("/accounts/login/")
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "123456"})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    code = totp_code(secret, at=clock.now)
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response["Location"] == "/"
    assert client.get("/reviews/stewards/").status_code == 200
    assert client.get("/datasets/new/").status_code == 200

    # The same code does not open a second session.
    other = Client()
    other.post("/accounts/login/", {"login": steward.email, "password": PASSWORD})
    replay = other.post("/accounts/2fa/authenticate/", {"code": code})
    assert replay.status_code == 200 and "Incorrect code" in replay.content.decode()
    assert other.get("/reviews/stewards/")["Location"].startswith("/accounts/login/")


def test_signing_in_with_an_app_code(clock):
    steward = make_user(Role.STEWARD)
    secret = give_totp(steward)
    client = Client()
    sign_in(client, steward, code=totp_code(secret, at=clock.now))
    assert client.get("/reviews/stewards/").status_code == 200
    assert client.get("/api/v1/datasets/").status_code == 200


def test_a_recovery_code_signs_in_once():
    auditor = make_user(Role.AUDITOR)
    give_totp(auditor)
    code = recovery_codes(auditor)[0]
    client = Client()
    response = sign_in(client, auditor, code=code)
    assert response["Location"] == "/"
    assert client.get("/audit/").status_code == 200
    assert len(recovery_codes(auditor)) == 9

    again = Client()
    response = sign_in(again, auditor, code=code)
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert again.get("/audit/")["Location"].startswith("/accounts/login/")


def test_a_session_that_did_not_use_the_factor_is_asked_for_it(clock):
    """A session signed in before the factor was added (or in another browser) asks
    for a code before the role's pages, then goes where the person was going."""
    dpo = make_user(Role.DPO)
    secret = give_totp(dpo)
    client = Client()
    client.force_login_password_only(dpo)
    response = client.get("/people/")
    assert response["Location"] == "/accounts/2fa/reauthenticate/?next=%2Fpeople%2F"
    response = client.post(response["Location"], {"code": totp_code(secret, at=clock.now)})
    assert response["Location"] == "/people/"
    assert client.get("/people/").status_code == 200


def test_removing_the_last_factor_takes_a_steward_back_to_set_up(clock):
    steward = make_user(Role.STEWARD)
    secret = give_totp(steward)
    client = Client()
    sign_in(client, steward, code=totp_code(secret, at=clock.now))
    assert client.get("/reviews/stewards/").status_code == 200
    confirm(client)
    response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=steward).exists()
    assert client.get("/reviews/stewards/")["Location"] == SETUP


def test_an_api_token_works_without_a_browser_session():
    """Tokens are made on the profile page, which a role that needs two-factor
    authentication reaches only after it; a token is not a session login."""
    steward = make_user(Role.STEWARD)
    _, secret = accounts.api_token_create(actor=steward, user=steward, name="script")
    response = Client().get("/api/v1/datasets/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    client = Client()
    sign_in(client, steward)
    assert client.get("/accounts/profile/")["Location"] == SETUP


def test_the_demo_setting_skips_mfa_and_says_so(settings):
    settings.CUSTOS_DEMO_SKIP_MFA = True
    steward = make_user(Role.STEWARD)
    client = Client()
    assert "Demo: MFA not enforced" in client.get("/accounts/login/").content.decode()
    sign_in(client, steward)
    page = client.get("/reviews/stewards/")
    assert page.status_code == 200 and "Demo: MFA not enforced" in page.content.decode()
    assert "Demo: MFA not enforced" in client.get("/").content.decode()

    settings.CUSTOS_DEMO_SKIP_MFA = False
    assert "Demo: MFA not enforced" not in Client().get("/accounts/login/").content.decode()
    assert client.get("/reviews/stewards/")["Location"] == SETUP


def test_check_deploy_refuses_the_demo_setting(settings):
    settings.CUSTOS_DEMO_SKIP_MFA = True
    ids = {m.id for m in run_checks(include_deployment_checks=True)}
    assert "custos.E011" in ids
    settings.CUSTOS_DEMO_SKIP_MFA = False
    ids = {m.id for m in run_checks(include_deployment_checks=True)}
    assert "custos.E011" not in ids


# --- findings of the security review of this change, replayed --------------------------


def test_the_admin_sign_in_is_allauths_so_the_password_alone_opens_nothing():
    """Found: Django's /admin/login/ signed an administrator in with the password alone;
    from there allauth's password re-check opened the recovery codes, and one of them
    passed the second factor. The admin's sign-in is now allauth's."""
    admin = make_user(Role.ADMINISTRATOR, email="root@example.org", is_superuser=True)
    give_totp(admin)
    client = Client()
    response = client.post("/admin/login/", {"username": admin.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert client.get("/admin/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_session_without_its_factor_reaches_no_page_that_manages_factors(clock):
    """However a password-only session of a login with a factor came about, it may only
    enter that factor (or sign out): not the recovery codes, not a new authenticator,
    not the password re-check that allauth accepts for those pages."""
    admin = make_user(Role.ADMINISTRATOR, is_superuser=True)
    secret = give_totp(admin)
    client = Client()
    client.force_login_password_only(admin)
    for path in (
        "/accounts/2fa/recovery-codes/",
        "/accounts/2fa/recovery-codes/generate/",
        "/accounts/2fa/totp/deactivate/",
        "/accounts/2fa/webauthn/add/",
        "/accounts/reauthenticate/",
        "/accounts/2fa/",
        "/accounts/sessions/",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/2fa/reauthenticate/"), path
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    assert client.get("/accounts/2fa/recovery-codes/").status_code == 302
    assert client.get("/admin/").status_code == 302
    # The code itself still lets them in.
    response = client.post(
        "/accounts/2fa/reauthenticate/?next=/admin/", {"code": totp_code(secret, at=clock.now)}
    )
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_wrong_codes_are_limited_so_the_code_cannot_be_guessed(clock):
    """Found: 300 wrong codes in a row were each answered "Incorrect code", and the right
    one still worked. Now 5 wrong codes refuse every code, the right one too, for 15
    minutes."""
    steward = make_user(Role.STEWARD)
    secret = give_totp(steward)
    client = Client()
    response = client.post("/accounts/login/", {"login": steward.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    for wrong in ("000000", "111111", "222222", "333333", "444444"):
        response = client.post("/accounts/2fa/authenticate/", {"code": wrong})
        assert "Incorrect code" in response.content.decode()
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret, at=clock.now)})
    assert response.status_code == 200
    assert "Too many wrong codes" in response.content.decode()
    assert client.get("/reviews/stewards/").status_code == 302
