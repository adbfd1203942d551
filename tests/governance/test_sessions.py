"""Sessions (issue 11, Accounts): they end when the browser closes, after 30 minutes
without a request and 12 hours after sign-in; "sign out everywhere" ends them all.
Time moves by setting the session's own clock values, never by sleeping."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.models import Role, User
from governance.signin import SEEN_KEY, SIGNED_IN_KEY
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def _signed_in(user) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _shift(client: Client, **seconds_ago):
    """Move the session's sign-in and last-renewal times into the past."""
    session = client.session
    now = timezone.now().timestamp()
    for key, ago in seconds_ago.items():
        session[{"signed_in": SIGNED_IN_KEY, "seen": SEEN_KEY}[key]] = now - ago
    session.save()


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_session_cookie_ends_with_the_browser():
    client = _signed_in(make_user(Role.ANALYST))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == "" and cookie["expires"] == ""


def test_thirty_minutes_without_a_request_signs_out():
    client = _signed_in(make_user(Role.ANALYST))
    _shift(client, seen=29 * 60)
    assert client.get("/requests/").status_code == 200  # renewed: the clock restarts
    assert timezone.now().timestamp() - client.session[SEEN_KEY] < 5

    _shift(client, seen=31 * 60)
    response = client.get("/requests/")
    assert response["Location"] == "/accounts/login/?next=/requests/"
    assert "30 minutes without activity" in " ".join(_messages(response))
    assert client.get("/").status_code == 302
    assert client.get("/api/v1/requests/").status_code in (401, 403)


def test_the_session_is_renewed_at_most_once_a_minute():
    client = _signed_in(make_user(Role.ANALYST))
    client.get("/")
    _shift(client, seen=30)
    before = client.session[SEEN_KEY]
    with CaptureQueriesContext(connection) as quiet:
        client.get("/")
    assert client.session[SEEN_KEY] == before, "renewed within the minute"
    _shift(client, seen=61)
    with CaptureQueriesContext(connection) as renewing:
        client.get("/")
    assert client.session[SEEN_KEY] > before + 30
    # The renewal is the only difference: a write of the session, once a minute.
    assert len(renewing.captured_queries) > len(quiet.captured_queries)
    assert any("django_session" in q["sql"] for q in renewing.captured_queries)
    assert not any(
        q["sql"].startswith(("UPDATE", "INSERT")) and "django_session" in q["sql"]
        for q in quiet.captured_queries
    )


def test_twelve_hours_after_sign_in_signs_out_however_active():
    client = _signed_in(make_user(Role.ANALYST))
    _shift(client, signed_in=11 * 3600 + 3500, seen=10)
    assert client.get("/").status_code == 200
    _shift(client, signed_in=12 * 3600 + 1, seen=10)
    response = client.get("/requests/")
    assert response["Location"].startswith("/accounts/login/")
    assert "12 hours after signing in" in " ".join(_messages(response))
    assert client.get("/").status_code == 302


def test_sign_out_everywhere_ends_every_session_and_is_in_the_audit_trail():
    steward = make_user(Role.STEWARD)
    laptop, phone, forced = Client(), Client(), Client()
    for client in (laptop, phone):
        client.force_login(steward)  # a sign-in with both factors (tests/conftest.py)
    forced.force_login(steward)
    other = Client()
    other_user = make_user(Role.STEWARD)
    other.force_login(other_user)
    for client in (laptop, phone, forced, other):
        assert client.get("/reviews/stewards/").status_code == 200

    profile = laptop.get("/accounts/profile/").content.decode()
    assert "Sign out everywhere" in profile and "Two-factor authentication" in profile
    response = laptop.post("/accounts/profile/sign-out-everywhere/")
    assert response["Location"] == "/accounts/login/"
    assert "signed out everywhere" in " ".join(_messages(response))
    for client in (laptop, phone, forced):
        assert client.get("/reviews/stewards/")["Location"].startswith("/accounts/login/")
    assert other.get("/reviews/stewards/").status_code == 200  # someone else's session

    # Signing in again works, and the new session is not caught by the old sign-out.
    steward.refresh_from_db()
    again = Client()
    again.force_login(steward)
    assert again.get("/reviews/stewards/").status_code == 200

    auditor = Client()
    auditor.force_login(make_user(Role.AUDITOR))
    timeline = auditor.get("/audit/?kind=user").content.decode()
    assert steward.email in timeline
    history = auditor.get(f"/audit/objects/user/{steward.pk}/").content.decode()
    assert "signed out everywhere at" in history.lower()
    assert User.objects.get(pk=steward.pk).signed_out_everywhere_at is not None


def test_the_sessions_page_lists_sign_ins_in_plain_words():
    client = _signed_in(make_user(Role.ANALYST))
    page = client.get("/accounts/sessions/").content.decode()
    assert "Where you are signed in" in page and "this browser" in page
    assert "Sign out everywhere" in page


def test_sign_out_everywhere_is_a_post():
    client = Client()
    client.force_login(make_user())
    assert client.get("/accounts/profile/sign-out-everywhere/").status_code == 405
    assert client.get("/").status_code == 200
