"""From a request to a grant, in a real browser, with everyone who takes part.

An analyst drafts and submits, the steward signs off, three committee members vote,
the chair decides with conditions and the analyst finds the grant. A second journey
shows the firewall between learning and performance: the rule blocks the request and
the analyst is told why. People take turns by signing out and in again. With REDIS_URL
set (CI) the notifications go through a real Celery worker; without it they run eagerly.
"""

from __future__ import annotations

import datetime
import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from analytics.models import AnalyticsRequest, Grant, RequestStatus
from governance.models import Role
from governance.services import registry
from tests import factories
from tests.e2e.helpers import label, sign_in

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/e2e-request-grant.png"  # noqa: S108 -- a fixed path to look at afterwards
FIREWALL_RULE = "Learning data never serves performance management, recruitment or pay"


def ensure_default_rules():
    """The default rules come from a data migration, and the flush that ends every
    transactional test (a live server's among them) deletes them. Put them back with
    the migration's own idempotent function rather than copying the rules here."""
    migration = importlib.import_module("governance.migrations.0004_default_rules")
    migration.create_rules(django_apps, None)


class Cast:
    """The people of both journeys, a learning dataset and the oversight committee."""

    def __init__(self):
        ensure_default_rules()
        make = factories.make_user
        self.analyst = make(Role.ANALYST, email="ana.lyst@example.org")
        self.steward = make(Role.STEWARD, email="stew.ard@example.org", clearance="personal")
        self.chair = make(Role.COMMITTEE, email="chair@example.org")
        self.hr = make(Role.COMMITTEE, email="hr@example.org")
        self.legal = make(Role.COMMITTEE, email="legal@example.org")
        self.rep = make(Role.COMMITTEE, email="rep@example.org")
        registry.committee_create(
            actor=self.chair,
            slug="la-oversight",
            name="Learning Analytics Oversight Committee",
            quorum=3,
            rule="majority",
            is_default=True,
            members=[
                (self.chair, "chair"),
                (self.hr, "hr"),
                (self.legal, "legal"),
                (self.rep, "learner_representative"),
            ],
        )
        self.course_improvement = factories.make_purpose(
            self.steward, slug="course-improvement", name="Course improvement"
        )
        self.appraisal = factories.make_purpose(
            self.steward,
            slug="staff-appraisal",
            name="Staff appraisal",
            category="performance_management",
            expected_benefit="Rate staff by their learning.",
        )
        self.dataset = factories.make_dataset(
            self.steward,
            slug="module-results",
            name="Module results",
            tags=["learning"],
            # The dataset permits both purposes, so only the firewall stands in the way.
            purposes=[self.course_improvement, self.appraisal],
            fields=[
                ("code_module", "category", "internal"),
                ("final_result", "category", "internal"),
                ("score", "integer", "personal"),
            ],
        )


def sign_out(page):
    from playwright.sync_api import expect

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def nav(page, name: str):
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def draft(page, *, title: str, purpose: str, fields: list[str]):
    """Fill the request form as an analyst would; the caller saves it."""
    from playwright.sync_api import expect

    nav(page, "My requests")
    expect(page.get_by_role("heading", name="My analytics requests")).to_be_visible()
    page.get_by_role("link", name="New request").click()
    expect(page.get_by_role("heading", name="New analytics request")).to_be_visible()
    page.get_by_label(label("Title")).fill(title)
    page.get_by_label(label("Purpose")).select_option(label=purpose)
    page.get_by_label(label("Justification")).fill("Find the modules where learners drop out.")
    page.get_by_label(label("Expected benefit to learners")).fill(
        "Tutors reach struggling learners sooner."
    )
    picker = page.locator("#field-picker")
    for name in fields:
        picker.get_by_role("checkbox", name=re.compile(rf"^{name}\b")).check()
    page.get_by_label(label("Output level")).select_option(label="Pseudonymised")
    page.get_by_label(label("Wanted until")).fill(
        (timezone.localdate() + datetime.timedelta(days=180)).isoformat()
    )


