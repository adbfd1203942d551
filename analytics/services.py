"""Every write in the request-to-grant flow. Each function states the rule it enforces."""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import limits
from governance.history import acting_as
from governance.models import (
    Committee,
    CommitteeMembership,
    DecisionRule,
    Field,
    Role,
    RuleSeverity,
    Seat,
)
from governance.permissions import has_role
from governance.services.notifications import notify

from .models import (
    EDITABLE_STATUSES,
    OPEN_STATUSES,
    AnalyticsRequest,
    Decision,
    Finding,
    Grant,
    GrantStatus,
    Obligation,
    Outcome,
    OutputLevel,
    RequestStatus,
    RequestVersion,
    StewardSignoff,
    Vote,
    VoteChoice,
)
from .privacy import privacy_settings
from .rules import Content, evaluate

CONTENT_FIELDS = (
    "title",
    "purpose",
    "justification",
    "expected_benefit",
    "cohort",
    "output_level",
    "involves_model",
    "automated_decision",
    "human_reviewer",
    "minimisation_justification",
    "retention_days",
    "starts_on",
    "ends_on",
)


class RequestBlocked(ValidationError):
    """Submission refused: blocking findings. ``findings`` lists them."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        super().__init__(
            "The request cannot be submitted while rules block it: "
            + "; ".join(f.message for f in findings)
        )


# --- drafting ------------------------------------------------------------------------


def _check_cohort(cohort, fields: list[Field], *, actor) -> dict | None:
    """A cohort is null (everyone) or {"dataset.field": value, ...}.

    Rules: a field that selects people is a field used. It must be one the request
    names (minimisation), so every rule weighs it and the committee approves it as it
    does any field the request names. It must be within the requester's clearance: a
    released field above it is withheld at each read, but a cohort field cannot be
    withheld without widening the cohort, so a cohort the requester could never read is
    refused now. The value is a single value, one of the field's values when it lists them.
    """
    if cohort in (None, {}):
        return None
    if not isinstance(cohort, dict):
        raise ValidationError({"cohort": 'The cohort is null or {"dataset.field": value}.'})
    if len(cohort) > limits.COHORT_FILTERS:
        raise ValidationError({"cohort": f"A cohort has at most {limits.COHORT_FILTERS} filters."})
    named = {f"{f.dataset.slug}.{f.name}": f for f in fields}
    checked, problems = {}, []
    for key, value in cohort.items():
        key = str(key)
        field = named.get(key)
        if field is None:
            slug, _, name = key.partition(".")
            if not Field.objects.filter(dataset__slug=slug, name=name).exists():
                problems.append(f"{key}: no such field.")
            else:
                problems.append(
                    f"{key}: not one of the request's fields. A field that selects people is "
                    "a field used: add it to the fields (the rules and the committee then weigh "
                    "it) or remove it from the cohort."
                )
        elif not actor.may_see(field.sensitivity):
            problems.append(
                f"{key}: {field.display_label} is "
                f"{field.get_sensitivity_display().lower()} data, above your clearance "
                f"({actor.get_clearance_display().lower()}): you may not select people by it."
            )
        elif not isinstance(value, str | int | float | bool):
            problems.append(f"{key}: the value must be a single value.")
        elif len(str(value)) > limits.COHORT_VALUE:
            problems.append(f"{key}: the value is longer than {limits.COHORT_VALUE} characters.")
        elif field.values and str(value) not in field.values:
            problems.append(f"{key}: {value!r} is not one of {', '.join(field.values)}.")
        else:
            checked[key] = value
    if problems:
        raise ValidationError({"cohort": problems})
    return checked


def _content(request: AnalyticsRequest, fields: list[Field]) -> Content:
    return Content(
        purpose=request.purpose,
        fields=fields,
        output_level=request.output_level,
        involves_model=request.involves_model,
        automated_decision=request.automated_decision,
        human_reviewer_id=request.human_reviewer_id,
        minimisation_justification=request.minimisation_justification,
    )


def _fields_for_rules(field_ids) -> list[Field]:
    return list(
        Field.objects.filter(pk__in=field_ids)
        .select_related("dataset")
        .prefetch_related("dataset__tags", "dataset__purposes", "dataset__fields")
        .order_by("dataset__slug", "position", "name")
    )


def findings_refresh(*, request: AnalyticsRequest, actor) -> list[Finding]:
    """Re-evaluate the rules on the request's pending content (the next round's)."""
    fields = _fields_for_rules(request.fields.values_list("pk", flat=True))
    verdicts = evaluate(_content(request, fields))
    pending_round = request.round + 1
    with acting_as(actor):
        for old in request.findings.filter(round=pending_round):
            old.delete()
        return [
            Finding.objects.create(
                request=request,
                round=pending_round,
                rule=v.rule,
                severity=v.severity,
                message=v.message,
                fix=v.fix,
                field_names=v.field_names,
            )
            for v in verdicts
        ]


def findings_preview(*, purpose, fields: list[Field], **content) -> list:
    """The verdicts a draft would get, without saving anything (live feedback)."""
    fields = _fields_for_rules([f.pk for f in fields])
    return evaluate(
        Content(
            purpose=purpose,
            fields=fields,
            output_level=content.get("output_level") or OutputLevel.AGGREGATE,
            involves_model=bool(content.get("involves_model")),
            automated_decision=bool(content.get("automated_decision")),
            human_reviewer_id=getattr(content.get("human_reviewer"), "pk", None),
            minimisation_justification=content.get("minimisation_justification") or "",
        )
    )


@transaction.atomic
def request_create(*, actor, fields: list[Field], **content) -> AnalyticsRequest:
    """Draft a request. Rule: only analysts request data; findings are computed at once."""
    if not has_role(actor, Role.ANALYST):
        raise PermissionDenied("Only analysts file requests.")
    fields = list(fields)
    if not fields:
        raise ValidationError({"fields": "Name at least one field."})
    content["cohort"] = _check_cohort(content.get("cohort"), fields, actor=actor)
    request = AnalyticsRequest(requester=actor, **content)
    request.full_clean()
    with acting_as(actor):
        request.save()
        request.fields.set(fields)
    findings_refresh(request=request, actor=actor)
    return request


@transaction.atomic
def request_update(*, actor, request: AnalyticsRequest, fields=None, **changes) -> bool:
    """Edit a draft, or a request returned with changes requested. True if changed.
    Rule: the cohort stays within the fields the request names (``_check_cohort``)."""
    request = AnalyticsRequest.objects.select_for_update().get(pk=request.pk)
    if actor.pk != request.requester_id:
        raise PermissionDenied("Only the requester edits a request.")
    if request.status not in EDITABLE_STATUSES:
        raise ValidationError(f"A {request.get_status_display().lower()} request cannot change.")
    current_fields = list(request.fields.all())
    new_fields = list(fields) if fields is not None else current_fields
    if not new_fields:
        raise ValidationError({"fields": "Name at least one field."})
    # The cohort is checked against the fields as they will be, even when only the
    # fields change: dropping a field the cohort uses is refused.
    cohort = _check_cohort(changes.get("cohort", request.cohort), new_fields, actor=actor)
    if "cohort" in changes:
        changes["cohort"] = cohort
    changed = False
    for name, value in changes.items():
        if getattr(request, name) != value:
            setattr(request, name, value)
            changed = True
    with acting_as(actor):
        if changed:
            request.full_clean()
            request.save()
        if {f.pk for f in new_fields} != {f.pk for f in current_fields}:
            request.fields.set(new_fields)
            changed = True
    if changed:
        findings_refresh(request=request, actor=actor)
    return changed


def snapshot(request: AnalyticsRequest) -> dict:
    """The request's content as plain data, for versions and their differences."""
    data = {}
    for name in CONTENT_FIELDS:
        value = getattr(request, name)
        if name == "purpose":
            value = value.slug
        elif name == "human_reviewer":
            value = value.email if value else None
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        data[name] = value
    data["fields"] = sorted(f"{f.dataset.slug}.{f.name}" for f in request.fields.all())
    return data


