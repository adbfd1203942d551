"""Signing in, password reset, navigation by role, profile tokens, people and the admin."""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from governance.models import ApiToken, Person, Role, User
from governance.services import registry
from tests.factories import PASSWORD, make_dataset, make_user

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_sign_in_with_email_and_out():
    user = make_user(Role.ANALYST, email="ana@example.org")
    client = Client()
    response = client.post("/accounts/login/", {"login": "ana@example.org", "password": "nope"})
    assert response.status_code == 200 and "correct" in response.content.decode()
    response = client.post("/accounts/login/", {"login": "ana@example.org", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").context["user"] == user
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_password_reset_by_email():
    make_user(email="reset@example.org")
    client = Client()
    client.post("/accounts/password/reset/", {"email": "reset@example.org"})
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["reset@example.org"]
    link = re.search(
        r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body
    ).group(1)
    form_url = client.get(link)["Location"]
    response = client.post(
        form_url,
        {"password1": "a fresh passphrase 42", "password2": "a fresh passphrase 42"},
    )
    assert response.status_code == 302
    assert User.objects.get(email="reset@example.org").check_password("a fresh passphrase 42")


def test_navigation_shows_only_what_roles_allow():
    def nav(user):
        html = _client(user).get("/").content.decode()
        main_nav = html[html.index('<nav aria-label="Main">') : html.index("</nav>")]
        return set(re.findall(r">([A-Za-z ]+)</a>", main_nav))

    assert nav(make_user()) == {
        "Dashboard",
        "Catalogue",
        "Purposes",
        "Policies",
        "Rules",
        "Inbox",
        "API",
    }
    assert "People" in nav(make_user(Role.DPO))
    assert "People" not in nav(make_user(Role.STEWARD))
    assert "Admin" in nav(make_user(Role.ADMINISTRATOR, is_superuser=True))
    assert "Admin" not in nav(make_user(Role.AUDITOR))


def test_profile_creates_a_token_shown_once_and_revokes_it():
    user = make_user(Role.ANALYST)
    client = _client(user)
    response = client.post(
        "/accounts/profile/", {"name": "laptop", "scope": "read", "expires_in_days": "90"}
    )
    secret = re.search(r'<pre id="new-token">(\S+)</pre>', response.content.decode()).group(1)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/datasets/").status_code == 200
    assert secret not in client.get("/accounts/profile/").content.decode()
    token = ApiToken.objects.get(user=user)
    assert token.key_hash != secret and secret.startswith(token.prefix)
    client.post("/accounts/profile/", {"revoke": token.pk})
    assert api.get("/api/v1/datasets/").status_code == 401
    other = make_user()
    _client(other).post("/accounts/profile/", {"revoke": token.pk})  # not theirs: 404
    assert ApiToken.history.filter(id=token.pk).first().history_user == user


def test_dpo_imports_people_in_the_ui_and_links_a_login_by_hand():
    dpo = make_user(Role.DPO)
    learner = make_user(email="kim@example.org")
    unlinked = make_user(email="someone-else@example.org")
    client = _client(dpo)
    csv = b"external_id,name,email,org_unit\nE1,Kim,kim@example.org,Sales\nE2,Lou,,HR\n"
    response = client.post("/people/import/", {"file": io.BytesIO(csv)})
    assert response.status_code == 302
    assert Person.objects.get(external_id="E1").user == learner
    bad = b"external_id,name,email,org_unit\nE3,Max,not-an-email,HR\n"
    response = client.post("/people/import/", {"file": io.BytesIO(bad)})
    assert "row 1 (line 2), column email: not a valid e-mail address" in response.content.decode()
    assert not Person.objects.filter(external_id="E3").exists()
    lou = Person.objects.get(external_id="E2")
    response = client.post(f"/people/{lou.pk}/", {"user": unlinked.pk})
    assert response.status_code == 302
    lou.refresh_from_db()
    assert lou.user == unlinked
    assert "someone-else@example.org" in client.get(f"/people/{lou.pk}/").content.decode()
    response = client.post(f"/people/{lou.pk}/", {"user": learner.pk})  # already Kim's
    assert "already linked" in response.content.decode()


def test_dpo_edits_any_purpose_and_a_new_consent_text_is_a_new_version():
    steward = make_user(Role.STEWARD)
    purpose = registry.purpose_create(
        actor=steward,
        slug="support",
        name="Support",
        category="learning_support",
        expected_benefit="Help",
        legal_basis="consent",
        consent_text="I agree.",
    )
    dpo = make_user(Role.DPO)
    response = _client(dpo).post(
        "/purposes/support/edit/",
        {
            "name": "Support",
            "category": "learning_support",
            "expected_benefit": "Help",
            "legal_basis": "consent",
            "consent_text": "I agree, and I can withdraw.",
        },
    )
    assert response.status_code == 302
    purpose.refresh_from_db()
    assert purpose.consent_version == 2
    assert purpose.history.first().history_user == dpo
    response = _client(dpo).post(
        "/purposes/new/",
        {
            "name": "X",
            "slug": "x",
            "category": "research",
            "expected_benefit": "Y",
            "legal_basis": "consent",
            "consent_text": "",
        },
    )
    assert "needs a consent text" in response.content.decode()


def test_admin_shows_every_model_with_history_and_object_permissions():
    admin = make_user(Role.ADMINISTRATOR, is_superuser=True)
    steward = make_user(Role.STEWARD)
    dataset = make_dataset(steward, fields=[("module", "category", "internal")])
    client = _client(admin)
    for model in [
        "user",
        "person",
        "purpose",
        "tag",
        "dataset",
        "field",
        "recordload",
        "record",
        "policy",
        "apitoken",
    ]:
        url = reverse(f"admin:governance_{model}_changelist")
        assert client.get(url).status_code == 200, url
    assert (
        client.get(reverse("admin:governance_dataset_history", args=[dataset.pk])).status_code
        == 200
    )
    permissions = client.get(f"/admin/governance/dataset/{dataset.pk}/permissions/")
    assert permissions.status_code == 200
    # An admin edit of the stewards moves the guardian permission with it.
    other = make_user(Role.STEWARD)
    form = (
        client.get(reverse("admin:governance_dataset_change", args=[dataset.pk]))
        .context["adminform"]
        .form
    )
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {
            "stewards": [other.pk],
            "tags": [],
            "purposes": [],
            "fields-TOTAL_FORMS": "0",
            "fields-INITIAL_FORMS": "0",
        }
    )
    response = client.post(reverse("admin:governance_dataset_change", args=[dataset.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(pk=other.pk).has_perm("governance.steward_dataset", dataset)
    assert not User.objects.get(pk=steward.pk).has_perm("governance.steward_dataset", dataset)
    assert dataset.history.first().history_user == admin


def test_the_profile_links_to_a_password_change_that_works():
    """Found: there was no password-change page."""
    user = make_user(Role.ANALYST, email="changer@example.org")
    client = _client(user)
    profile = client.get("/accounts/profile/").content.decode()
    assert 'href="/accounts/password/change/"' in profile
    page = client.get("/accounts/password/change/")
    assert page.status_code == 200 and "Current password" in page.content.decode()
    wrong = client.post(
        "/accounts/password/change/",
        {"oldpassword": "not it", "password1": "n3w passphrase!", "password2": "n3w passphrase!"},
    )
    assert wrong.status_code == 200
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "n3w passphrase!", "password2": "n3w passphrase!"},
    )
    assert response.status_code == 302
    assert User.objects.get(pk=user.pk).check_password("n3w passphrase!")
