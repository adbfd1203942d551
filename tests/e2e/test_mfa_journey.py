"""A steward's first sign-in, in a real browser: taken to set up two-factor
authentication before any steward page, sets up an authenticator app from the secret
on the page, keeps the recovery codes, then signs in again with a code."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.e2e.helpers import TotpClock, label

pytestmark = pytest.mark.browser


def test_steward_sets_up_an_authenticator_app_and_signs_in_with_it(page):
    from playwright.sync_api import expect

    steward = factories.make_user("Data steward")

    page.goto("/accounts/login/")
    page.get_by_label(label("E-mail address")).fill(steward.email)
    page.get_by_label(label("Password")).fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Your role needs two-factor authentication")
    page.goto("/reviews/stewards/")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label(label("Password")).fill(factories.PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    secret = page.get_by_label(label("Authenticator secret")).input_value()
    page.get_by_label(label("Authenticator code")).fill(
        factories.totp_code(secret, at=TotpClock.time())
    )
    page.get_by_role("button", name="Set up").click()

    expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
    codes = page.get_by_label(label("Unused codes")).input_value().split()
    assert len(codes) == 10
    page.get_by_role("link", name="Continue to your dashboard").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Welcome"))).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign-offs").click()
    expect(page).to_have_url(re.compile(r"/reviews/stewards/$"))

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label(label("E-mail address")).fill(steward.email)
    page.get_by_label(label("Password")).fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in: second step")).to_be_visible()
    page.get_by_label(label("Code")).fill("000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Incorrect code")
    TotpClock.offset += 30
    page.get_by_label(label("Code")).fill(factories.totp_code(secret, at=TotpClock.time()))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Welcome"))).to_be_visible()
    page.goto("/reviews/stewards/")
    expect(page).to_have_url(re.compile(r"/reviews/stewards/$"))
    assert page.problems == [], page.problems
