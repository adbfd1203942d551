"""A correction is not a back door (issue 10, section 1).

Each finding is replayed as it was found, through the API and through the chair's
correction page, and refused with nothing written: the supersede that turned three
rejections into a k = 2 grant, the supersede after a revocation, and the widening
corrections. Then the corrections that are allowed: narrowing ones, which replace the
grant by a narrower one.
"""

from __future__ import annotations

import datetime
import io
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from analytics import services
from analytics.models import Decision, Grant, GrantStatus, RequestStatus, VoteChoice
from governance.models import Notification
from governance.services import accounts, registry
from governance.services.records import records_import
from tests.analytics.factories import (
    make_analyst,
    make_board,
    make_dpo,
    make_oulad,
    make_ready_request,
    submit_and_sign_off,
    today,
    vote_all,
)

pytestmark = pytest.mark.django_db

APPROVE = VoteChoice.APPROVE
REJECT = VoteChoice.REJECT
EXPIRES = today() + datetime.timedelta(days=60)
NEW_ROUND = "needs a new review round"


# --- the world -------------------------------------------------------------------------


@pytest.fixture
def board():
    """A chair and three members; quorum 3, simple majority."""
    return make_board()


@pytest.fixture
def oulad():
    """The OULAD-like dataset with 30 people loaded."""
    oulad = make_oulad()
    lines = ["external_id,code_module,final_result"]
    lines += [f"S{n:03d},{'AAA' if n % 2 else 'BBB'},Pass" for n in range(30)]
    records_import(
        actor=oulad.steward,
        dataset=oulad.dataset,
        stream=io.BytesIO("\n".join(lines).encode() + b"\n"),
        file_name="students.csv",
    )
    return oulad


@pytest.fixture
def analyst():
    return make_analyst()


class Api:
    """Bearer-token JSON calls, one token per user."""

    def __init__(self):
        self.client = Client()
        self._headers = {}

    def _auth(self, user) -> dict:
        if user.pk not in self._headers:
            _, secret = accounts.api_token_create(actor=user, user=user, name="tests")
            self._headers[user.pk] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        return self._headers[user.pk]

    def get(self, user, url):
        return self.client.get(url, **self._auth(user))

    def post(self, user, url, body):
        return self.client.post(
            url, data=json.dumps(body), content_type="application/json", **self._auth(user)
        )


@pytest.fixture
def api():
    return Api()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    """The page's text as a person reads it."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def in_review(analyst, oulad):
    request = make_ready_request(analyst, oulad, output_level="pseudonymised")
    return submit_and_sign_off(request, oulad)


def decided(analyst, oulad, board, outcome, choices, **conditions) -> Decision:
    request = in_review(analyst, oulad)
    vote_all(request, board.voters[:3], choices)
    return services.decision_record(
        actor=board.chair, request=request, outcome=outcome, rationale="Decided.", **conditions
    )


def approved(analyst, oulad, board, **conditions) -> Decision:
    return decided(analyst, oulad, board, "approved", APPROVE, **conditions)


def state(request_id) -> dict:
    """Everything a refused correction must leave as it was."""
    return {
        "decisions": list(
            Decision.objects.filter(request_id=request_id).values_list("pk", "outcome")
        ),
        "grants": list(
            Grant.objects.filter(request_id=request_id).order_by("pk").values_list("pk", "status")
        ),
        "request": Decision.objects.filter(request_id=request_id).first().request.status,
        "notifications": Notification.objects.count(),
    }


def correction(decision: Decision, outcome="approved", **conditions) -> dict:
    return {
        "outcome": outcome,
        "rationale": "Corrected.",
        "conditions": conditions,
        "supersedes": decision.pk,
    }


def decision_url(decision: Decision) -> str:
    return f"/api/v1/requests/{decision.request_id}/decision"


def extract_status(api, analyst, grant_id) -> int:
    return api.get(analyst, f"/api/v1/grants/{grant_id}/extract.csv").status_code


def page_post(decision: Decision, outcome="approved", **conditions) -> dict:
    """The correction page's form, as the chair fills it in."""
    data = {
        "outcome": outcome,
        "rationale": "Corrected.",
        "min_cohort": str(conditions.pop("min_cohort", decision.min_cohort)),
        "obligations-TOTAL_FORMS": "0",
        "obligations-INITIAL_FORMS": "0",
        "obligations-MIN_NUM_FORMS": "0",
        "obligations-MAX_NUM_FORMS": "20",
    }
    if conditions.pop("aggregate_only", decision.aggregate_only):
        data["aggregate_only"] = "on"
    expires_on = conditions.pop("expires_on", decision.expires_on)
    data["expires_on"] = expires_on.isoformat() if expires_on else ""
    epsilon = conditions.pop("epsilon", decision.epsilon)
    data["epsilon"] = "" if epsilon is None else str(epsilon)
    assert not conditions
    return data


