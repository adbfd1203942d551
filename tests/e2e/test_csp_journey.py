"""Issue 11, "Responses": the main pages, in a real browser, under the strict policy.

One person who holds most roles walks the dashboard, the catalogue, a request form
whose live check is an htmx request, My data, the audit timeline, the profile (making
a read-only token), the API's Swagger UI and the admin. The Content-Security-Policy
refuses nothing on the way: no inline style (htmx's indicator style included), no
inline script, nothing from another origin; and everything still works.
"""

from __future__ import annotations

import re

import pytest

from governance.models import Role
from tests import factories
from tests.e2e.helpers import label
from tests.e2e.test_request_journeys import Cast, draft, sign_in

pytestmark = pytest.mark.browser


def _csp_refusals(page) -> list[str]:
    return [p for p in page.problems if "Content Security Policy" in p]


def test_the_main_pages_run_under_the_policy_without_a_refusal(page, celery_worker):
    from playwright.sync_api import expect

    Cast()  # the learning dataset, its purposes and the oversight committee
    walker = factories.make_user(
        Role.ANALYST,
        Role.STEWARD,
        Role.AUDITOR,
        Role.ADMINISTRATOR,
        email="walker@example.org",
        is_superuser=True,
        clearance="personal",
    )

    # The listener is live: a style the policy refuses is reported.
    page.goto("/accounts/login/")
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(
            "document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')"
        )
    page.wait_for_timeout(200)
    assert _csp_refusals(page), "the violation listener reports refusals"
    assert "style-src" in _csp_refusals(page)[0]
    page.problems.clear()

    sign_in(page, walker)
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.locator("style").count() == 0, "htmx added no inline style"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalogue").click()
    expect(page.get_by_role("heading", name="Data catalogue")).to_be_visible()
    page.get_by_role("link", name="Module results").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Module results"))).to_be_visible()

    # The request form's live check: an htmx POST on change, its answer swapped in.
    with page.expect_response(re.compile(r"/requests/findings/")) as preview:
        draft(
            page,
            title="Which modules lose learners?",
            purpose="Course improvement (course improvement)",
            fields=["code_module", "final_result"],
        )
    assert preview.value.status == 200
    expect(page.locator("#findings")).to_contain_text("No rule flags anything")

    for path, heading in [
        ("/me/", "My data"),
        ("/audit/", re.compile(r"^Audit")),
        ("/", re.compile(r"^Welcome")),
    ]:
        page.goto(path)
        expect(page.get_by_role("heading", name=heading).first).to_be_visible()

    # The profile: a read-only token for a week, shown once.
    page.get_by_role("link", name=walker.email).click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    page.get_by_label(label("Name")).fill("reporting script")
    page.get_by_label(label("Allows")).select_option(label="Read only")
    page.get_by_label(label("Expires after (days)")).fill("7")
    page.get_by_role("button", name="Create a token").click()
    expect(page.locator("#new-token")).to_contain_text("cst_")
    tokens = page.get_by_role("table")
    expect(tokens.get_by_role("row", name=re.compile(r"^reporting script"))).to_contain_text(
        "Read only"
    )

    # Swagger UI from the vendored sidecar: its start-up script is a file of its own.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API").click()
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/datasets/")

    page.goto("/admin/")
    expect(
        page.get_by_role("heading", name=re.compile("administration", re.I)).first
    ).to_be_visible()

    page.wait_for_timeout(300)  # a late refusal would still reach the console
    assert page.problems == []
