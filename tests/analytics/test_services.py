"""The request-to-grant flow through its services: who may do what, when, with what trace."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections

from analytics import services
from analytics.models import (
    AnalyticsRequest,
    Decision,
    Finding,
    Grant,
    GrantStatus,
    Obligation,
    RequestStatus,
    RequestVersion,
    StewardSignoff,
    Vote,
    VoteChoice,
)
from analytics.services import ObligationInput, Tally, tally
from governance.models import Notification
from governance.services import registry
from tests.factories import make_user

from .factories import (
    approve,
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
CHANGES = VoteChoice.REQUEST_CHANGES
CONFLICT = VoteChoice.CONFLICT


@pytest.fixture
def board():
    return make_board()


@pytest.fixture
def oulad():
    return make_oulad()


@pytest.fixture
def analyst():
    return make_analyst()


@pytest.fixture
def draft(analyst, oulad, board):
    return make_ready_request(analyst, oulad)


@pytest.fixture
def in_review(draft, oulad):
    return submit_and_sign_off(draft, oulad)


def keys_for(user) -> set[str]:
    return set(Notification.objects.filter(user=user).values_list("key", flat=True))


def status_of(request) -> str:
    request.refresh_from_db()
    return request.status


# --- the lifecycle --------------------------------------------------------------------------


def test_a_request_goes_from_draft_through_review_to_a_grant(draft, analyst, oulad, board):
    assert (draft.status, draft.round) == (RequestStatus.DRAFT, 0)

    services.request_submit(actor=analyst, request=draft)
    draft.refresh_from_db()
    assert (draft.status, draft.round, draft.committee) == (
        RequestStatus.SUBMITTED,
        1,
        board.committee,
    )
    assert [v.number for v in draft.versions.all()] == [1]
    assert f"request:{draft.pk}:round:1:submitted" in keys_for(oulad.steward)
    assert not keys_for(board.chair)  # the committee waits for the stewards

    services.signoff_record(
        actor=oulad.steward, request=draft, dataset=oulad.dataset, approve=True, note="Fine."
    )
    assert status_of(draft) == RequestStatus.IN_REVIEW
    assert f"request:{draft.pk}:round:1:in_review" in keys_for(board.chair)

    vote_all(draft, board.voters[:3], [APPROVE, VoteChoice.APPROVE_WITH_CONDITIONS, APPROVE])
    owner = make_dpo()
    decision = services.decision_record(
        actor=board.chair,
        request=draft,
        outcome="approved",
        rationale="Clear benefit; aggregate only.",
        aggregate_only=True,
        min_cohort=15,
        expires_on=today() + datetime.timedelta(days=30),
        obligations=[
            ObligationInput("Report the findings to the committee", owner, today()),
        ],
    )

    assert status_of(draft) == RequestStatus.APPROVED
    grant = Grant.objects.get(request=draft)
    assert grant.decision == decision
    assert grant.grantee == analyst
    assert set(grant.fields.all()) == set(draft.fields.all())
    assert (grant.output_level, grant.k) == ("aggregate", 15)
    assert (grant.valid_from, grant.valid_until) == (
        today(),
        today() + datetime.timedelta(days=30),
    )
    assert grant.status == GrantStatus.ACTIVE and grant.is_usable()
    assert Obligation.objects.get(decision=decision).owner == owner
    assert f"decision:{decision.pk}" in keys_for(analyst)


def test_without_aggregate_only_the_grant_keeps_the_requested_output_and_end(analyst, oulad, board):
    request = make_ready_request(analyst, oulad, output_level="pseudonymised")

    decision, request = approve(request, oulad, board)

    grant = decision.grant
    assert (grant.output_level, grant.k) == ("pseudonymised", 10)
    assert grant.valid_until == request.ends_on


def test_changes_requested_then_an_edit_and_a_resubmission_open_round_two(
    in_review, analyst, oulad, board
):
    vote_all(in_review, board.voters[:3], CHANGES)
    services.decision_record(
        actor=board.chair,
        request=in_review,
        outcome="changes_requested",
        rationale="Say why you need the final result.",
    )
    assert status_of(in_review) == RequestStatus.CHANGES_REQUESTED
    assert not Grant.objects.exists()

    assert services.request_update(
        actor=analyst,
        request=in_review,
        fields=oulad.fields("code_module", "final_result", "studied_credits"),
        justification="Credits explain withdrawals better than modules alone.",
    )
    services.request_submit(actor=analyst, request=in_review)

    in_review.refresh_from_db()
    assert (in_review.status, in_review.round) == (RequestStatus.SUBMITTED, 2)
    first, second = in_review.versions.order_by("number")
    assert (first.number, second.number) == (1, 2)
    changed = {name for name, _, _ in services.version_differences(first.content, second.content)}
    assert changed == {"fields", "justification"}
    # Round two starts afresh: the stewards sign off again, then members vote again.
    submit_signoff = services.signoff_record(
        actor=oulad.steward, request=in_review, dataset=oulad.dataset, approve=True, note="Ok."
    )
    assert submit_signoff.round == 2
    assert tally(in_review).counted == 0
    services.vote_cast(actor=board.chair, request=in_review, choice=APPROVE, rationale="Better.")
    assert Vote.objects.filter(request=in_review, member=board.chair).count() == 2


def test_a_steward_decline_returns_the_request_to_the_analyst(draft, analyst, oulad, board):
    services.request_submit(actor=analyst, request=draft)

    services.signoff_record(
        actor=oulad.steward,
        request=draft,
        dataset=oulad.dataset,
        approve=False,
        note="Region is not needed for this question.",
    )

    assert status_of(draft) == RequestStatus.CHANGES_REQUESTED
    assert any(":declined:" in key for key in keys_for(analyst))
    assert not keys_for(board.chair)
    with pytest.raises(ValidationError, match="not open for votes"):
        services.vote_cast(actor=board.chair, request=draft, choice=APPROVE, rationale="x")
    # The analyst can edit and submit again.
    services.request_update(actor=analyst, request=draft, title="Narrower question")
    services.request_submit(actor=analyst, request=draft)
    assert (status_of(draft), draft.round) == (RequestStatus.SUBMITTED, 2)


@pytest.mark.parametrize("stage", ["draft", "submitted", "in_review", "changes_requested"])
def test_the_requester_withdraws_at_any_time_before_a_decision(stage, draft, analyst, oulad, board):
    if stage != "draft":
        services.request_submit(actor=analyst, request=draft)
    if stage in ("in_review", "changes_requested"):
        services.signoff_record(
            actor=oulad.steward,
            request=draft,
            dataset=oulad.dataset,
            approve=stage == "in_review",
            note="Noted.",
        )
    assert status_of(draft) == stage

    services.request_withdraw(actor=analyst, request=draft)

    assert status_of(draft) == RequestStatus.WITHDRAWN
    assert AnalyticsRequest.history.filter(id=draft.pk).latest("history_date").history_user == (
        analyst
    )


def test_no_withdrawal_after_a_decision_nor_by_anyone_else(draft, analyst, oulad, board):
    with pytest.raises(PermissionDenied):
        services.request_withdraw(actor=board.chair, request=draft)
    assert status_of(draft) == RequestStatus.DRAFT

    approve(draft, oulad, board)

    with pytest.raises(ValidationError, match="decided request cannot be withdrawn"):
        services.request_withdraw(actor=analyst, request=draft)
    assert status_of(draft) == RequestStatus.APPROVED


# --- quorum and decision rules ------------------------------------------------------------


DECISIONS = {
    # (rule, votes, outcome): may the chair record it?
    "majority: 2 of 3 approve": ("majority", [APPROVE, APPROVE, REJECT], "approved", True),
    "majority: 1 of 3 approve": ("majority", [APPROVE, REJECT, CHANGES], "approved", False),
    "majority: split, sent back": (
        "majority",
        [APPROVE, REJECT, CHANGES],
        "changes_requested",
        True,
    ),
    "majority: 2 of 3 reject": ("majority", [REJECT, REJECT, APPROVE], "rejected", True),
    "majority: 1 of 3 reject": ("majority", [REJECT, APPROVE, APPROVE], "rejected", False),
    "two thirds: 2 of 3": ("two_thirds", [APPROVE, APPROVE, REJECT], "approved", True),
    "two thirds: 2 of 4": ("two_thirds", [APPROVE, APPROVE, REJECT, CHANGES], "approved", False),
    "two thirds: 3 of 4": ("two_thirds", [APPROVE, APPROVE, APPROVE, REJECT], "approved", True),
    "unanimous: 2 of 3": ("unanimous", [APPROVE, APPROVE, REJECT], "approved", False),
    "unanimous: 3 of 3": ("unanimous", [APPROVE, APPROVE, APPROVE], "approved", True),
    "unanimous: 3 of 4 reject": ("unanimous", [REJECT, REJECT, REJECT, APPROVE], "rejected", False),
    "unanimous: not unanimous": (
        "unanimous",
        [APPROVE, APPROVE, REJECT],
        "changes_requested",
        True,
    ),
}


@pytest.mark.parametrize("case", list(DECISIONS))
def test_the_decision_must_be_supported_by_the_votes_under_the_committees_rule(
    case, analyst, oulad
):
    rule, votes, outcome, allowed = DECISIONS[case]
    board = make_board(members=4, quorum=3, rule=rule)
    request = submit_and_sign_off(make_ready_request(analyst, oulad), oulad)
    vote_all(request, board.voters[: len(votes)], votes)

    if allowed:
        decision = services.decision_record(
            actor=board.chair, request=request, outcome=outcome, rationale="As voted."
        )
        assert decision.outcome == outcome
        assert status_of(request) == outcome
        return
    with pytest.raises(ValidationError) as caught:
        services.decision_record(
            actor=board.chair, request=request, outcome=outcome, rationale="As voted."
        )
    message = " ".join(caught.value.messages)
    assert "do not support" in message
    assert f"under the {board.committee.get_rule_display().lower()} rule" in message
    assert not Decision.objects.exists()
    assert status_of(request) == RequestStatus.IN_REVIEW


def test_no_decision_before_quorum_and_a_declared_conflict_does_not_count(analyst, oulad):
    board = make_board(members=4, quorum=3)
    request = submit_and_sign_off(make_ready_request(analyst, oulad), oulad)
    vote_all(request, board.voters[:3], [APPROVE, APPROVE, CONFLICT])
    assert tally(request) == Tally(approve=2, request_changes=0, reject=0, recused=1)

    with pytest.raises(ValidationError, match=r"No quorum: 2 non-recused vote\(s\), 3 needed"):
        services.decision_record(
            actor=board.chair, request=request, outcome="approved", rationale="Two say yes."
        )
    assert not Decision.objects.exists()

    services.vote_cast(actor=board.voters[3], request=request, choice=REJECT, rationale="No.")
    services.decision_record(
        actor=board.chair, request=request, outcome="approved", rationale="Two of three."
    )
    assert status_of(request) == RequestStatus.APPROVED


def test_an_unknown_outcome_is_refused(in_review, board):
    vote_all(in_review, board.voters[:3], APPROVE)

    with pytest.raises(ValidationError) as caught:
        services.decision_record(
            actor=board.chair, request=in_review, outcome="maybe", rationale="Hmm."
        )
    assert caught.value.message_dict == {"outcome": ["Unknown outcome 'maybe'."]}
    assert not Decision.objects.exists()


# --- votes ------------------------------------------------------------------------------------


def test_one_vote_per_member_per_round_the_first_stands(in_review, board):
    member = board.members[0]
    services.vote_cast(actor=member, request=in_review, choice=APPROVE, rationale="Useful.")

    with pytest.raises(ValidationError, match="already voted in this round"):
        services.vote_cast(actor=member, request=in_review, choice=REJECT, rationale="Changed.")

    vote = Vote.objects.get(request=in_review, member=member)
    assert (vote.choice, vote.rationale) == (APPROVE, "Useful.")


def test_a_vote_needs_a_rationale_and_a_known_choice(in_review, board):
    with pytest.raises(ValidationError, match="rationale is required"):
        services.vote_cast(actor=board.chair, request=in_review, choice=APPROVE, rationale="  ")
    with pytest.raises(ValidationError, match="Unknown vote"):
        services.vote_cast(actor=board.chair, request=in_review, choice="abstain", rationale="x")
    assert not Vote.objects.exists()


def test_the_requester_never_votes_even_as_a_member(oulad):
    analyst = make_analyst()
    board = make_board(extra_members=[(analyst, "member")])
    request = submit_and_sign_off(make_ready_request(analyst, oulad), oulad)
    assert board.committee.memberships.filter(user=analyst).exists()

    with pytest.raises(PermissionDenied, match="your own request"):
        services.vote_cast(actor=analyst, request=request, choice=APPROVE, rationale="Mine.")

    assert not Vote.objects.exists()
    assert f"request:{request.pk}:round:1:in_review" not in keys_for(analyst)


def test_a_non_member_cannot_vote(in_review):
    outsider = make_user("Committee member")

    with pytest.raises(PermissionDenied, match="not a member"):
        services.vote_cast(actor=outsider, request=in_review, choice=APPROVE, rationale="Me too.")

    assert not Vote.objects.exists()


def test_no_vote_before_the_stewards_nor_after_the_decision(draft, analyst, oulad, board):
    services.request_submit(actor=analyst, request=draft)
    with pytest.raises(ValidationError, match="not open for votes"):
        services.vote_cast(actor=board.chair, request=draft, choice=APPROVE, rationale="Early.")
    assert not Vote.objects.exists()

    services.signoff_record(
        actor=oulad.steward, request=draft, dataset=oulad.dataset, approve=True, note="Fine."
    )
    vote_all(draft, board.voters[:3], APPROVE)
    services.decision_record(actor=board.chair, request=draft, outcome="approved", rationale="Y.")
    late = board.members[-1]
    with pytest.raises(ValidationError, match="not open for votes"):
        services.vote_cast(actor=late, request=draft, choice=REJECT, rationale="Late.")
    assert not Vote.objects.filter(member=late).exists()


# --- decisions --------------------------------------------------------------------------------


def test_only_the_chair_records_the_decision(in_review, board):
    vote_all(in_review, board.voters[:3], APPROVE)

    with pytest.raises(PermissionDenied, match="Only the committee's chair"):
        services.decision_record(
            actor=board.members[0], request=in_review, outcome="approved", rationale="Yes."
        )

    assert not Decision.objects.exists()
    assert status_of(in_review) == RequestStatus.IN_REVIEW


def test_a_correction_supersedes_the_decision_which_is_never_edited(draft, oulad, board):
    first, request = approve(draft, oulad, board, min_cohort=10)
    old_grant = first.grant
    recorded = {f.name: getattr(first, f.attname) for f in Decision._meta.concrete_fields}

    second = services.decision_record(
        actor=board.chair,
        request=request,
        outcome="approved",
        rationale="Corrected: cells need at least 20 people.",
        min_cohort=20,
        supersedes=first,
    )

    first.refresh_from_db()
    assert {f.name: getattr(first, f.attname) for f in Decision._meta.concrete_fields} == recorded
    assert Decision.history.filter(id=first.pk).count() == 1
    assert second.supersedes == first
    old_grant.refresh_from_db()
    assert old_grant.status == GrantStatus.REVOKED
    assert old_grant.revoke_reason == "Superseded by a corrected decision."
    new_grant = second.grant
    assert (new_grant.status, new_grant.k) == (GrantStatus.ACTIVE, 20)
    assert status_of(request) == RequestStatus.APPROVED

    with pytest.raises(ValidationError, match="latest decision"):
        services.decision_record(
            actor=board.chair,
            request=request,
            outcome="rejected",
            rationale="Correcting the old one again.",
            supersedes=first,
        )
    assert Decision.objects.count() == 2


def test_a_correction_to_a_refusal_the_votes_support_revokes_the_grant_and_makes_none(
    draft, oulad, board
):
    """Two of three approved under a majority; the committee then adopts unanimity, so
    the round's votes no longer support the approval: the chair corrects it."""
    submit_and_sign_off(draft, oulad)
    vote_all(draft, board.voters[:3], [APPROVE, APPROVE, REJECT])
    first = services.decision_record(
        actor=board.chair, request=draft, outcome="approved", rationale="Majority."
    )
    registry.committee_update(actor=board.chair, committee=board.committee, rule="unanimous")

    with pytest.raises(ValidationError, match="do not support “Rejected”"):
        services.decision_record(
            actor=board.chair,
            request=draft,
            outcome="rejected",
            rationale="Only one member rejected.",
            supersedes=first,
        )
    services.decision_record(
        actor=board.chair,
        request=draft,
        outcome="changes_requested",
        rationale="Under unanimity the approval does not stand.",
        supersedes=first,
    )

    assert status_of(draft) == RequestStatus.CHANGES_REQUESTED
    assert list(Grant.objects.values_list("status", flat=True)) == [GrantStatus.REVOKED]