def version_differences(older: dict, newer: dict) -> list[tuple[str, object, object]]:
    """(name, before, after) for every part of the content that changed."""
    names = list(CONTENT_FIELDS) + ["fields"]
    return [(n, older.get(n), newer.get(n)) for n in names if older.get(n) != newer.get(n)]


def committee_for(request: AnalyticsRequest) -> Committee:
    committee = request.purpose.committee or Committee.objects.filter(is_default=True).first()
    if committee is None:
        raise ValidationError(
            "No committee reviews this purpose: the DPO must name one or set a default."
        )
    return committee


def _datasets(request: AnalyticsRequest):
    from governance.models import Dataset

    return Dataset.objects.filter(fields__requests=request).distinct().prefetch_related("stewards")


@transaction.atomic
def request_submit(*, actor, request: AnalyticsRequest) -> AnalyticsRequest:
    """Submit for review. Rules: nothing may block; each submission opens a new round;
    the stewards of every dataset it touches are asked first; the cohort is checked again
    (``_check_cohort``), so the committee never approves one the requester may not use."""
    request = AnalyticsRequest.objects.select_for_update().get(pk=request.pk)
    if actor.pk != request.requester_id:
        raise PermissionDenied("Only the requester submits a request.")
    if request.status not in EDITABLE_STATUSES:
        raise ValidationError(
            f"A {request.get_status_display().lower()} request cannot be submitted."
        )
    _check_cohort(request.cohort, list(request.fields.select_related("dataset")), actor=actor)
    findings = findings_refresh(request=request, actor=actor)
    blocking = [f for f in findings if f.severity == "block"]
    if blocking:
        raise RequestBlocked(blocking)
    committee = committee_for(request)
    with acting_as(actor):
        request.round += 1
        request.committee = committee
        request.status = RequestStatus.SUBMITTED
        request.save()
        RequestVersion.objects.create(
            request=request, number=request.round, content=snapshot(request), created_by=actor
        )
    stewards = {u for d in _datasets(request) for u in d.stewards.all()}
    notify(
        users=stewards,
        key=f"request:{request.pk}:round:{request.round}:submitted",
        subject=f"Sign-off needed: {request.title}",
        body=f"{request.requester} submitted a request that touches a dataset you steward.",
        url=request.get_absolute_url(),
    )
    return request