def correct_url(decision: Decision) -> str:
    return f"/requests/{decision.request_id}/decision/correct/"


# --- finding 1: three rejections superseded by an approval with k = 2 --------------------


def test_finding_1_api_a_rejection_is_not_superseded_by_an_approval(api, analyst, oulad, board):
    rejection = decided(analyst, oulad, board, "rejected", REJECT)
    before = state(rejection.request_id)

    response = api.post(
        board.chair,
        decision_url(rejection),
        correction(rejection, min_cohort=2, aggregate_only=False),
    )

    assert response.status_code == 400
    body = response.json()
    assert body["message"] == (
        "The votes (0 approve, 0 request changes, 3 reject) do not support “Approved” under "
        "the majority rule."
    ), body
    assert body["errors"]["non_field_errors"] == [body["message"]]
    assert state(rejection.request_id) == before
    assert not Grant.objects.exists()
    assert api.get(analyst, f"/api/v1/requests/{rejection.request_id}/").json()["status"] == (
        "rejected"
    )


def test_finding_1_web_the_correction_page_refuses_the_same_approval(analyst, oulad, board):
    rejection = decided(analyst, oulad, board, "rejected", REJECT)
    before = state(rejection.request_id)
    chair = login(board.chair)

    page = chair.get(correct_url(rejection))
    assert page.status_code == 200
    assert "Approved: not supported" in text(page)
    response = chair.post(
        correct_url(rejection), page_post(rejection, min_cohort=2, aggregate_only=False)
    )

    assert response.status_code == 200
    assert "do not support “Approved” under the majority rule" in text(response)
    assert state(rejection.request_id) == before
    assert not Grant.objects.exists()


def test_a_refusal_is_not_turned_into_an_approval_even_when_the_votes_now_support_one(
    api, analyst, oulad, board
):
    """Two of three approved under unanimity: changes requested. The committee then
    adopts a simple majority, under which those votes would approve; still no
    correction turns the refusal into an approval."""
    registry.committee_update(actor=board.chair, committee=board.committee, rule="unanimous")
    refusal = decided(analyst, oulad, board, "changes_requested", [APPROVE, APPROVE, REJECT])
    registry.committee_update(actor=board.chair, committee=board.committee, rule="majority")
    before = state(refusal.request_id)

    response = api.post(board.chair, decision_url(refusal), correction(refusal))

    assert response.status_code == 400
    message = response.json()["message"]
    assert "It would turn “Changes requested” into an approval." in message
    assert NEW_ROUND in message
    assert state(refusal.request_id) == before


# --- finding 2: a revoked grant re-created by a correction ------------------------------


@pytest.mark.parametrize("revoker", ["dpo", "chair"])
@pytest.mark.parametrize("outcome", ["approved", "rejected", "changes_requested"])
def test_finding_2_api_no_correction_after_a_revocation(
    api, analyst, oulad, board, revoker, outcome
):
    approval = approved(analyst, oulad, board)
    grant = approval.grant
    assert extract_status(api, analyst, grant.pk) == 200
    actor = make_dpo() if revoker == "dpo" else board.chair
    revoked = api.post(actor, f"/api/v1/grants/{grant.pk}/revoke", {"reason": "Found misuse."})
    assert revoked.status_code == 200, revoked.json()
    before = state(approval.request_id)

    response = api.post(board.chair, decision_url(approval), correction(approval, outcome))

    assert response.status_code == 400
    assert "no correction re-creates a revoked grant" in response.json()["message"]
    assert state(approval.request_id) == before
    assert not Grant.objects.filter(status=GrantStatus.ACTIVE).exists()
    assert extract_status(api, analyst, grant.pk) == 403