def test_a_request_travels_from_draft_to_grant(page, celery_worker):
    from playwright.sync_api import expect

    cast = Cast()
    title = "Which modules lose learners?"

    # The analyst drafts, saves and submits.
    sign_in(page, cast.analyst)
    draft(
        page,
        title=title,
        purpose="Course improvement (course improvement)",
        fields=["code_module", "final_result"],
    )
    expect(page.locator("#findings")).to_contain_text("No rule flags anything")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name=re.compile(re.escape(title)))).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Request “{title}” saved as a draft.")
    expect(page.locator("#request-status")).to_have_text("Draft")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("#request-status")).to_have_text("Submitted (stewards)")
    request_url = page.url
    sign_out(page)

    # The steward finds it in the sign-off queue and signs off.
    sign_in(page, cast.steward)
    nav(page, "Sign-offs")
    expect(page.get_by_role("heading", name="Sign-offs")).to_be_visible()
    page.get_by_role("link", name=f"Sign off or decline {title}").click()
    expect(page.get_by_role("heading", name=f"Sign off “{title}”")).to_be_visible()
    page.get_by_label("Sign off: the request may use this dataset").check()
    page.get_by_label(label("Note")).fill("Module codes and results only: fine.")
    page.get_by_role("button", name="Record sign-off").click()
    expect(page).to_have_url(request_url)
    expect(page.get_by_role("status")).to_contain_text("Signed off the use of Module results.")
    expect(page.locator("#request-status")).to_have_text("In review (committee)")
    sign_out(page)

    # Three members vote from the committee queue.
    for member, choice in [
        (cast.hr, "Approve with conditions"),
        (cast.legal, "Approve"),
        (cast.rep, "Approve with conditions"),
    ]:
        sign_in(page, member)
        nav(page, "Committee")
        expect(page.get_by_role("heading", name="Committee reviews")).to_be_visible()
        page.get_by_role("link", name=f"Vote on {title}").click()
        expect(page.get_by_role("heading", name=f"Vote on “{title}”")).to_be_visible()
        page.get_by_label(choice, exact=True).check()
        page.get_by_label(label("Rationale")).fill(f"{member.email}: a clear benefit to learners.")
        page.get_by_role("button", name="Cast vote").click()
        expect(page.get_by_role("status")).to_contain_text("Your vote is recorded")
        sign_out(page)

    # The chair sees the tally and decides with conditions and an obligation.
    sign_in(page, cast.chair)
    nav(page, "Committee")
    row = page.get_by_role("row", name=re.compile(re.escape(title)))
    expect(row).to_contain_text("3")
    row.get_by_role("link", name=f"Decide on {title}").click()
    expect(page.get_by_role("heading", name=f"Decide on “{title}”")).to_be_visible()
    expect(page.locator("#tally")).to_contain_text("3 of a quorum of 3 — quorum met")
    expect(page.locator("#supported-outcomes")).to_contain_text("Approved: supported")
    page.get_by_label("Approved", exact=True).check()
    page.get_by_label(label("Rationale")).fill("Approved for aggregate reporting only.")
    page.get_by_label(label("Aggregate only")).check()
    page.get_by_label(label("Minimum cohort k")).fill("20")
    expires = timezone.localdate() + datetime.timedelta(days=90)
    page.get_by_label(label("Expires on")).fill(expires.isoformat())
    due = timezone.localdate() + datetime.timedelta(days=30)
    page.locator("[name=obligations-0-text]").fill("Share the aggregate results with learners.")
    page.locator("[name=obligations-0-owner]").fill(cast.analyst.email)
    page.locator("[name=obligations-0-due_on]").fill(due.isoformat())
    page.get_by_role("button", name="Record decision").click()
    expect(page).to_have_url(request_url)
    expect(page.get_by_role("status")).to_contain_text("Decision recorded: approved.")
    expect(page.locator("#request-status")).to_have_text("Approved")
    sign_out(page)

    # The analyst is told, opens the request from the inbox and finds the grant.
    sign_in(page, cast.analyst)
    nav_inbox = page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile(r"^Inbox")
    )
    expect(nav_inbox).to_contain_text("unread")
    nav_inbox.click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    page.get_by_role("link", name=f"Decision: {title} — approved").click()
    expect(page).to_have_url(request_url)
    grant = Grant.objects.get(request__title=title)
    page.get_by_role("heading", name=f"Grant #{grant.pk}").get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"Grant for “{title}”")).to_be_visible()
    expect(page.locator("#grant-status")).to_have_text("Active")
    expect(page.locator("#grant-output-level")).to_have_text("Aggregate")
    expect(page.locator("#grant-k")).to_have_text("20")
    fields = page.get_by_role("table")
    expect(fields).to_contain_text("module-results.code_module")
    expect(fields).to_contain_text("module-results.final_result")
    expect(fields).not_to_contain_text("module-results.score")
    expect(page.get_by_text("Share the aggregate results with learners.")).to_be_visible()
    expect(page.get_by_role("button", name="Revoke grant")).to_have_count(0)

    page.screenshot(path=SCREENSHOT, full_page=True)
    assert page.problems == []
    assert grant.k == 20 and grant.output_level == "aggregate"
    assert grant.valid_until == expires


def test_the_firewall_blocks_a_performance_purpose_and_says_why(page, celery_worker):
    from playwright.sync_api import expect

    cast = Cast()
    title = "Appraise staff by their course results"

    sign_in(page, cast.analyst)
    draft(
        page,
        title=title,
        purpose="Staff appraisal (performance management)",
        fields=["code_module", "final_result"],
    )
    # While drafting: the live check already names the rule.
    live = page.locator("#findings")
    expect(live).to_contain_text(FIREWALL_RULE)
    expect(live).to_contain_text("Block — stops submission")

    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#request-status")).to_have_text("Draft")
    finding = page.locator("#findings li.finding-block")
    expect(finding).to_have_count(1)
    expect(finding.locator(".rule")).to_have_text(FIREWALL_RULE)
    expect(finding.locator(".message")).to_contain_text(
        "learning data never informs performance management, recruitment or pay"
    )
    expect(finding).to_contain_text("module-results.code_module")
    expect(finding.locator(".fix")).to_contain_text("Choose a purpose that supports learning")
    expect(page.locator("#submit-blocked")).to_contain_text("Submission is not possible")
    expect(page.get_by_role("button", name=re.compile(r"^Submit"))).to_have_count(0)

    assert page.problems == []
    request = AnalyticsRequest.objects.get(title=title)
    assert request.status == RequestStatus.DRAFT and request.round == 0
