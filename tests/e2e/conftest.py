"""The browser page every journey drives, with its problems noted: JS errors, 4xx/5xx
answers and anything the Content-Security-Policy refused (so every journey is also a
check that its pages run under the policy)."""

from __future__ import annotations

import re

import pytest
from django.db import connections

from tests.e2e.helpers import TIMEOUT_MS, TotpClock


@pytest.fixture(autouse=True)
def _totp_clock(monkeypatch):
    from types import SimpleNamespace

    from allauth.mfa.totp.internal import auth as totp_auth

    TotpClock.offset = 0.0
    monkeypatch.setattr(totp_auth, "time", SimpleNamespace(time=TotpClock.time))


CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(
    "Content Security Policy violation: " + event.effectiveDirective + " refused "
    + (event.blockedURI || "inline code") + " on " + event.documentURI
  );
});
"""
CSP_REFUSAL = re.compile(r"Content Security Policy", re.I)


@pytest.fixture
def page(browser, live_server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    # Injected by the browser itself, so the policy does not apply to it: every refusal
    # is reported on the console, where the listener below notes it.
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and CSP_REFUSAL.search(message.text)
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.request.method} {response.url}")
            if response.status >= 400
            else None
        ),
    )
    page.problems = problems
    yield page
    context.close()
    # Inside Playwright's sync API the test body runs in another contextvars context,
    # so Django gives it a database connection of its own that pytest-django never
    # closes; left open, it keeps PostgreSQL from dropping the test database.
    # This fixture shares the body's context, so closing here reaches that connection.
    connections.close_all()
