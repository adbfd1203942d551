"""Shared by the browser journeys."""

from __future__ import annotations

import re

# Generous: a cold CI runner may take a while to start Chromium and the worker.
TIMEOUT_MS = 20_000


def label(text: str) -> re.Pattern:
    """A form label by its whole text; Django adds a ':' suffix."""
    return re.compile(rf"^{re.escape(text)}:?$")


class TotpClock:
    """The time allauth's TOTP check sees in the live server (same process). Each
    sign-in with a code moves it one 30-second period on, as if the person signed in a
    little later: a code is accepted once, and journeys sign the same person in twice
    within seconds."""

    offset = 0.0

    @classmethod
    def time(cls) -> float:
        import time

        return time.time() + cls.offset


def sign_in(page, user, password: str | None = None):
    """The sign-in form as a person fills it: e-mail, password, then, for a role that
    needs two-factor authentication, the code of an authenticator app (set up for the
    test login if it has none) computed from its secret."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import decrypt
    from playwright.sync_api import expect

    from governance.models import User
    from governance.signin import mfa_required
    from tests.factories import PASSWORD, give_totp, totp_code

    page.goto("/accounts/login/")
    page.get_by_label(label("E-mail address")).fill(user.email)
    page.get_by_label(label("Password")).fill(password or PASSWORD)
    fresh = User.objects.get(pk=user.pk)
    if mfa_required(fresh):
        app = Authenticator.objects.filter(user=fresh, type="totp").first()
        secret = decrypt(app.data["secret"]) if app else give_totp(fresh)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Sign in: second step")).to_be_visible()
        TotpClock.offset += 30
        page.get_by_label(label("Code")).fill(totp_code(secret, at=TotpClock.time()))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Welcome"))).to_be_visible()