@transaction.atomic
def request_withdraw(*, actor, request: AnalyticsRequest) -> AnalyticsRequest:
    """The requester may withdraw at any time before a decision."""
    request = AnalyticsRequest.objects.select_for_update().get(pk=request.pk)
    if actor.pk != request.requester_id:
        raise PermissionDenied("Only the requester withdraws a request.")
    if request.status not in OPEN_STATUSES:
        raise ValidationError("A decided request cannot be withdrawn.")
    with acting_as(actor):
        request.status = RequestStatus.WITHDRAWN
        request.save()
    return request


# --- stewards -------------------------------------------------------------------------


def _is_steward(user, dataset) -> bool:
    """A named steward of the dataset. Not ``has_perm``, which lets a superuser through:
    signing off is the named steward's act, not an administrator's. (The steward list
    and guardian's permission are kept in step by the registry services.)"""
    return user.is_active and dataset.stewards.filter(pk=user.pk).exists()


@transaction.atomic
def signoff_record(*, actor, request: AnalyticsRequest, dataset, approve: bool, note: str):
    """A steward signs off (or declines) the use of their dataset in this round.

    Rules: only a steward of that dataset, only while the request awaits stewards, once
    per dataset per round, with a note. A decline returns the request to the analyst;
    when every dataset is signed off the committee sees it.
    """
    request = AnalyticsRequest.objects.select_for_update().get(pk=request.pk)
    if not _is_steward(actor, dataset):
        raise PermissionDenied("You do not steward this dataset.")
    if request.status != RequestStatus.SUBMITTED:
        raise ValidationError("This request is not waiting for stewards.")
    datasets = list(_datasets(request))
    if dataset.pk not in {d.pk for d in datasets}:
        raise ValidationError("This request does not use that dataset.")
    if not (note or "").strip():
        raise ValidationError({"note": "A note is required."})
    if request.signoffs.filter(round=request.round, dataset=dataset).exists():
        raise ValidationError("This dataset has already been signed off in this round.")
    with acting_as(actor):
        signoff = StewardSignoff.objects.create(
            request=request,
            round=request.round,
            dataset=dataset,
            steward=actor,
            approve=approve,
            note=note.strip(),
        )
        if not approve:
            request.status = RequestStatus.CHANGES_REQUESTED
            request.save()
    if not approve:
        notify(
            users=[request.requester],
            key=f"request:{request.pk}:round:{request.round}:declined:{dataset.pk}",
            subject=f"Returned by a steward: {request.title}",
            body=f"{actor} declined the use of {dataset.name}: {note}",
            url=request.get_absolute_url(),
        )
        return signoff
    approved = set(
        request.signoffs.filter(round=request.round, approve=True).values_list(
            "dataset_id", flat=True
        )
    )
    if approved >= {d.pk for d in datasets}:
        with acting_as(actor):
            request.status = RequestStatus.IN_REVIEW
            request.save()
        members = [m.user for m in request.committee.memberships.select_related("user")]
        notify(
            users=[u for u in members if u.pk != request.requester_id],
            key=f"request:{request.pk}:round:{request.round}:in_review",
            subject=f"For review: {request.title}",
            body="Every steward has signed off; the request is before your committee.",
            url=request.get_absolute_url(),
        )
    return signoff


# --- committee ------------------------------------------------------------------------


def membership(user, committee: Committee | None) -> CommitteeMembership | None:
    if committee is None or not getattr(user, "is_authenticated", False):
        return None
    return committee.memberships.filter(user=user).first()


