"""The analyst's request pages: drafting with live findings, submit, edit, withdraw,
the request page as each role sees it, and a fixed number of queries on it."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import services
from analytics.models import AnalyticsRequest, Finding, RequestStatus
from governance.models import Committee, CommitteeMembership, Role, Seat
from tests.factories import make_dataset, make_purpose, make_user

pytestmark = pytest.mark.django_db

VLE_FIELDS = [
    ("code_module", "category", "internal", {"values": ["AAA", "BBB"]}),
    ("sum_click", "integer", "personal"),
    ("disability", "category", "special", {"values": ["Y", "N"]}),
    ("tutor_remarks", "string", "personal", {"excluded": True}),
]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world():
    steward = make_user(Role.STEWARD)
    analyst = make_user(Role.ANALYST)
    purpose = make_purpose(steward, name="Improve course design")
    appraisal = make_purpose(steward, name="Staff appraisal", category="performance_management")
    vle = make_dataset(
        steward,
        slug="vle",
        name="VLE activity",
        tags=["learning"],
        purposes=[purpose, appraisal],
        fields=VLE_FIELDS,
    )
    chair, *members = (make_user(Role.COMMITTEE) for _ in range(4))
    committee = Committee.objects.create(
        slug="oversight", name="Oversight committee", quorum=2, is_default=True
    )
    CommitteeMembership.objects.create(committee=committee, user=chair, seat=Seat.CHAIR)
    for member in members:
        CommitteeMembership.objects.create(committee=committee, user=member, seat=Seat.MEMBER)
    return SimpleNamespace(
        steward=steward,
        analyst=analyst,
        purpose=purpose,
        appraisal=appraisal,
        vle=vle,
        field={f.name: f for f in vle.fields.all()},
        chair=chair,
        members=members,
        committee=committee,
    )


def _form(world, *field_names, **overrides) -> dict:
    today = timezone.localdate()
    data = {
        "title": "Where learners drop out",
        "purpose": world.purpose.pk,
        "justification": "Find the weeks where activity falls.",
        "expected_benefit": "Earlier support for struggling learners.",
        "fields": [world.field[name].pk for name in field_names or ("code_module",)],
        "cohort": "",
        "output_level": "aggregate",
        "human_reviewer": "",
        "minimisation_justification": "",
        "retention_days": "365",
        "starts_on": today.isoformat(),
        "ends_on": (today + datetime.timedelta(days=120)).isoformat(),
    }
    return data | overrides


def _draft(world, *field_names, **overrides) -> AnalyticsRequest:
    today = timezone.localdate()
    content = {
        "title": "Where learners drop out",
        "purpose": world.purpose,
        "justification": "Find the weeks where activity falls.",
        "expected_benefit": "Earlier support for struggling learners.",
        "cohort": None,
        "output_level": "aggregate",
        "starts_on": today,
        "ends_on": today + datetime.timedelta(days=120),
    } | overrides
    return services.request_create(
        actor=world.analyst,
        fields=[world.field[name] for name in field_names or ("code_module",)],
        **content,
    )


def _to_review(world, request):
    services.request_submit(actor=world.analyst, request=request)
    services.signoff_record(
        actor=world.steward, request=request, dataset=world.vle, approve=True, note="Fine."
    )


def test_analyst_drafts_through_the_form_and_sees_the_findings(world):
    client = _client(world.analyst)
    page = client.get("/requests/new/").content.decode()
    assert 'name="fields"' in page and "VLE activity" in page
    assert "code_module" in page and "Special category" in page  # sensitivity badges
    assert "tutor_remarks" not in page  # excluded fields are not offered

    response = client.post(
        "/requests/new/",
        _form(
            world,
            "code_module",
            "disability",
            involves_model="on",
            cohort="vle.code_module=AAA",
        ),
    )
    request = AnalyticsRequest.objects.get(requester=world.analyst)
    assert response.status_code == 302 and response["Location"] == f"/requests/{request.pk}/"
    assert request.status == RequestStatus.DRAFT
    assert request.cohort == {"vle.code_module": "AAA"}
    assert {f.name for f in request.fields.all()} == {"code_module", "disability"}

    detail = client.get(response["Location"]).content.decode()
    assert "Special-category fields are flagged to the committee" in detail
    assert "vle.disability" in detail  # the field the finding names
    assert "A request involving a model carries a fairness audit" in detail
    assert "How to fix:" in detail
    assert f'action="/requests/{request.pk}/submit/"' in detail  # warnings do not block


@pytest.mark.parametrize(
    "cohort, message",
    [
        (
            "vle.code_module AAA",
            "Line 1: “vle.code_module AAA” is not written dataset.field=value.",
        ),
        ("vle.code_module=AAA\ncode_module=BBB", "Line 2"),
        ("vle.code_module=ZZZ", "&#x27;ZZZ&#x27; is not one of AAA, BBB."),
        ("vle.no_such_field=1", "vle.no_such_field: no such field."),
    ],
)
def test_a_bad_cohort_is_a_form_error_and_nothing_is_saved(world, cohort, message):
    response = _client(world.analyst).post("/requests/new/", _form(world, cohort=cohort))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AnalyticsRequest.objects.exists()


def test_the_firewall_blocks_submission_and_the_request_stays_a_draft(world):
    client = _client(world.analyst)
    response = client.post("/requests/new/", _form(world, purpose=world.appraisal.pk))
    request = AnalyticsRequest.objects.get()
    detail = client.get(response["Location"]).content.decode()
    assert "Learning data never serves performance management" in detail
    assert "Block — stops submission" in detail
    assert f'action="/requests/{request.pk}/submit/"' not in detail  # no Submit button

    refused = client.post(f"/requests/{request.pk}/submit/")
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "Not submitted: 1 rule(s) block this request" in page
    assert "learning data never informs performance management" in page
    request.refresh_from_db()
    assert request.status == RequestStatus.DRAFT and request.round == 0
    assert not request.versions.exists()


def test_a_clean_request_submits(world):
    request = _draft(world)
    client = _client(world.analyst)
    response = client.post(f"/requests/{request.pk}/submit/")
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED and request.round == 1
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Submitted (stewards)" in page and "Version 1" in page
    assert f"/requests/{request.pk}/edit/" not in page  # no editing under review
    assert client.get(f"/requests/{request.pk}/edit/").status_code == 302


def test_edit_after_changes_requested_and_resubmit_shows_versions_and_differences(world):
    request = _draft(world, "code_module")
    services.request_submit(actor=world.analyst, request=request)
    services.signoff_record(
        actor=world.steward,
        request=request,
        dataset=world.vle,
        approve=False,
        note="Say which modules.",
    )
    client = _client(world.analyst)
    request.refresh_from_db()
    assert request.status == RequestStatus.CHANGES_REQUESTED
    edit_page = client.get(f"/requests/{request.pk}/edit/").content.decode()
    assert "Where learners drop out" in edit_page  # the form starts from the request

    saved = client.post(
        f"/requests/{request.pk}/edit/",
        _form(world, "code_module", "sum_click", title="Drop-out weeks in module AAA"),
    )
    assert saved.status_code == 302
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Changes not yet submitted" in page

    assert client.post(f"/requests/{request.pk}/submit/").status_code == 302
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED and request.round == 2
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Version 1" in page and "Version 2" in page
    assert "<del>Where learners drop out</del> → <ins>Drop-out weeks in module AAA</ins>" in page
    assert "<ins>vle.code_module, vle.sum_click</ins>" in page
    assert "Say which modules." in page  # the steward's note stays visible


def test_withdraw_asks_for_confirmation(world):
    request = _draft(world)
    client = _client(world.analyst)
    assert (
        "Yes, withdraw this request"
        in client.get(f"/requests/{request.pk}/withdraw/").content.decode()
    )

    unconfirmed = client.post(f"/requests/{request.pk}/withdraw/")
    assert unconfirmed.status_code == 200
    assert "Tick the box to confirm" in unconfirmed.content.decode()
    request.refresh_from_db()
    assert request.status == RequestStatus.DRAFT

    done = client.post(f"/requests/{request.pk}/withdraw/", {"confirm": "on"})
    assert done.status_code == 302
    request.refresh_from_db()
    assert request.status == RequestStatus.WITHDRAWN
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Withdrawn" in page and f"/requests/{request.pk}/withdraw/" not in page


def test_the_list_shows_my_requests_with_blocking_counts(world):
    _draft(world, title="Clean one")
    _draft(world, purpose=world.appraisal, title="Blocked one")
    other = make_user(Role.ANALYST)
    services.request_create(
        actor=other,
        fields=[world.field["code_module"]],
        title="Not mine",
        purpose=world.purpose,
        justification="x",
        expected_benefit="y",
        output_level="aggregate",
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
    )
    page = _client(world.analyst).get("/requests/").content.decode()
    assert "Clean one" in page and "Blocked one" in page and "Not mine" not in page
    assert "1 blocking" in page
    assert 'href="/requests/new/"' in page


def test_non_analysts_get_403_and_others_requests_are_404(world):
    client = _client(world.steward)
    assert client.get("/requests/new/").status_code == 403
    assert client.post("/requests/new/", _form(world)).status_code == 403
    assert client.get("/requests/").status_code == 403
    assert client.post("/requests/findings/", _form(world)).status_code == 403
    assert not AnalyticsRequest.objects.exists()

    request = _draft(world)
    stranger = _client(make_user(Role.ANALYST))
    for url in ("", "edit/", "withdraw/"):
        assert stranger.get(f"/requests/{request.pk}/{url}").status_code == 404
    assert stranger.post(f"/requests/{request.pk}/submit/").status_code == 404
    # A steward sees a draft of their dataset no more than anyone else.
    assert _client(world.steward).get(f"/requests/{request.pk}/").status_code == 404


def test_the_findings_preview_returns_the_fragment_and_saves_nothing(world):
    client = _client(world.analyst)
    response = client.post(
        "/requests/findings/",
        _form(world, "code_module", purpose=world.appraisal.pk, title=""),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment
    assert "Learning data never serves performance management" in fragment
    assert "vle.code_module" in fragment
    assert not Finding.objects.exists() and not AnalyticsRequest.objects.exists()

    empty = client.post("/requests/findings/", {"purpose": world.purpose.pk}).content.decode()
    assert "Choose a purpose and at least one field" in empty
    clean = client.post("/requests/findings/", _form(world)).content.decode()
    assert "No rule flags anything" in clean

    form_page = client.get("/requests/new/").content.decode()
    assert 'hx-post="/requests/findings/"' in form_page and 'hx-target="#findings"' in form_page


def test_action_forms_and_votes_are_shown_only_to_who_may_act(world):
    request = _draft(world)
    url = f"/requests/{request.pk}/"
    services.request_submit(actor=world.analyst, request=request)
    steward_page = _client(world.steward).get(url).content.decode()
    assert f'action="/requests/{request.pk}/signoff/"' in steward_page
    assert 'name="dataset" value="vle"' in steward_page
    assert "signoff/" not in _client(world.analyst).get(url).content.decode()

    services.signoff_record(
        actor=world.steward, request=request, dataset=world.vle, approve=True, note="Fine."
    )
    first, second, _ = world.members
    services.vote_cast(actor=first, request=request, choice="approve", rationale="Sound aims.")
    member_page = _client(second).get(url).content.decode()
    assert "Sound aims." in member_page  # members see the votes
    assert f'action="/requests/{request.pk}/vote/"' in member_page
    assert 'value="conflict"' in member_page
    assert f'action="/requests/{request.pk}/vote/"' not in _client(first).get(url).content.decode()
    analyst_page = _client(world.analyst).get(url).content.decode()
    assert "Sound aims." not in analyst_page  # not to the requester before the decision
    assert "vote/" not in analyst_page and "decide/" not in analyst_page
    assert (
        f'href="/requests/{request.pk}/decide/"' in _client(world.chair).get(url).content.decode()
    )

    services.vote_cast(actor=second, request=request, choice="approve", rationale="Agreed.")
    decision = services.decision_record(
        actor=world.chair,
        request=request,
        outcome="approved",
        rationale="Clear benefit.",
        aggregate_only=True,
        min_cohort=15,
        obligations=[
            services.ObligationInput(
                text="Report back to the committee",
                owner=world.analyst,
                due_on=timezone.localdate() + datetime.timedelta(days=30),
            )
        ],
    )
    grant = decision.grant
    analyst_page = _client(world.analyst).get(url).content.decode()
    assert "Sound aims." in analyst_page  # decided: the requester sees the votes
    assert "Clear benefit." in analyst_page and "Report back to the committee" in analyst_page
    assert f'href="/grants/{grant.pk}/"' in analyst_page
    assert "grants/" in analyst_page and "revoke/" not in analyst_page
    chair_page = _client(world.chair).get(url).content.decode()
    assert f'action="/grants/{grant.pk}/revoke/"' in chair_page


def test_the_request_page_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    """Few versions, votes, fields and findings, then many: the same number of queries."""
    other = make_dataset(
        world.steward,
        slug="survey",
        name="Module survey",
        tags=["learning"],
        purposes=[world.purpose],
        fields=[("satisfaction", "integer", "internal"), ("ethnicity", "category", "special")],
    )
    first, second, third = world.members
    due = timezone.localdate() + datetime.timedelta(days=30)

    def changes_requested(request, obligations):
        services.decision_record(
            actor=world.chair,
            request=request,
            outcome="changes_requested",
            rationale="Narrow it.",
            obligations=[
                services.ObligationInput(text=f"Task {n}", owner=world.analyst, due_on=due)
                for n in range(obligations)
            ],
        )

    def review(request, datasets):
        services.request_submit(actor=world.analyst, request=request)
        for dataset in datasets:
            services.signoff_record(
                actor=world.steward, request=request, dataset=dataset, approve=True, note="Ok."
            )

    request = _draft(world, "code_module", involves_model=True)
    review(request, [world.vle])
    services.vote_cast(actor=first, request=request, choice="request_changes", rationale="a")
    services.vote_cast(actor=second, request=request, choice="request_changes", rationale="b")
    changes_requested(request, 1)
    services.request_update(actor=world.analyst, request=request, title="Second try")
    review(request, [world.vle])
    services.vote_cast(actor=first, request=request, choice="approve", rationale="c")

    client = _client(world.chair)
    url = f"/requests/{request.pk}/"
    client.get(url)  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200

    for n in range(3):
        services.vote_cast(actor=second, request=request, choice="request_changes", rationale="d")
        services.vote_cast(actor=third, request=request, choice="request_changes", rationale="e")
        changes_requested(request, 3)
        all_fields = [world.field[name] for name in ("code_module", "sum_click", "disability")]
        services.request_update(
            actor=world.analyst,
            request=request,
            title=f"Try {n + 3}",
            fields=all_fields + list(other.fields.all()),
            output_level="pseudonymised",
        )
        review(request, [world.vle, other])
        services.vote_cast(actor=first, request=request, choice="approve", rationale="f")
    services.vote_cast(actor=second, request=request, choice="approve", rationale="g")
    services.vote_cast(actor=third, request=request, choice="conflict", rationale="My team.")
    request.refresh_from_db()
    assert request.round == 5 and request.findings.filter(round=5).count() >= 3

    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    page = response.content.decode()
    assert "Version 5" in page and "Task 2" in page and "survey.ethnicity" in page
    assert "My team." in page and "every field of a dataset, needs a minimisation" in page
