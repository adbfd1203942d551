"""The analytics API as a client with a personal bearer token sees it: a request from
draft to grant, and every refusal on the way."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import services
from analytics.models import (
    AnalyticsRequest,
    Decision,
    Grant,
    RequestVersion,
    StewardSignoff,
    Vote,
)
from governance.models import Committee, CommitteeMembership, Role
from governance.services import accounts
from tests.factories import make_dataset, make_purpose, make_user

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
STARTS = TODAY
ENDS = TODAY + datetime.timedelta(days=180)
EXPIRES = TODAY + datetime.timedelta(days=90)
DUE = TODAY + datetime.timedelta(days=30)

FIELDS = [
    ("code_module", "category", "internal", {"values": ["AAA", "BBB"]}),
    ("score", "integer", "internal"),
    ("ethnicity", "string", "special", {"is_protected_attribute": True}),
    ("staff_notes", "string", "personal", {"excluded": True}),
]


def bearer(user) -> dict:
    _, secret = accounts.api_token_create(actor=user, user=user, name="tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def steward():
    return make_user(Role.STEWARD)


@pytest.fixture
def analyst():
    return make_user(Role.ANALYST)


@pytest.fixture
def purpose(steward):
    return make_purpose(steward, slug="tutoring", name="Tutoring support")


@pytest.fixture
def dataset(steward, purpose):
    return make_dataset(
        steward, slug="course-scores", fields=FIELDS, tags=["learning"], purposes=[purpose]
    )


@pytest.fixture
def members():
    """chair, hr, legal: the default committee, quorum 3, simple majority."""
    committee = Committee.objects.create(
        slug="la-oversight",
        name="Learning Analytics Oversight Committee",
        quorum=3,
        rule="majority",
        is_default=True,
    )
    people = {}
    for seat in ("chair", "hr", "legal"):
        user = make_user(Role.COMMITTEE)
        CommitteeMembership.objects.create(committee=committee, user=user, seat=seat)
        people[seat] = user
    return people


class Api:
    """Bearer headers per user, made once, and JSON posts."""

    def __init__(self, client):
        self.client = client
        self._headers = {}

    def headers(self, user) -> dict:
        if user.pk not in self._headers:
            self._headers[user.pk] = bearer(user)
        return self._headers[user.pk]

    def get(self, user, url):
        return self.client.get(url, **self.headers(user))

    def post(self, user, url, body=None):
        return self.client.post(
            url, data=json.dumps(body or {}), content_type="application/json", **self.headers(user)
        )


@pytest.fixture
def api(client):
    return Api(client)


def request_body(**overrides) -> dict:
    return {
        "title": "Which modules need tutors",
        "purpose": "tutoring",
        "justification": "Find modules where learners struggle.",
        "expected_benefit": "Tutoring goes where learners need it.",
        "fields": ["course-scores.code_module", "course-scores.score"],
        "cohort": {"course-scores.code_module": "AAA"},
        "output_level": "aggregate",
        "involves_model": False,
        "automated_decision": False,
        "human_reviewer": None,
        "starts_on": STARTS.isoformat(),
        "ends_on": ENDS.isoformat(),
    } | overrides


def create(api, analyst, **overrides) -> dict:
    response = api.post(analyst, "/api/v1/requests/", request_body(**overrides))
    assert response.status_code == 201, response.json()
    return response.json()


def url(request_id: int, action: str = "") -> str:
    return f"/api/v1/requests/{request_id}/{action}"


def in_review(api, analyst, steward, **overrides) -> int:
    """A request submitted and signed off: before the committee."""
    request_id = create(api, analyst, **overrides)["id"]
    assert api.post(analyst, url(request_id, "submit")).status_code == 200
    signoff = api.post(
        steward,
        url(request_id, "signoffs"),
        {"dataset": "course-scores", "approve": True, "note": "ok"},
    )
    assert signoff.status_code == 201, signoff.json()
    return request_id


def vote(api, member, request_id, choice="approve", rationale="Clear benefit to learners."):
    return api.post(member, url(request_id, "votes"), {"vote": choice, "rationale": rationale})


# --- the whole flow ------------------------------------------------------------------


def test_a_request_goes_from_draft_to_grant_to_revocation(api, analyst, steward, dataset, members):
    chair, hr, legal = members["chair"], members["hr"], members["legal"]

    created = api.post(
        analyst,
        "/api/v1/requests/",
        request_body(fields=["course-scores.code_module", "course-scores.ethnicity"]),
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    request_id = body["id"]
    assert body["status"] == "draft"
    assert body["round"] == 0
    assert body["content"]["fields"] == ["course-scores.code_module", "course-scores.ethnicity"]
    assert body["content"]["cohort"] == {"course-scores.code_module": "AAA"}
    assert body["findings"] == [
        {
            "rule": "special-category",
            "severity": "warn",
            "message": body["findings"][0]["message"],
            "fields": ["course-scores.ethnicity"],
            "fix": body["findings"][0]["fix"],
        }
    ]
    assert body["findings"][0]["message"] and body["findings"][0]["fix"]

    submitted = api.post(analyst, url(request_id, "submit"))
    assert submitted.status_code == 200, submitted.json()
    assert submitted.json()["status"] == "submitted"
    assert submitted.json()["round"] == 1
    assert [f["rule"] for f in submitted.json()["findings"]] == ["special-category"]

    signoff = api.post(
        steward,
        url(request_id, "signoffs"),
        {"dataset": "course-scores", "approve": True, "note": "Fine for tutoring."},
    )
    assert signoff.status_code == 201, signoff.json()
    assert signoff.json()["request_status"] == "in_review"
    assert signoff.json()["steward"] == steward.email

    assert vote(api, chair, request_id, "approve_with_conditions").status_code == 201
    assert vote(api, hr, request_id).status_code == 201
    third = vote(api, legal, request_id, rationale="Aggregate is enough.")
    assert third.status_code == 201, third.json()
    assert third.json() == {
        "member": legal.email,
        "vote": "approve",
        "rationale": "Aggregate is enough.",
        "round": 1,
        "created_at": third.json()["created_at"],
    }

    decided = api.post(
        chair,
        url(request_id, "decision"),
        {
            "outcome": "approved",
            "rationale": "Useful and proportionate.",
            "conditions": {
                "aggregate_only": True,
                "min_cohort": 15,
                "expires_on": EXPIRES.isoformat(),
                "obligations": [
                    {
                        "text": "Report back to the committee.",
                        "owner": analyst.email,
                        "due_on": DUE.isoformat(),
                    }
                ],
            },
        },
    )
    assert decided.status_code == 201, decided.json()
    decision = decided.json()
    grant = Grant.objects.get(request_id=request_id)
    assert decision["grant"] == grant.pk
    assert decision["request_status"] == "approved"
    assert decision["conditions"] == {
        "aggregate_only": True,
        "min_cohort": 15,
        "expires_on": EXPIRES.isoformat(),
        # No budget named: the privacy-budget rule's default.
        "epsilon": 10.0,
        "obligations": [
            {
                "text": "Report back to the committee.",
                "owner": analyst.email,
                "due_on": DUE.isoformat(),
            }
        ],
    }

    detail = api.get(analyst, url(request_id))
    assert detail.status_code == 200
    detail = detail.json()
    assert detail["status"] == "approved"
    assert detail["decision"]["outcome"] == "approved"
    assert detail["decision"]["decided_by"] == chair.email
    assert detail["decision"]["conditions"]["min_cohort"] == 15
    assert detail["grant"] == {
        "id": grant.pk,
        "status": "active",
        "valid_until": EXPIRES.isoformat(),
    }
    assert detail["signoffs"][0]["note"] == "Fine for tutoring."
    assert {v["member"]: v["vote"] for v in detail["votes"]} == {
        chair.email: "approve_with_conditions",
        hr.email: "approve",
        legal.email: "approve",
    }

    shown = api.get(analyst, f"/api/v1/grants/{grant.pk}/")
    assert shown.status_code == 200
    assert shown.json() | {"revoked_at": None} == {
        "id": grant.pk,
        "request": request_id,
        "title": "Which modules need tutors",
        "purpose": "tutoring",
        "decision": decision["id"],
        "grantee": analyst.email,
        "fields": ["course-scores.code_module", "course-scores.ethnicity"],
        # aggregate_only narrows the aggregate the analyst asked for to itself
        "output_level": "aggregate",
        "k": 15,
        "epsilon": 10.0,
        "valid_from": STARTS.isoformat(),
        "valid_until": EXPIRES.isoformat(),
        "status": "active",
        "usable": True,
        "revoked_at": None,
        "revoked_by": None,
        "revoke_reason": "",
    }

    revoked = api.post(chair, f"/api/v1/grants/{grant.pk}/revoke", {"reason": "Misused."})
    assert revoked.status_code == 200, revoked.json()
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["usable"] is False
    assert revoked.json()["revoked_by"] == chair.email
    assert revoked.json()["revoke_reason"] == "Misused."
    assert api.get(analyst, url(request_id)).json()["status"] == "revoked"
    grant.refresh_from_db()
    assert grant.history.filter(history_user=chair, status="revoked").exists()


def test_aggregate_only_narrows_a_pseudonymised_request_in_the_grant(
    api, analyst, steward, dataset, members
):
    request_id = in_review(api, analyst, steward, output_level="pseudonymised")
    for member in members.values():
        vote(api, member, request_id)

    decided = api.post(
        members["chair"],
        url(request_id, "decision"),
        {"outcome": "approved", "rationale": "Fine.", "conditions": {"aggregate_only": True}},
    )

    assert decided.status_code == 201, decided.json()
    grant = api.get(members["chair"], f"/api/v1/grants/{decided.json()['grant']}/").json()
    assert grant["output_level"] == "aggregate"
    assert grant["k"] == 10


def test_a_rejection_creates_no_grant(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id, "reject", "No benefit.")

    decided = api.post(
        members["chair"], url(request_id, "decision"), {"outcome": "rejected", "rationale": "No."}
    )

    assert decided.status_code == 201, decided.json()
    assert decided.json()["grant"] is None
    assert decided.json()["request_status"] == "rejected"
    assert api.get(analyst, url(request_id)).json()["grant"] is None
    assert not Grant.objects.exists()


# --- drafting --------------------------------------------------------------------------


def test_the_list_shows_only_the_callers_own_requests(api, analyst, dataset):
    mine = create(api, analyst)
    other = make_user(Role.ANALYST)
    create(api, other, title="Someone else's")

    response = api.get(analyst, "/api/v1/requests/")

    assert response.status_code == 200
    assert response.json()["count"] == 1
    [row] = response.json()["results"]
    assert row["id"] == mine["id"]
    assert row["status"] == "draft"
    assert row["purpose"] == "tutoring"
    assert row["field_count"] == 2
    assert row["url"].endswith(f"/api/v1/requests/{mine['id']}/")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"purpose": "no-such-purpose"}, "no-such-purpose"),
        ({"fields": ["course-scores.score", "course-scores.shoe_size"]}, "course-scores.shoe_size"),
        ({"fields": ["nowhere.score"]}, "nowhere.score"),
        ({"human_reviewer": "nobody@example.org"}, "nobody@example.org"),
        ({"cohort": {"course-scores.code_module": "ZZZ"}}, "ZZZ"),
        ({"output_level": "everything"}, "output_level"),
        ({"fields": []}, "fields"),
    ],
)
def test_bad_input_to_create_is_400_naming_it_and_writes_nothing(
    api, analyst, dataset, change, named
):
    response = api.post(analyst, "/api/v1/requests/", request_body(**change))

    assert response.status_code == 400
    body = response.json()
    assert named in body["message"]
    assert body["errors"]
    assert not AnalyticsRequest.objects.exists()


def test_a_field_of_a_dataset_the_analyst_cannot_see_is_unknown(api, analyst, steward, purpose):
    make_dataset(steward, slug="draft-set", status="draft", fields=FIELDS[:1], purposes=[purpose])

    response = api.post(
        analyst, "/api/v1/requests/", request_body(fields=["draft-set.code_module"], cohort=None)
    )

    assert response.status_code == 400
    assert "draft-set.code_module" in response.json()["message"]
    assert not AnalyticsRequest.objects.exists()


def test_a_named_human_reviewer_is_kept_and_satisfies_the_rule(api, analyst, dataset):
    reviewer = make_user(Role.COMMITTEE)

    body = create(api, analyst, automated_decision=True, human_reviewer=reviewer.email)

    assert body["content"]["human_reviewer"] == reviewer.email
    assert "human-reviewer" not in [f["rule"] for f in body["findings"]]


def test_only_analysts_file_requests(api, steward, dataset):
    response = api.post(steward, "/api/v1/requests/", request_body())

    assert response.status_code == 403
    assert response.json() == {"message": "Only analysts file requests."}
    assert not AnalyticsRequest.objects.exists()


# --- submission --------------------------------------------------------------------


def test_submitting_with_blocking_findings_is_400_listing_them_and_stays_a_draft(
    api, analyst, steward, dataset, members
):
    make_purpose(steward, slug="appraisal", name="Appraisal", category="performance_management")
    created = create(
        api,
        analyst,
        purpose="appraisal",
        fields=["course-scores.score", "course-scores.staff_notes"],
        cohort=None,
    )
    assert {f["rule"] for f in created["findings"] if f["severity"] == "block"} == {
        "learning-firewall",
        "field-purpose",
        "excluded-fields",
    }

    response = api.post(analyst, url(created["id"], "submit"))

    assert response.status_code == 400
    body = response.json()
    assert body["message"].startswith("The request cannot be submitted")
    assert {f["rule"] for f in body["findings"]} == {
        "learning-firewall",
        "field-purpose",
        "excluded-fields",
    }
    firewall = next(f for f in body["findings"] if f["rule"] == "learning-firewall")
    assert firewall["severity"] == "block"
    assert firewall["fields"] == ["course-scores.score", "course-scores.staff_notes"]
    assert firewall["fix"]
    excluded = next(f for f in body["findings"] if f["rule"] == "excluded-fields")
    assert excluded["fields"] == ["course-scores.staff_notes"]
    request = AnalyticsRequest.objects.get(pk=created["id"])
    assert (request.status, request.round) == ("draft", 0)
    assert not RequestVersion.objects.exists()
    assert api.get(analyst, url(created["id"])).json()["status"] == "draft"


def test_someone_else_cannot_submit_a_request_they_see(api, analyst, steward, dataset, members):
    request_id = create(api, analyst)["id"]
    other = make_user(Role.ANALYST)

    response = api.post(other, url(request_id, "submit"))

    # a draft is visible to its requester alone
    assert response.status_code == 404
    assert AnalyticsRequest.objects.get(pk=request_id).status == "draft"


def test_withdraw_before_a_decision(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)

    response = api.post(analyst, url(request_id, "withdraw"))

    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"
    again = api.post(analyst, url(request_id, "withdraw"))
    assert again.status_code == 400
    assert again.json()["message"] == "A decided request cannot be withdrawn."


# --- stewards ----------------------------------------------------------------------


def test_a_steward_decline_returns_the_request_to_the_analyst(
    api, analyst, steward, dataset, members
):
    request_id = create(api, analyst)["id"]
    api.post(analyst, url(request_id, "submit"))

    response = api.post(
        steward,
        url(request_id, "signoffs"),
        {"dataset": "course-scores", "approve": False, "note": "Too broad a cohort."},
    )

    assert response.status_code == 201
    assert response.json()["request_status"] == "changes_requested"
    detail = api.get(analyst, url(request_id)).json()
    assert detail["signoffs"][0]["approve"] is False
    assert detail["signoffs"][0]["note"] == "Too broad a cohort."


def test_a_signoff_for_a_dataset_the_request_does_not_use_is_400(
    api, analyst, steward, dataset, members
):
    make_dataset(steward, slug="other-set", fields=FIELDS[:1])
    request_id = create(api, analyst)["id"]
    api.post(analyst, url(request_id, "submit"))

    response = api.post(
        steward, url(request_id, "signoffs"), {"dataset": "other-set", "approve": True, "note": "x"}
    )

    assert response.status_code == 400
    assert "other-set" in response.json()["message"]
    assert not StewardSignoff.objects.exists()


def test_another_steward_cannot_sign_off(api, analyst, steward, dataset, members):
    request_id = create(api, analyst)["id"]
    api.post(analyst, url(request_id, "submit"))
    other = make_user(Role.STEWARD)

    response = api.post(
        other,
        url(request_id, "signoffs"),
        {"dataset": "course-scores", "approve": True, "note": "x"},
    )

    assert response.status_code == 404
    assert not StewardSignoff.objects.exists()


# --- votes -------------------------------------------------------------------------


def test_a_second_vote_is_400_and_the_first_stands(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)
    assert vote(api, members["hr"], request_id, "approve", "Good.").status_code == 201

    response = vote(api, members["hr"], request_id, "reject", "Changed my mind.")

    assert response.status_code == 400
    assert response.json()["message"] == (
        "You have already voted in this round; your first vote stands."
    )
    [kept] = Vote.objects.filter(request_id=request_id)
    assert (kept.member, kept.choice, kept.rationale) == (members["hr"], "approve", "Good.")


def test_the_requester_cannot_vote_even_as_a_committee_member(
    api, analyst, steward, dataset, members
):
    CommitteeMembership.objects.create(
        committee=Committee.objects.get(slug="la-oversight"), user=analyst, seat="member"
    )
    request_id = in_review(api, analyst, steward)

    response = vote(api, analyst, request_id)

    assert response.status_code == 403
    assert response.json() == {"message": "You cannot vote on your own request."}
    assert not Vote.objects.exists()


def test_the_requester_vote_is_403_with_the_reason(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)

    response = vote(api, analyst, request_id)

    assert response.status_code == 403
    assert response.json() == {"message": "You cannot vote on your own request."}
    assert not Vote.objects.exists()


def test_a_non_member_who_sees_the_request_gets_403_with_the_reason(
    api, analyst, steward, dataset, members
):
    dpo = make_user(Role.DPO)
    request_id = in_review(api, analyst, steward)
    assert api.get(dpo, url(request_id)).status_code == 200

    response = vote(api, dpo, request_id)

    assert response.status_code == 403
    assert response.json() == {"message": "You are not a member of this request's committee."}
    assert not Vote.objects.exists()


def test_a_non_member_who_cannot_see_the_request_gets_404(api, analyst, steward, dataset, members):
    outsider = make_user(Role.COMMITTEE)
    request_id = in_review(api, analyst, steward)

    response = vote(api, outsider, request_id)

    assert response.status_code == 404
    assert response.json() == {"message": "Not found."}
    assert not Vote.objects.exists()


def test_an_unknown_vote_or_missing_rationale_is_400(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)

    unknown = vote(api, members["hr"], request_id, "abstain")
    blank = vote(api, members["hr"], request_id, "approve", "")

    assert unknown.status_code == blank.status_code == 400
    assert "vote" in unknown.json()["errors"]
    assert "rationale" in blank.json()["errors"]
    assert not Vote.objects.exists()


def test_a_vote_before_the_stewards_sign_off_is_400(api, analyst, steward, dataset, members):
    request_id = create(api, analyst)["id"]
    api.post(analyst, url(request_id, "submit"))

    response = vote(api, members["hr"], request_id)

    assert response.status_code == 400
    assert response.json()["message"] == "This request is not open for votes."
    assert not Vote.objects.exists()


def test_votes_are_hidden_from_the_requester_until_the_decision(
    api, analyst, steward, dataset, members
):
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id)

    before = api.get(analyst, url(request_id)).json()
    as_member = api.get(members["hr"], url(request_id)).json()
    assert before["votes"] is None
    assert before["decision"] is None
    assert len(as_member["votes"]) == 3

    api.post(
        members["chair"], url(request_id, "decision"), {"outcome": "approved", "rationale": "Ok."}
    )
    after = api.get(analyst, url(request_id)).json()

    assert after["decision"]["outcome"] == "approved"
    assert sorted(v["member"] for v in after["votes"]) == sorted(m.email for m in members.values())
    assert {v["rationale"] for v in after["votes"]} == {"Clear benefit to learners."}


def test_votes_are_hidden_from_oversight_staff_who_are_not_members(
    api, analyst, steward, dataset, members
):
    auditor = make_user(Role.AUDITOR)
    request_id = in_review(api, analyst, steward)
    vote(api, members["hr"], request_id)

    detail = api.get(auditor, url(request_id))

    assert detail.status_code == 200
    assert detail.json()["votes"] is None


# --- decisions ---------------------------------------------------------------------


def test_a_decision_before_quorum_is_400_with_the_reason(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)
    vote(api, members["hr"], request_id)
    vote(api, members["legal"], request_id, "conflict", "I supervise the analyst.")

    response = api.post(
        members["chair"], url(request_id, "decision"), {"outcome": "approved", "rationale": "Ok."}
    )

    assert response.status_code == 400
    assert response.json()["message"] == "No quorum: 1 non-recused vote(s), 3 needed."
    assert not Decision.objects.exists()
    assert AnalyticsRequest.objects.get(pk=request_id).status == "in_review"


def test_an_outcome_the_votes_do_not_support_is_400(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id, "reject", "No.")

    response = api.post(
        members["chair"], url(request_id, "decision"), {"outcome": "approved", "rationale": "Ok."}
    )

    assert response.status_code == 400
    assert "do not support" in response.json()["message"]
    assert not Decision.objects.exists()
    assert not Grant.objects.exists()


def test_only_the_chair_decides(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id)

    response = api.post(
        members["hr"], url(request_id, "decision"), {"outcome": "approved", "rationale": "Ok."}
    )

    assert response.status_code == 403
    assert response.json() == {"message": "Only the committee's chair records its decision."}
    assert not Decision.objects.exists()


def test_an_obligation_owner_must_be_a_user(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id)

    response = api.post(
        members["chair"],
        url(request_id, "decision"),
        {
            "outcome": "approved",
            "rationale": "Ok.",
            "conditions": {
                "obligations": [
                    {"text": "Report.", "owner": "ghost@example.org", "due_on": DUE.isoformat()}
                ]
            },
        },
    )

    assert response.status_code == 400
    assert "ghost@example.org" in response.json()["message"]
    assert not Decision.objects.exists()


def test_a_min_cohort_below_two_is_400(api, analyst, steward, dataset, members):
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id)

    response = api.post(
        members["chair"],
        url(request_id, "decision"),
        {"outcome": "approved", "rationale": "Ok.", "conditions": {"min_cohort": 1}},
    )

    assert response.status_code == 400
    assert "conditions.min_cohort" in response.json()["message"]
    assert not Decision.objects.exists()


# --- grants ------------------------------------------------------------------------


def approved_grant(api, analyst, steward, members) -> int:
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id)
    decided = api.post(
        members["chair"], url(request_id, "decision"), {"outcome": "approved", "rationale": "Ok."}
    )
    return decided.json()["grant"]


def test_a_grant_is_hidden_from_an_unrelated_analyst(api, analyst, steward, dataset, members):
    grant_id = approved_grant(api, analyst, steward, members)
    other = make_user(Role.ANALYST)

    hidden = api.get(other, f"/api/v1/grants/{grant_id}/")
    missing = api.get(other, "/api/v1/grants/999999/")

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"message": "Not found."}


def test_the_grantee_cannot_revoke_their_grant(api, analyst, steward, dataset, members):
    grant_id = approved_grant(api, analyst, steward, members)

    response = api.post(analyst, f"/api/v1/grants/{grant_id}/revoke", {"reason": "Done."})

    assert response.status_code == 403
    assert response.json() == {"message": "Only the committee's chair or the DPO revokes a grant."}
    assert Grant.objects.get(pk=grant_id).status == "active"


def test_the_dpo_revokes_and_a_reason_is_required(api, analyst, steward, dataset, members):
    grant_id = approved_grant(api, analyst, steward, members)
    dpo = make_user(Role.DPO)

    blank = api.post(dpo, f"/api/v1/grants/{grant_id}/revoke", {"reason": ""})
    assert blank.status_code == 400
    assert "reason" in blank.json()["errors"]
    assert Grant.objects.get(pk=grant_id).status == "active"

    response = api.post(dpo, f"/api/v1/grants/{grant_id}/revoke", {"reason": "Consent withdrawn."})

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    again = api.post(dpo, f"/api/v1/grants/{grant_id}/revoke", {"reason": "Twice."})
    assert again.status_code == 400
    assert again.json()["message"] == "This grant is already revoked."


# --- visibility --------------------------------------------------------------------


def test_an_invisible_request_is_404_with_the_same_body_as_a_missing_one(
    api, analyst, dataset, members
):
    request_id = create(api, analyst)["id"]
    other = make_user(Role.ANALYST)

    for path in ("", "submit", "withdraw", "votes", "signoffs", "decision"):
        hidden = (api.get if not path else api.post)(other, url(request_id, path))
        missing = (api.get if not path else api.post)(other, url(999999, path))
        assert hidden.status_code == missing.status_code == 404, path
        assert hidden.json() == missing.json() == {"message": "Not found."}, path


def test_a_draft_is_invisible_to_the_committee_until_submitted(
    api, analyst, steward, dataset, members
):
    request_id = create(api, analyst)["id"]

    assert api.get(members["chair"], url(request_id)).status_code == 404
    api.post(analyst, url(request_id, "submit"))
    assert api.get(members["chair"], url(request_id)).status_code == 200


def test_no_token_is_401(client, analyst, dataset):
    response = client.get("/api/v1/requests/")

    assert response.status_code == 401
    assert response.json()["message"]


# --- query counts ------------------------------------------------------------------


def test_the_list_runs_a_fixed_number_of_queries(api, analyst, dataset):
    create(api, analyst)
    api.get(analyst, "/api/v1/requests/")  # warm caches (token, content types)

    with CaptureQueriesContext(connection) as few:
        small = api.get(analyst, "/api/v1/requests/")
    assert small.json()["count"] == 1

    for i in range(6):
        create(
            api,
            analyst,
            title=f"Request {i}",
            fields=["course-scores.score", "course-scores.ethnicity"],
            cohort=None,
        )

    with CaptureQueriesContext(connection) as many:
        large = api.get(analyst, "/api/v1/requests/")

    assert large.json()["count"] == 7
    assert len(many.captured_queries) == len(few.captured_queries), "\n".join(
        q["sql"] for q in many.captured_queries
    )


def decide(api, members, request_id, outcome, *, choice, owners=()):
    for member in members.values():
        assert vote(api, member, request_id, choice).status_code == 201
    obligations = [
        {"text": f"Report {i}.", "owner": owner.email, "due_on": DUE.isoformat()}
        for i, owner in enumerate(owners)
    ]
    response = api.post(
        members["chair"],
        url(request_id, "decision"),
        {"outcome": outcome, "rationale": "Ok.", "conditions": {"obligations": obligations}},
    )
    assert response.status_code == 201, response.json()


def test_the_detail_runs_a_fixed_number_of_queries(api, analyst, steward, dataset, members):
    """However many fields, rounds, versions, votes and obligations a request has."""
    small = in_review(api, analyst, steward, fields=["course-scores.score"], cohort=None)
    decide(api, members, small, "approved", choice="approve", owners=[analyst])

    large = in_review(api, analyst, steward, fields=["course-scores.score"], cohort=None)
    decide(api, members, large, "changes_requested", choice="request_changes")
    services.request_update(
        actor=analyst,
        request=AnalyticsRequest.objects.get(pk=large),
        fields=list(dataset.fields.filter(excluded=False)),
    )
    assert api.post(analyst, url(large, "submit")).status_code == 200
    api.post(
        steward, url(large, "signoffs"), {"dataset": "course-scores", "approve": True, "note": "ok"}
    )
    owners = [analyst, steward, members["hr"]]
    decide(api, members, large, "approved", choice="approve_with_conditions", owners=owners)

    chair = members["chair"]
    api.get(chair, url(small))  # warm caches (token, content types)
    with CaptureQueriesContext(connection) as few:
        api.get(chair, url(small))
    with CaptureQueriesContext(connection) as many:
        detail = api.get(chair, url(large)).json()

    assert detail["round"] == 2
    assert len(detail["content"]["fields"]) == 3
    assert {v["vote"] for v in detail["votes"]} == {"approve_with_conditions"}
    assert len(detail["decision"]["conditions"]["obligations"]) == 3
    assert len(many.captured_queries) == len(few.captured_queries), "\n".join(
        q["sql"] for q in many.captured_queries
    )


# --- schema ------------------------------------------------------------------------


def test_the_openapi_schema_documents_the_analytics_endpoints(api, analyst):
    response = api.get(analyst, "/api/schema/?format=json")

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path, method in [
        ("/api/v1/requests/", "get"),
        ("/api/v1/requests/", "post"),
        ("/api/v1/requests/{id}/", "get"),
        ("/api/v1/requests/{id}/submit", "post"),
        ("/api/v1/requests/{id}/withdraw", "post"),
        ("/api/v1/requests/{id}/signoffs", "post"),
        ("/api/v1/requests/{id}/votes", "post"),
        ("/api/v1/requests/{id}/decision", "post"),
        ("/api/v1/grants/{id}/", "get"),
        ("/api/v1/grants/{id}/revoke", "post"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path}"
    vote_body = paths["/api/v1/requests/{id}/votes"]["post"]["requestBody"]
    assert vote_body["content"]["application/json"]["schema"]["$ref"].endswith("/VoteIn")


def test_a_decision_is_corrected_by_a_new_one_that_supersedes_it(
    api, analyst, steward, dataset, members
):
    """Decisions are never edited: the chair posts a correction naming the latest one,
    and it may narrow what the decision gave (here k 10 → 20), within what the votes
    support."""
    request_id = in_review(api, analyst, steward)
    for member in members.values():
        vote(api, member, request_id)
    first = api.post(
        members["chair"], url(request_id, "decision"), {"outcome": "approved", "rationale": "Ok."}
    ).json()
    old_grant = Grant.objects.get(pk=first["grant"])

    corrected = api.post(
        members["chair"],
        url(request_id, "decision"),
        {
            "outcome": "approved",
            "rationale": "We missed a risk: cells need at least 20 people.",
            "conditions": {"min_cohort": 20},
            "supersedes": first["id"],
        },
    )

    assert corrected.status_code == 201, corrected.json()
    old = Decision.objects.get(pk=first["id"])
    assert old.outcome == "approved" and old.rationale == "Ok." and old.min_cohort == 10
    assert old.superseded_by.min_cohort == 20
    old_grant.refresh_from_db()
    assert old_grant.status == "revoked"
    assert old_grant.revoke_reason == "Superseded by a corrected decision."
    new_grant = api.get(analyst, f"/api/v1/grants/{corrected.json()['grant']}/").json()
    assert (new_grant["status"], new_grant["k"]) == ("active", 20)
    assert api.get(analyst, url(request_id)).json()["status"] == "approved"
    again = api.post(
        members["chair"],
        url(request_id, "decision"),
        {"outcome": "approved", "rationale": "x", "supersedes": first["id"]},
    )
    assert again.status_code == 400  # only the latest decision can be corrected
    assert again.json()["message"] == "Only the request's latest decision can be corrected."
    against_the_votes = api.post(
        members["chair"],
        url(request_id, "decision"),
        {"outcome": "rejected", "rationale": "x", "supersedes": corrected.json()["id"]},
    )
    assert against_the_votes.status_code == 400  # every vote approved
    assert "do not support “Rejected”" in against_the_votes.json()["message"]
    assert Decision.objects.filter(request_id=request_id).count() == 2
    hr = api.post(
        members["hr"],
        url(request_id, "decision"),
        {"outcome": "approved", "rationale": "x", "supersedes": corrected.json()["id"]},
    )
    assert hr.status_code == 403  # only the chair