def check_may(*, actor, request: AnalyticsRequest, action: str) -> None:
    """Who may sign off, vote or decide at all, whatever the request's state; raises
    PermissionDenied with the reason. The services repeat these checks under a lock."""
    if action == "signoff":
        if not any(_is_steward(actor, d) for d in _datasets(request)):
            raise PermissionDenied("You do not steward a dataset this request uses.")
    elif action == "vote":
        if actor.pk == request.requester_id:
            raise PermissionDenied("You cannot vote on your own request.")
        if membership(actor, request.committee) is None:
            raise PermissionDenied("You are not a member of this request's committee.")
    elif action == "decide":
        seat = membership(actor, request.committee)
        if seat is None or seat.seat != Seat.CHAIR:
            raise PermissionDenied("Only the committee's chair records its decision.")
    else:
        raise ValueError(f"unknown action {action!r}")


@transaction.atomic
def vote_cast(*, actor, request: AnalyticsRequest, choice: str, rationale: str) -> Vote:
    """One vote per member per round, with a rationale; ``conflict`` recuses the member.

    Rules: only members of the request's committee, never the requester, only while the
    committee reviews it. The request row is locked so simultaneous votes queue.
    """
    request = AnalyticsRequest.objects.select_for_update().get(pk=request.pk)
    if actor.pk == request.requester_id:
        raise PermissionDenied("You cannot vote on your own request.")
    if membership(actor, request.committee) is None:
        raise PermissionDenied("You are not a member of this request's committee.")
    if request.status != RequestStatus.IN_REVIEW:
        raise ValidationError("This request is not open for votes.")
    if choice not in VoteChoice.values:
        raise ValidationError({"choice": f"Unknown vote {choice!r}."})
    if not (rationale or "").strip():
        raise ValidationError({"rationale": "A rationale is required."})
    if request.votes.filter(round=request.round, member=actor).exists():
        raise ValidationError("You have already voted in this round; your first vote stands.")
    try:
        with transaction.atomic(), acting_as(actor):
            return Vote.objects.create(
                request=request,
                round=request.round,
                member=actor,
                choice=choice,
                rationale=rationale.strip(),
            )
    except IntegrityError:
        raise ValidationError(
            "You have already voted in this round; your first vote stands."
        ) from None


@dataclass(frozen=True)
class Tally:
    approve: int
    request_changes: int
    reject: int
    recused: int

    @property
    def counted(self) -> int:
        return self.approve + self.request_changes + self.reject


def tally(request: AnalyticsRequest, votes=None) -> Tally:
    if votes is None:
        votes = request.votes.filter(round=request.round)
    counts = Counter(v.choice for v in votes)
    return Tally(
        approve=counts[VoteChoice.APPROVE] + counts[VoteChoice.APPROVE_WITH_CONDITIONS],
        request_changes=counts[VoteChoice.REQUEST_CHANGES],
        reject=counts[VoteChoice.REJECT],
        recused=counts[VoteChoice.CONFLICT],
    )


def _meets(rule: str, votes_for: int, counted: int) -> bool:
    if counted == 0:
        return False
    if rule == DecisionRule.UNANIMOUS:
        return votes_for == counted
    if rule == DecisionRule.TWO_THIRDS:
        return 3 * votes_for >= 2 * counted
    return 2 * votes_for > counted


def supported_outcomes(committee: Committee, t: Tally) -> set[str]:
    """Which outcomes the votes support under the committee's rule.

    Approval and rejection each need their votes to meet the rule (a majority, two
    thirds, or every non-recused vote). When approval is not supported the chair may
    always send the request back with changes requested.
    """
    if t.counted < committee.quorum:
        return set()
    supported = set()
    if _meets(committee.rule, t.approve, t.counted):
        supported.add(Outcome.APPROVED)
    else:
        supported.add(Outcome.CHANGES_REQUESTED)
    if _meets(committee.rule, t.reject, t.counted):
        supported.add(Outcome.REJECTED)
    return supported


@dataclass
class ObligationInput:
    text: str
    owner: object
    due_on: datetime.date


# Where each outcome leaves the request.
_STATUS_AFTER = {
    Outcome.APPROVED: RequestStatus.APPROVED,
    Outcome.CHANGES_REQUESTED: RequestStatus.CHANGES_REQUESTED,
    Outcome.REJECTED: RequestStatus.REJECTED,
}

NEEDS_NEW_ROUND = (
    "A correction may only narrow what the recorded decision allowed: turning a refusal "
    "into an approval, or widening access, needs a new review round."
)


def _day(day: datetime.date) -> str:
    return f"{day.day} {day:%b %Y}"