def test_a_correction_against_the_votes_is_refused_and_the_grant_stands(draft, oulad, board):
    """Every vote approved: recording “rejected” now would misstate the committee. To stop
    the access the chair revokes the grant instead."""
    first, request = approve(draft, oulad, board)

    with pytest.raises(ValidationError, match="do not support “Rejected”"):
        services.decision_record(
            actor=board.chair,
            request=request,
            outcome="rejected",
            rationale="The data is needed for appraisals after all.",
            supersedes=first,
        )

    assert status_of(request) == RequestStatus.APPROVED
    assert list(Grant.objects.values_list("status", flat=True)) == [GrantStatus.ACTIVE]
    assert Decision.objects.count() == 1


# --- grants -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["chair", "dpo"])
def test_the_chair_or_the_dpo_revokes_a_grant(who, draft, analyst, oulad, board):
    decision, request = approve(draft, oulad, board)
    actor = board.chair if who == "chair" else make_dpo()

    grant = services.grant_revoke(
        actor=actor, grant=decision.grant, reason="The cohort turned out to be tiny."
    )

    grant.refresh_from_db()
    assert grant.status == GrantStatus.REVOKED
    assert (grant.revoked_by, grant.revoke_reason) == (actor, "The cohort turned out to be tiny.")
    assert not grant.is_usable()
    assert status_of(request) == RequestStatus.REVOKED
    assert f"grant:{grant.pk}:revoked" in keys_for(analyst)
    with pytest.raises(ValidationError, match="already revoked"):
        services.grant_revoke(actor=actor, grant=grant, reason="Again.")