def test_finding_2_web_a_revoked_request_has_no_correction_page(analyst, oulad, board):
    approval = approved(analyst, oulad, board)
    services.grant_revoke(actor=make_dpo(), grant=approval.grant, reason="Found misuse.")
    before = state(approval.request_id)
    chair = login(board.chair)

    assert "Correct the decision" not in text(chair.get(f"/requests/{approval.request_id}/"))
    assert chair.get(correct_url(approval)).status_code == 403
    assert chair.post(correct_url(approval), page_post(approval)).status_code == 403
    assert state(approval.request_id) == before


def test_the_chain_of_the_original_finding_is_refused_at_each_step(api, analyst, oulad, board):
    """Rejected, "corrected" to a k = 2 approval, revoked, "corrected" again."""
    rejection = decided(analyst, oulad, board, "rejected", REJECT)
    first = api.post(board.chair, decision_url(rejection), correction(rejection, min_cohort=2))
    assert first.status_code == 400
    with pytest.raises(ValidationError, match="do not support “Approved”"):
        services.decision_record(
            actor=board.chair,
            request=rejection.request,
            outcome="approved",
            rationale="Corrected.",
            min_cohort=2,
            supersedes=rejection,
        )
    assert not Grant.objects.exists()


# --- finding 3: corrections that widen access --------------------------------------------

GRANTED = {"aggregate_only": True, "min_cohort": 10, "expires_on": EXPIRES, "epsilon": 5.0}
WIDER = {
    "aggregate only lifted": ({"aggregate_only": False}, "It would lift “aggregate only”."),
    "lower k": (
        {"min_cohort": 2},
        "It would lower the minimum cohort (k) from 10 to 2.",
    ),
    "later expiry": (
        {"expires_on": EXPIRES + datetime.timedelta(days=10)},
        "It would end the grant on",
    ),
    "no expiry": ({"expires_on": None}, "It would remove the expiry date"),
    "higher epsilon": (
        {"epsilon": 8.0},
        "It would raise the privacy budget (ε) from 5 to 8.",
    ),
}


def _api_conditions(conditions: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in conditions.items()}


@pytest.mark.parametrize("change", WIDER.values(), ids=WIDER.keys())
def test_finding_3_api_a_correction_never_widens_access(api, analyst, oulad, board, change):
    wider, reason = change
    approval = approved(analyst, oulad, board, **GRANTED)
    before = state(approval.request_id)

    response = api.post(
        board.chair,
        decision_url(approval),
        correction(approval, **_api_conditions(GRANTED | wider)),
    )

    assert response.status_code == 400
    message = response.json()["message"]
    assert reason in message and NEW_ROUND in message, message
    assert state(approval.request_id) == before
    grant = Grant.objects.get()
    assert (grant.status, grant.k, grant.output_level) == (GrantStatus.ACTIVE, 10, "aggregate")


@pytest.mark.parametrize("change", WIDER.values(), ids=WIDER.keys())
def test_finding_3_web_the_correction_page_refuses_the_same_widening(analyst, oulad, board, change):
    wider, reason = change
    approval = approved(analyst, oulad, board, **GRANTED)
    before = state(approval.request_id)

    response = login(board.chair).post(correct_url(approval), page_post(approval, **wider))

    assert response.status_code == 200
    assert reason in text(response) and NEW_ROUND in text(response)
    assert state(approval.request_id) == before


# --- allowed: corrections that narrow access ---------------------------------------------

GIVEN = {"aggregate_only": False, "min_cohort": 10, "expires_on": EXPIRES, "epsilon": 5.0}
EARLIER = EXPIRES - datetime.timedelta(days=20)
NARROWER = {
    "higher k": ({"min_cohort": 20}, {"k": 20}),
    "earlier expiry": ({"expires_on": EARLIER}, {"valid_until": EARLIER}),
    "aggregate only": ({"aggregate_only": True}, {"output_level": "aggregate"}),
    "smaller epsilon": ({"epsilon": 2.0}, {"epsilon": 2.0}),
}