def _correction_refusal(request: AnalyticsRequest, supersedes: Decision) -> str | None:
    """Why ``supersedes`` cannot be corrected now; None when it can."""
    if (
        supersedes.request_id != request.pk
        or Decision.objects.filter(supersedes=supersedes).exists()
    ):
        return "Only the request's latest decision can be corrected."
    if request.status == RequestStatus.REVOKED:
        return (
            "This request's grant was revoked, and no correction re-creates a revoked grant. "
            "Access needs a new review round: the analyst files the request again."
        )
    if request.status == RequestStatus.EXPIRED:
        return (
            "This request's grant has expired, and no correction extends it. Access needs a "
            "new review round: the analyst files the request again."
        )
    if supersedes.round != request.round or request.status != _STATUS_AFTER[supersedes.outcome]:
        return (
            f"The decision of round {supersedes.round} can no longer be corrected: the request "
            f"is now {request.get_status_display().lower()} (round {request.round})."
        )
    if supersedes.outcome == Outcome.APPROVED:
        grant = Grant.objects.filter(decision=supersedes).first()
        if grant is None or grant.status != GrantStatus.ACTIVE:
            state = grant.get_status_display().lower() if grant else "missing"
            return (
                f"The grant this decision gave is {state}, and no correction re-creates it. "
                "Access needs a new review round."
            )
        if grant.valid_until < timezone.localdate():
            return (
                f"The grant this decision gave ended on {_day(grant.valid_until)}, and no "
                "correction extends it. Access needs a new review round."
            )
    return None


def _approval_refusals(request: AnalyticsRequest) -> list[str]:
    """What the round's sign-offs and findings say against an approval."""
    refusals = []
    signed = {
        s.dataset_id: s.approve
        for s in StewardSignoff.objects.filter(request=request, round=request.round)
    }
    unsigned = [d.name for d in _datasets(request) if signed.get(d.pk) is not True]
    if unsigned:
        refusals.append(
            f"An approval needs every steward's sign-off in round {request.round}; not "
            f"signed off: {', '.join(sorted(unsigned))}."
        )
    blocking = Finding.objects.filter(
        request=request, round=request.round, severity=RuleSeverity.BLOCK
    ).order_by("rule__slug")
    if blocking:
        refusals.append(
            "An approval is refused while a rule blocks the version under review: "
            + "; ".join(f.message for f in blocking)
        )
    return refusals


def decision_refusals(
    *, request: AnalyticsRequest, outcome: str, supersedes: Decision | None = None, votes=None
) -> list[str]:
    """Why the chair may not record ``outcome`` on ``request`` now, in plain words; empty
    when they may. One rule for a first decision and a correction (``supersedes``), read
    by ``decision_record`` (under the request's row lock) and by the decision pages.

    * State. A first decision only while the committee reviews the request. A correction
      only of the request's latest decision, in that decision's round, while the request
      stands as that decision left it: approved (its grant still active and not ended),
      changes requested or rejected. Never of a revoked, expired or withdrawn request, nor
      once a new round has begun.
    * Quorum: at least the committee's quorum of non-recused votes in the round.
    * The committee's rule: an outcome the round's votes support (``supported_outcomes``).
    * An approval also needs every dataset the request uses signed off by its steward in
      the round, and no blocking finding on the round's version.

    ``votes`` may pass the round's votes already loaded.
    """
    if supersedes is None:
        if request.status != RequestStatus.IN_REVIEW:
            return ["This request is not awaiting a decision."]
    else:
        refusal = _correction_refusal(request, supersedes)
        if refusal:
            return [refusal]
    committee = request.committee
    t = tally(request, votes)
    if t.counted < committee.quorum:
        return [f"No quorum: {t.counted} non-recused vote(s), {committee.quorum} needed."]
    if outcome not in supported_outcomes(committee, t):
        return [
            f"The votes ({t.approve} approve, {t.request_changes} request changes, "
            f"{t.reject} reject) do not support “{Outcome(outcome).label}” under the "
            f"{committee.get_rule_display().lower()} rule."
        ]
    if outcome == Outcome.APPROVED:
        return _approval_refusals(request)
    return []


def _grant_end(decision: Decision, ends_on: datetime.date) -> datetime.date:
    """The last day a grant made by ``decision`` runs: its expiry or the request's end."""
    return min(ends_on, decision.expires_on) if decision.expires_on else ends_on