def test_nobody_else_revokes_and_a_reason_is_required(draft, analyst, oulad, board):
    decision, _ = approve(draft, oulad, board)
    grant = decision.grant

    for someone in (board.members[0], analyst, oulad.steward):
        with pytest.raises(PermissionDenied):
            services.grant_revoke(actor=someone, grant=grant, reason="I would rather not.")
    with pytest.raises(ValidationError, match="reason is required"):
        services.grant_revoke(actor=board.chair, grant=grant, reason=" ")

    grant.refresh_from_db()
    assert grant.status == GrantStatus.ACTIVE


# --- history ------------------------------------------------------------------------------------


def test_every_step_is_recorded_in_history_with_its_actor(draft, analyst, oulad, board):
    dpo = make_dpo()
    decision, request = approve(draft, oulad, board)
    services.grant_revoke(actor=dpo, grant=decision.grant, reason="Revoked for the test.")

    request_history = AnalyticsRequest.history.filter(id=request.pk).order_by(
        "history_date", "history_id"
    )
    by_status = {}
    for row in request_history:
        by_status.setdefault(row.status, row.history_user)
    assert by_status == {
        RequestStatus.DRAFT: analyst,
        RequestStatus.SUBMITTED: analyst,
        RequestStatus.IN_REVIEW: oulad.steward,
        RequestStatus.APPROVED: board.chair,
        RequestStatus.REVOKED: dpo,
    }
    assert {h.history_user for h in RequestVersion.history.all()} == {analyst}
    assert {h.history_user for h in Finding.history.all()} <= {analyst}
    assert StewardSignoff.history.get().history_user == oulad.steward
    assert {(h.member_id, h.history_user) for h in Vote.history.all()} == {
        (voter.pk, voter) for voter in board.voters[:3]
    }
    assert Decision.history.get().history_user == board.chair
    grant_history = list(
        Grant.history.filter(id=decision.grant.pk).order_by("history_date", "history_id")
    )
    # Created (and given its fields) by the chair's decision; revoked by the DPO.
    assert (grant_history[0].history_type, grant_history[0].history_user) == ("+", board.chair)
    assert {h.history_user for h in grant_history[:-1]} == {board.chair}
    assert (grant_history[-1].status, grant_history[-1].history_user) == (
        GrantStatus.REVOKED,
        dpo,
    )


