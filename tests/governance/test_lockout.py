"""Lockout after failed sign-ins (issue 11, "Accounts"): the finding was 50 wrong
passwords against one account with no lockout, no delay, the right password still
working, and every attempt paying for a password hash.

Failed sign-ins are counted in the database by django-axes, so every test starts with
none (the test's transaction is rolled back); allauth's remaining cache-based limits get
a fresh cache namespace per test (tests/conftest.py).
"""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from governance.models import AccountEvent, AccountEventKind, Role, User
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LOCKED_WORDS = "Too many failed sign-ins"


def _sign_in(client: Client, email: str, password: str, *, ip: str = "10.0.0.1"):
    return client.post(LOGIN, {"login": email, "password": password}, REMOTE_ADDR=ip)


def _signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def _audit_rows(kind: str = "accountevent") -> list[dict]:
    auditor = Client()
    auditor.force_login(make_user(Role.AUDITOR, clearance="personal"))
    response = auditor.get("/api/v1/audit/events", {"kind": kind})
    assert response.status_code == 200
    return response.json()["results"]


@pytest.fixture
def hashes(monkeypatch):
    """How many times a password is checked against its hash (the costly part)."""
    calls = []
    original = User.check_password

    def counting(self, raw):
        calls.append(self.email)
        return original(self, raw)

    monkeypatch.setattr(User, "check_password", counting)
    return calls


def test_fifty_wrong_passwords_lock_the_account_after_five(hashes):
    user = make_user(Role.ANALYST, email="target@example.org")
    attacker = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for attempt in range(1, 51):
            response = _sign_in(attacker, "target@example.org", f"guess {attempt}")
            if attempt < 5:
                assert response.status_code == 200
                assert LOCKED_WORDS not in response.content.decode()
            else:
                # The fifth failure locks; every attempt after it is refused outright.
                assert response.status_code == 429, attempt
                assert LOCKED_WORDS in response.content.decode()
            # A patient attacker (one guess every 3 seconds, all within 15 minutes).
            clock.shift(datetime.timedelta(seconds=3))
        # Only the five counted attempts paid for a password hash.
        assert len(hashes) == 5
        # The right password, even from another address, is refused with the message.
        owner = Client()
        response = _sign_in(owner, "target@example.org", PASSWORD, ip="10.9.9.9")
        assert response.status_code == 429
        assert "15 minutes" in response.content.decode()
        assert not _signed_in(owner)
        assert len(hashes) == 5

    events = AccountEvent.objects.filter(event=AccountEventKind.LOCKED_OUT)
    assert [(e.email, e.user_id, e.ip_address) for e in events] == [
        ("target@example.org", user.pk, "10.0.0.1")
    ]
    assert "account" in events[0].detail


def test_twenty_failures_from_one_address_lock_that_address():
    victims = [make_user(email=f"person{i}@example.org") for i in range(8)]
    bystander = make_user(email="bystander@example.org")
    attacker = Client()
    # 20 failures spread over 8 accounts (at most 3 each, under the per-account limit).
    for attempt in range(20):
        victim = victims[attempt % len(victims)]
        response = _sign_in(attacker, victim.email, "wrong", ip="10.0.0.66")
    assert response.status_code == 429 and LOCKED_WORDS in response.content.decode()
    # Now even a right password from that address is refused...
    response = _sign_in(Client(), bystander.email, PASSWORD, ip="10.0.0.66")
    assert response.status_code == 429
    # ...while the same accounts still sign in from elsewhere.
    elsewhere = Client()
    response = _sign_in(elsewhere, bystander.email, PASSWORD, ip="10.0.0.2")
    assert response.status_code == 302 and _signed_in(elsewhere)
    event = AccountEvent.objects.get(event=AccountEventKind.LOCKED_OUT)
    assert event.ip_address == "10.0.0.66" and "address" in event.detail


def test_four_failures_then_the_right_password_signs_in():
    make_user(email="clumsy@example.org")
    client = Client()
    for _ in range(4):
        assert _sign_in(client, "clumsy@example.org", "typo").status_code == 200
    assert _sign_in(client, "clumsy@example.org", PASSWORD).status_code == 302
    assert _signed_in(client)
    assert not AccountEvent.objects.filter(event=AccountEventKind.LOCKED_OUT).exists()


def test_the_lock_lifts_after_fifteen_minutes():
    make_user(email="later@example.org")
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):
            _sign_in(Client(), "later@example.org", "wrong")
        clock.shift(datetime.timedelta(minutes=14))
        assert _sign_in(Client(), "later@example.org", PASSWORD).status_code == 429
        clock.shift(datetime.timedelta(minutes=1, seconds=1))
        client = Client()
        assert _sign_in(client, "later@example.org", PASSWORD).status_code == 302
        assert _signed_in(client)


def test_the_django_admin_sign_in_is_the_locked_sign_in_too(hashes):
    """The Django admin has no password form of its own: it sends people to the
    sign-in page, whose lockout (and second factor) applies."""
    make_user(Role.ADMINISTRATOR, email="root@example.org", is_superuser=True)
    client = Client()
    response = client.post("/admin/login/", {"username": "root@example.org", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not hashes, "the admin's form checks no password"
    for _ in range(5):
        _sign_in(client, "root@example.org", "x", ip="1.2.3.4")
    response = _sign_in(client, "root@example.org", PASSWORD, ip="1.2.3.4")
    assert response.status_code == 429 and LOCKED_WORDS in response.content.decode()
    assert not hashes[5:]


def test_an_administrator_unlocks_and_both_are_in_the_audit_trail():
    locked = make_user(Role.ANALYST, email="locked@example.org")
    for _ in range(5):
        _sign_in(Client(), "locked@example.org", "wrong", ip="10.0.0.5")
    admin = make_user(Role.ADMINISTRATOR, email="admin@example.org")
    page = Client()
    page.force_login(admin)
    listing = page.get("/accounts/lockouts/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "locked@example.org" in html and "Unlock" in html

    # Nobody but an administrator may unlock.
    steward = Client()
    steward.force_login(make_user(Role.STEWARD))
    assert steward.post("/accounts/lockouts/", {"account": "locked@example.org"}).status_code == 403
    assert _sign_in(Client(), "locked@example.org", PASSWORD).status_code == 429

    response = page.post("/accounts/lockouts/", {"account": "locked@example.org"}, follow=True)
    html = response.content.decode()
    assert "Unlocked sign-in for locked@example.org" in html
    assert "No sign-in is locked" in html
    client = Client()
    assert _sign_in(client, "locked@example.org", PASSWORD, ip="10.0.0.5").status_code == 302
    assert _signed_in(client)

    rows = _audit_rows()
    labels = [(r["object"], r["actor"]) for r in rows]
    unlocked = [actor for label, actor in labels if "unlocked" in label.lower()]
    locked_out = [label for label, _ in labels if "locked after" in label.lower()]
    assert unlocked == ["admin@example.org"]
    assert locked_out and "locked@example.org" in locked_out[0]
    unlock = AccountEvent.objects.get(event=AccountEventKind.UNLOCKED)
    assert unlock.user == locked and unlock.actor == admin


def test_sign_ins_are_in_the_audit_trail():
    make_user(email="present@example.org")
    client = Client()
    assert _sign_in(client, "present@example.org", PASSWORD).status_code == 302
    signed_in = [r for r in _audit_rows() if r["object"] == "Signed in · present@example.org"]
    assert [r["actor"] for r in signed_in] == ["present@example.org"]
    event = AccountEvent.objects.get(event=AccountEventKind.SIGNED_IN, email="present@example.org")
    assert event.method == "password" and event.ip_address == "10.0.0.1"