def decision_widens(previous: Decision, proposed: Decision) -> list[str]:
    """How ``proposed``, a correction of ``previous``, would give more than ``previous``
    did, one plain sentence each; empty when it gives the same or less.

    A refusal gives nothing. An approval correcting a refusal (rejected, or changes
    requested) widens. An approval correcting an approval widens if it lifts “aggregate
    only”, lowers the minimum cohort k, lets the grant run later (a later expiry, or none
    where there was one), or raises the privacy budget ε (none counts as 0). The fields
    cannot widen: a decision names none, every grant has the request's fields, and an
    approved request's fields cannot change.
    """
    if proposed.outcome != Outcome.APPROVED:
        return []
    if previous.outcome != Outcome.APPROVED:
        return [f"It would turn “{previous.get_outcome_display()}” into an approval."]
    reasons = []
    if previous.aggregate_only and not proposed.aggregate_only:
        reasons.append("It would lift “aggregate only”.")
    if proposed.min_cohort < previous.min_cohort:
        reasons.append(
            f"It would lower the minimum cohort (k) from {previous.min_cohort} to "
            f"{proposed.min_cohort}."
        )
    ends_on = proposed.request.ends_on
    before, after = _grant_end(previous, ends_on), _grant_end(proposed, ends_on)
    if after > before:
        if proposed.expires_on is None:
            reasons.append(
                f"It would remove the expiry date: the grant would run to {_day(after)} "
                f"instead of {_day(before)}."
            )
        else:
            reasons.append(f"It would end the grant on {_day(after)} instead of {_day(before)}.")
    if (proposed.epsilon or 0.0) > (previous.epsilon or 0.0):
        reasons.append(
            f"It would raise the privacy budget (ε) from {previous.epsilon or 0.0:g} to "
            f"{proposed.epsilon:g}."
        )
    return reasons


def outcomes_open(
    *, request: AnalyticsRequest, supersedes: Decision | None = None, votes=None
) -> dict[str, list[str]]:
    """For the decision pages: each outcome with why the chair may not record it now
    (empty: they may): ``decision_refusals`` and, for a correction that keeps the
    corrected decision's conditions, ``decision_widens``."""
    open_ = {}
    for outcome in Outcome:
        reasons = decision_refusals(
            request=request, outcome=outcome, supersedes=supersedes, votes=votes
        )
        if not reasons and supersedes is not None:
            kept = Decision(
                request=request,
                outcome=outcome,
                aggregate_only=supersedes.aggregate_only,
                min_cohort=supersedes.min_cohort,
                expires_on=supersedes.expires_on,
                epsilon=supersedes.epsilon,
            )
            reasons = decision_widens(supersedes, kept)
            if reasons:
                reasons.append(NEEDS_NEW_ROUND)
        open_[outcome] = reasons
    return open_


@transaction.atomic
def decision_record(
    *,
    actor,
    request: AnalyticsRequest,
    outcome: str,
    rationale: str,
    aggregate_only: bool = False,
    min_cohort: int = 10,
    expires_on: datetime.date | None = None,
    obligations: list[ObligationInput] = (),
    supersedes: Decision | None = None,
    epsilon: float | None = None,
) -> Decision:
    """The chair records the committee's decision on the round, or corrects the latest
    one (``supersedes``). The page, the API and anything else call this one function.

    Rules:
    * only the committee's chair, with a rationale;
    * a first decision and a correction pass the same checks, ``decision_refusals``: the
      request's state, the quorum, the committee's rule over the round's votes and, for
      an approval, every steward's sign-off in the round and no blocking finding;
    * conditions: an expiry not in the past; a privacy budget ε above 0 and at most the
      DPO's maximum (``_decision_epsilon``);
    * a correction fixes what the recorded decision got wrong within what the votes
      support, and never gives more (``decision_widens``): it may narrow access (aggregate
      only, a higher k, an earlier expiry, a smaller ε) or refuse; an approval of a
      refusal, or any widening, is refused with the reason: it needs a new review round;
    * a correction revokes the corrected decision's active grant ("Superseded by a
      corrected decision."); an approval makes a new, narrower one, a refusal none. A
      grant revoked by the chair or the DPO, or expired, is never re-created. The
      corrected decision's obligations stay in force; a correction may add more;
    * a decision is never edited; an approval creates a grant; a refused decision writes
      nothing (no decision, grant or notification).
    """
    request = AnalyticsRequest.objects.select_for_update().get(pk=request.pk)
    seat = membership(actor, request.committee)
    if seat is None or seat.seat != Seat.CHAIR:
        raise PermissionDenied("Only the committee's chair records its decision.")
    if not (rationale or "").strip():
        raise ValidationError({"rationale": "A rationale is required."})
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": f"Unknown outcome {outcome!r}."})
    refusals = decision_refusals(request=request, outcome=outcome, supersedes=supersedes)
    if refusals:
        raise ValidationError(refusals)
    if expires_on is not None and expires_on < timezone.localdate():
        raise ValidationError({"expires_on": "The expiry date is in the past."})
    epsilon = _decision_epsilon(outcome, epsilon, supersedes)
    decision = Decision(
        request=request,
        round=request.round,
        outcome=outcome,
        rationale=rationale.strip(),
        aggregate_only=aggregate_only,
        min_cohort=min_cohort,
        expires_on=expires_on,
        decided_by=actor,
        supersedes=supersedes,
        epsilon=epsilon,
    )
    if supersedes is not None:
        widens = decision_widens(supersedes, decision)
        if widens:
            raise ValidationError([*widens, NEEDS_NEW_ROUND])
    decision.full_clean()
    with acting_as(actor):
        decision.save()
        for item in obligations:
            obligation = Obligation(
                decision=decision, text=item.text, owner=item.owner, due_on=item.due_on
            )
            obligation.full_clean()
            obligation.save()
        if supersedes is not None:
            for grant in Grant.objects.filter(decision=supersedes, status=GrantStatus.ACTIVE):
                _revoke(grant, actor, "Superseded by a corrected decision.")
        request.status = _STATUS_AFTER[outcome]
        request.save()
        if outcome == Outcome.APPROVED:
            _grant_create(request, decision)
    notify(
        users=[request.requester],
        key=f"decision:{decision.pk}",
        subject=f"Decision: {request.title} — {decision.get_outcome_display().lower()}",
        body=decision.rationale,
        url=request.get_absolute_url(),
    )
    return decision