# --- two members at the same instant (PostgreSQL row locks) ----------------------------------


def _at_once(*calls):
    """Run each call in its own thread with its own connection, released together."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_members_voting_at_the_same_instant_are_both_recorded():
    board = make_board()
    oulad = make_oulad()
    request = submit_and_sign_off(make_ready_request(make_analyst(), oulad), oulad)
    first, second = board.members[:2]

    outcomes = _at_once(
        lambda: services.vote_cast(actor=first, request=request, choice=APPROVE, rationale="Yes."),
        lambda: services.vote_cast(actor=second, request=request, choice=REJECT, rationale="No."),
    )

    assert all(isinstance(o, Vote) for o in outcomes), outcomes
    assert set(Vote.objects.filter(request=request).values_list("member", "choice")) == {
        (first.pk, APPROVE),
        (second.pk, REJECT),
    }
    assert tally(request) == Tally(approve=1, request_changes=0, reject=1, recused=0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_member_voting_twice_at_the_same_instant_gets_one_vote_and_a_clear_error():
    board = make_board()
    oulad = make_oulad()
    request = submit_and_sign_off(make_ready_request(make_analyst(), oulad), oulad)
    member = board.members[0]

    outcomes = _at_once(
        lambda: services.vote_cast(actor=member, request=request, choice=APPROVE, rationale="A."),
        lambda: services.vote_cast(actor=member, request=request, choice=REJECT, rationale="B."),
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["ValidationError", "Vote"], outcomes
    refused = next(o for o in outcomes if isinstance(o, ValidationError))
    assert "already voted in this round" in " ".join(refused.messages)
    assert Vote.objects.filter(request=request, member=member).count() == 1
    assert tally(request).counted == 1