@pytest.mark.parametrize("change", NARROWER.values(), ids=NARROWER.keys())
def test_a_narrowing_correction_replaces_the_grant_by_a_narrower_one(
    api, analyst, oulad, board, change
):
    narrower, expected = change
    approval = approved(analyst, oulad, board, **GIVEN)
    old = approval.grant

    response = api.post(
        board.chair,
        decision_url(approval),
        correction(approval, **_api_conditions(GIVEN | narrower)),
    )

    assert response.status_code == 201, response.json()
    old.refresh_from_db()
    assert (old.status, old.revoke_reason) == ("revoked", "Superseded by a corrected decision.")
    new = Grant.objects.get(pk=response.json()["grant"])
    kept = {"k": 10, "valid_until": EXPIRES, "output_level": "pseudonymised", "epsilon": 5.0}
    assert {name: getattr(new, name) for name in kept} == kept | expected
    assert new.status == GrantStatus.ACTIVE
    assert extract_status(api, analyst, old.pk) == 403


def test_after_a_narrowing_the_analyst_downloads_through_the_new_grant_only(
    api, analyst, oulad, board
):
    approval = approved(analyst, oulad, board, **GIVEN)
    old = approval.grant
    assert extract_status(api, analyst, old.pk) == 200

    # Naming no budget keeps the corrected decision's.
    response = api.post(board.chair, decision_url(approval), correction(approval, min_cohort=20))

    assert response.status_code == 201, response.json()
    new_id = response.json()["grant"]
    assert extract_status(api, analyst, old.pk) == 403
    assert extract_status(api, analyst, new_id) == 200
    assert Grant.objects.get(pk=new_id).epsilon == 5.0


def test_the_chair_narrows_a_decision_on_the_correction_page(analyst, oulad, board):
    approval = approved(analyst, oulad, board, **GIVEN)
    old = approval.grant
    chair = login(board.chair)
    detail = chair.get(f"/requests/{approval.request_id}/")
    assert "Correct the decision" in text(detail)
    page = chair.get(correct_url(approval))
    assert page.status_code == 200
    assert "Privacy budget (ε)" in text(page)
    assert 'name="min_cohort" value="10"' in page.content.decode()  # prefilled

    response = chair.post(correct_url(approval), page_post(approval, min_cohort=20))

    assert response.status_code == 302, text(response)
    assert response["Location"] == f"/requests/{approval.request_id}/"
    old.refresh_from_db()
    assert old.status == GrantStatus.REVOKED
    new = Grant.objects.get(status=GrantStatus.ACTIVE)
    assert (new.k, new.epsilon, new.decision.supersedes_id) == (20, 5.0, approval.pk)


def test_members_other_than_the_chair_have_no_correction_page(analyst, oulad, board):
    approval = approved(analyst, oulad, board)
    member = login(board.members[0])
    assert member.get(correct_url(approval)).status_code == 403
    assert member.post(correct_url(approval), page_post(approval, min_cohort=20)).status_code == (
        403
    )
    assert login(analyst).get(correct_url(approval)).status_code == 403
    assert Decision.objects.count() == 1


# --- the state a correction starts from ------------------------------------------------


def test_no_correction_once_a_new_round_has_begun(analyst, oulad, board):
    refusal = decided(analyst, oulad, board, "changes_requested", VoteChoice.REQUEST_CHANGES)
    request = refusal.request
    services.request_submit(actor=analyst, request=request)

    with pytest.raises(ValidationError, match="decision of round 1 can no longer be corrected"):
        services.decision_record(
            actor=board.chair,
            request=request,
            outcome="rejected",
            rationale="Corrected.",
            supersedes=refusal,
        )
    request.refresh_from_db()
    assert (request.status, request.round) == (RequestStatus.SUBMITTED, 2)


def test_no_correction_of_an_expired_grant(analyst, oulad, board):
    approval = approved(analyst, oulad, board)
    services.grants_expire(today=EXPIRES + datetime.timedelta(days=365))

    with pytest.raises(ValidationError, match="no correction extends it"):
        services.decision_record(
            actor=board.chair,
            request=approval.request,
            outcome="approved",
            rationale="Corrected.",
            min_cohort=20,
            supersedes=approval,
        )
    assert not Grant.objects.filter(status=GrantStatus.ACTIVE).exists()