def _decision_epsilon(
    outcome: str, epsilon: float | None, supersedes: Decision | None = None
) -> float | None:
    """The privacy budget an approval gives. Rule: above 0 and at most the DPO's maximum
    (the privacy-budget rule); when the chair names none, the rule's default, or for a
    correction of an approval the corrected decision's budget (never above the maximum).
    Only an approval carries a budget."""
    if outcome != Outcome.APPROVED:
        return None
    settings = privacy_settings()
    if epsilon is None:
        if supersedes is not None and supersedes.outcome == Outcome.APPROVED:
            # A correction keeps the budget it does not name; one recorded before budgets
            # existed stays without one.
            if supersedes.epsilon is None:
                return None
            return min(supersedes.epsilon, settings.max_epsilon)
        return min(settings.epsilon, settings.max_epsilon)
    if not epsilon > 0:
        raise ValidationError({"epsilon": "The privacy budget must be above 0."})
    if epsilon > settings.max_epsilon:
        raise ValidationError(
            {
                "epsilon": f"The privacy budget may be at most {settings.max_epsilon:g} "
                "(the data protection officer's privacy-budget rule)."
            }
        )
    return float(epsilon)


def _grant_create(request: AnalyticsRequest, decision: Decision) -> Grant:
    today = timezone.localdate()
    grant = Grant(
        request=request,
        decision=decision,
        grantee=request.requester,
        output_level=OutputLevel.AGGREGATE if decision.aggregate_only else request.output_level,
        k=decision.min_cohort,
        epsilon=decision.epsilon or 0.0,
        valid_from=max(request.starts_on, today),
        valid_until=_grant_end(decision, request.ends_on),
    )
    grant.full_clean()
    grant.save()
    grant.fields.set(request.fields.all())
    return grant


def _revoke(grant: Grant, actor, reason: str) -> None:
    grant.status = GrantStatus.REVOKED
    grant.revoked_at = timezone.now()
    grant.revoked_by = actor
    grant.revoke_reason = reason
    grant.save()


@transaction.atomic
def grant_revoke(*, actor, grant: Grant, reason: str) -> Grant:
    """The chair or the DPO revokes a grant, with a reason; the next access is refused."""
    grant = Grant.objects.select_for_update().select_related("request").get(pk=grant.pk)
    seat = membership(actor, grant.request.committee)
    if not (has_role(actor, Role.DPO) or (seat is not None and seat.seat == Seat.CHAIR)):
        raise PermissionDenied("Only the committee's chair or the DPO revokes a grant.")
    if not (reason or "").strip():
        raise ValidationError({"reason": "A reason is required."})
    if grant.status in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
        raise ValidationError(f"This grant is already {grant.get_status_display().lower()}.")
    with acting_as(actor):
        _revoke(grant, actor, reason.strip())
        grant.request.status = RequestStatus.REVOKED
        grant.request.save()
    notify(
        users=[grant.grantee],
        key=f"grant:{grant.pk}:revoked",
        subject=f"Grant revoked: {grant.request.title}",
        body=reason,
        url=grant.request.get_absolute_url(),
    )
    return grant


# --- periodic -------------------------------------------------------------------------


def grants_expire(*, today: datetime.date | None = None, actor=None) -> int:
    """Expire grants past their end date (idempotent). Access checks never wait for this."""
    today = today or timezone.localdate()
    expired = 0
    for grant in Grant.objects.filter(status=GrantStatus.ACTIVE, valid_until__lt=today):
        with transaction.atomic(), acting_as(actor):
            grant.status = GrantStatus.EXPIRED
            grant.save()
            request = grant.request
            if request.status == RequestStatus.APPROVED:
                request.status = RequestStatus.EXPIRED
                request.save()
        expired += 1
    return expired


