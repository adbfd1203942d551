"""An auditor's afternoon, in a real browser: one request's whole story.

The world is built through the services (two requests taken through sign-off, votes
and the chair's decision). The auditor filters the timeline to one of them, opens a
vote's history (what was recorded, field by field), looks at the request as it stood
between the votes and the decision, and exports the filtered timeline as CSV.
"""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
from django.utils import timezone

from analytics import services
from analytics.models import Vote
from governance.models import Clearance, Role
from tests import factories
from tests.analytics import factories as flow
from tests.e2e.helpers import sign_in

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/e2e-audit.png"  # noqa: S108 -- a fixed path to look at afterwards


def _world():
    """Two approved requests; for the first, the moment between its votes and its
    decision (whole seconds apart: the as-of field takes seconds)."""
    flow.default_rules()
    board = flow.make_board()
    oulad = flow.make_oulad()
    analyst = flow.make_analyst(email="ana.lyst@example.org")
    other = flow.make_ready_request(analyst, oulad, title="Timetable clashes and withdrawals")
    flow.approve(other, oulad, board)

    studied = flow.make_ready_request(analyst, oulad, title="Which modules lose students")
    flow.submit_and_sign_off(studied, oulad)
    flow.vote_all(studied, board.voters[:3], "approve")
    time.sleep(1.1)
    between = timezone.localtime().replace(microsecond=0)
    time.sleep(1.1)
    services.decision_record(
        actor=board.chair,
        request=studied,
        outcome="approved",
        rationale="Benefits learners; aggregate only.",
    )
    studied.refresh_from_db()
    assert studied.status == "approved"
    auditor = factories.make_user(
        Role.AUDITOR, email="audrey.auditor@example.org", clearance=Clearance.SPECIAL
    )
    return board, studied, other, between, auditor


def test_auditor_follows_one_request_through_history_as_of_and_export(page):
    from playwright.sync_api import expect

    board, studied, other, between, auditor = _world()
    vote = Vote.objects.filter(request=studied, member=board.members[0]).get()

    # Sign in.
    sign_in(page, auditor)

    # The timeline, everything at first: both requests are in it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit timeline")).to_be_visible()
    events = page.locator("table.audit-timeline")
    expect(events).to_contain_text(studied.title)
    expect(events).to_contain_text(other.title)

    # Filter to the one request: its own changes, its votes and its decision only.
    page.get_by_label("Kind").select_option("request")
    page.get_by_label("Object id").fill(str(studied.pk))
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_label("Object id")).to_have_value(str(studied.pk))
    expect(events).not_to_contain_text(other.title)
    rows = events.locator("tbody tr")
    for text in [f"vote {vote.pk}", "decision", f"request {studied.pk}"]:
        expect(rows.filter(has_text=text).first).to_be_visible()
    expect(rows.filter(has_text=board.members[0].email).first).to_be_visible()
    filtered_url = page.url

    # A vote's history: what was recorded, field by field, and by whom.
    page.get_by_role("link", name=f"vote {vote.pk}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Vote {vote.pk}: history")).to_be_visible()
    entry = page.locator(".timeline li.entry").first
    expect(entry).to_contain_text(board.members[0].email)
    expect(entry).to_contain_text("created")
    expect(entry.locator(".changes li", has_text="choice")).to_contain_text("Approve")
    expect(entry.locator(".changes li", has_text="rationale")).to_contain_text("approve.")

    # The request as it stood before its decision: still in review, not yet approved.
    page.goto(filtered_url)
    page.get_by_role("link", name=f"request {studied.pk}", exact=True).first.click()
    expect(page.get_by_role("heading", name=f"Request {studied.pk}: history")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("Approved")
    page.get_by_label("See it as of").fill(between.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Show").click()
    expect(
        page.get_by_role("heading", name=re.compile(rf"^Request {studied.pk} as of"))
    ).to_be_visible()
    state = page.locator("table.as-of")
    expect(state.get_by_role("row", name=re.compile(r"^Status"))).to_contain_text(
        "In review (committee)"
    )
    expect(state.get_by_role("row", name=re.compile(r"^Title"))).to_contain_text(studied.title)
    # … and now, approved.
    page.get_by_label("As of").fill(timezone.localtime().strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Show").click()
    expect(state.get_by_role("row", name=re.compile(r"^Status"))).to_contain_text("Approved")

    # Export the filtered timeline.
    page.goto(filtered_url)
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Export CSV").click()
    download = downloading.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8") as exported:
        text = exported.read()
    header = [line for line in text.splitlines() if line.startswith("# ")]
    assert f"# filters: kind=request, object={studied.pk}" in header
    assert any(line.startswith("# exported at: ") for line in header)
    rows_ = list(
        csv.DictReader(
            io.StringIO("\n".join(line for line in text.splitlines() if not line.startswith("# ")))
        )
    )
    kinds = {row["kind"] for row in rows_}
    assert {"request", "vote", "decision"} <= kinds, kinds
    assert {row["object_id"] for row in rows_ if row["kind"] == "vote"} == {
        str(pk) for pk in Vote.objects.filter(request=studied).values_list("pk", flat=True)
    }
    assert other.title not in text
    assert board.members[0].email in {row["actor"] for row in rows_}

    page.screenshot(path=SCREENSHOT, full_page=True)
    assert page.problems == []