def grants_warn_expiring(*, today: datetime.date | None = None, days: int = 14) -> int:
    """Tell the grantee and the chair about grants ending within ``days`` (once each)."""
    today = today or timezone.localdate()
    warned = 0
    grants = Grant.objects.filter(
        status=GrantStatus.ACTIVE,
        valid_until__gte=today,
        valid_until__lte=today + datetime.timedelta(days=days),
    ).select_related("request__committee", "grantee")
    for grant in grants:
        chair = grant.request.committee.memberships.filter(seat=Seat.CHAIR).first()
        with transaction.atomic():
            notify(
                users=[grant.grantee, chair.user if chair else None],
                key=f"grant:{grant.pk}:expiring:{grant.valid_until.isoformat()}",
                subject=f"Grant ends on {grant.valid_until:%d %b %Y}: {grant.request.title}",
                url=grant.request.get_absolute_url(),
            )
        warned += 1
    return warned


def obligations_flag_overdue(*, today: datetime.date | None = None, actor=None) -> int:
    """Flag obligations past due and not done; tell the owner and the chair (once)."""
    today = today or timezone.localdate()
    flagged = 0
    overdue = Obligation.objects.filter(
        done_at__isnull=True, due_on__lt=today, overdue_since__isnull=True
    ).select_related("decision__request__committee", "owner")
    for obligation in overdue:
        request = obligation.decision.request
        chair = request.committee.memberships.filter(seat=Seat.CHAIR).first()
        with transaction.atomic(), acting_as(actor):
            obligation.overdue_since = today
            obligation.save()
            notify(
                users=[obligation.owner, chair.user if chair else None],
                key=f"obligation:{obligation.pk}:overdue",
                subject=f"Overdue obligation: {obligation.text[:120]}",
                body=f"Due {obligation.due_on:%d %b %Y} under the decision on {request.title}.",
                url=request.get_absolute_url(),
            )
        flagged += 1
    return flagged


# --- prepared extracts ------------------------------------------------------------------

EXTRACT_LIFETIME = datetime.timedelta(hours=24)


def extract_file_create(*, actor, scope):
    """Register a large extract to prepare. Rule: it belongs to the one who asked (the
    grantee, through the scope) and can be downloaded for 24 hours."""
    from .models import ExtractFile

    extract = ExtractFile(
        grant=scope.grant,
        owner=actor,
        dataset=scope.dataset,
        expires_at=timezone.now() + EXTRACT_LIFETIME,
    )
    extract.full_clean(exclude=["file"])
    extract.save()
    return extract


_PROGRESS_EVERY = 10_000


def extract_file_prepare(*, extract, progress=None):
    """Write a claimed extract's file (governance/jobs.py) and mark it ready.

    Rules: the grant is checked, and the read logged (once per file, by the access
    layer), when the extract runs, not when it was asked for; the file is released
    (ready) only while the claim is still this worker's, else the file written goes."""
    import tempfile

    from django.core.files import File

    from governance import jobs

    from . import access
    from .models import AccessKind, ExtractStatus

    scope = access.grant_scope(
        user=extract.owner, grant=extract.grant, dataset_slug=extract.dataset.slug
    )
    total = access.records_for(scope).count()
    if progress:
        progress(0, total)
    lines = reported = 0
    with tempfile.TemporaryFile() as spool:
        for chunk in access.extract_csv(scope, kind=AccessKind.DOWNLOAD, extract=extract):
            spool.write(chunk)
            lines += chunk.count(b"\n")
            if progress and lines - reported >= _PROGRESS_EVERY:
                reported = lines
                progress(lines - 1, total)
        spool.seek(0)
        name = f"grant-{extract.grant_id}-{extract.dataset.slug}.csv"
        extract.file.save(name, File(spool), save=False)
    extract.rows = max(lines - 1, 0)
    extract.status = ExtractStatus.READY
    try:
        with transaction.atomic():
            jobs.job_hold(extract)
            extract.save(update_fields=["file", "rows", "status"])
    except jobs.ClaimLost:
        extract.file.delete(save=False)
        raise
    if progress:
        progress(extract.rows, total)
    return extract


def extract_file_retry(*, actor, extract) -> bool:
    """Prepare again an extract whose worker stopped. Rules: only its owner (the caller
    fetched it through ``extract_get_for_owner``), only one that stopped, and only
    before it expires; the read it logged, if any, is not logged again."""
    from governance import jobs

    if extract.owner_id != actor.pk or extract.expires_at <= timezone.now():
        return False
    return jobs.job_retry(extract)
