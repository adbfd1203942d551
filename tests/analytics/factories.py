"""Reusable setups for the request-to-grant flow, built through the services.

``make_board`` — a committee with a chair and members; ``make_analyst``;
``make_oulad`` — a stewarded, learning-tagged OULAD-like dataset with a purpose it
permits; ``make_ready_request`` — a draft nothing blocks. ``submit_and_sign_off``,
``vote_all`` and ``approve`` move a request along.
"""

from __future__ import annotations

import datetime
import importlib
import itertools
from dataclasses import dataclass, field

from django.utils import timezone

from analytics import services
from analytics.models import AnalyticsRequest, Decision, RequestStatus, VoteChoice
from governance.models import Clearance, Committee, Dataset, Field, Purpose, Role, Rule, User
from governance.services import registry
from tests.factories import make_dataset, make_purpose, make_user

_counter = itertools.count(1)

# Shaped like OULAD's studentInfo: (name, type, sensitivity, extra field options).
OULAD_FIELDS = [
    ("code_module", "category", "internal", {"values": ["AAA", "BBB", "CCC"]}),
    ("code_presentation", "category", "internal", {"values": ["2013B", "2013J", "2014B", "2014J"]}),
    ("gender", "category", "personal", {"is_protected_attribute": True, "values": ["F", "M"]}),
    ("region", "category", "personal"),  # no declared values: it cannot group an aggregate
    ("imd_band", "category", "personal", {"excluded": True}),
    ("age_band", "category", "personal", {"is_protected_attribute": True}),
    (
        "studied_credits",
        "integer",
        "internal",
        {"minimum": 0, "maximum": 660, "bins": [0, 60, 120]},
    ),
    ("disability", "category", "special", {"is_protected_attribute": True, "values": ["Y", "N"]}),
    ("final_result", "category", "personal", {"values": ["Pass", "Fail", "Withdrawn"]}),
]


def today() -> datetime.date:
    return timezone.localdate()


def default_rules() -> dict[str, Rule]:
    """The default rules by slug, recreated if a transactional test flushed them."""
    migration = importlib.import_module("governance.migrations.0004_default_rules")
    for slug, name, kind, severity, parameters in migration.DEFAULT_RULES:
        Rule.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "kind": kind, "severity": severity, "parameters": parameters},
        )
    return {rule.slug: rule for rule in Rule.objects.all()}


# --- people and committees --------------------------------------------------------------


def make_analyst(**kwargs) -> User:
    return make_user(Role.ANALYST, clearance=kwargs.pop("clearance", Clearance.PERSONAL), **kwargs)


def make_dpo(**kwargs) -> User:
    return make_user(Role.DPO, clearance=Clearance.SPECIAL, **kwargs)


@dataclass
class Board:
    """A committee, its chair and its other members (in seat order)."""

    committee: Committee
    chair: User
    members: list[User]

    @property
    def voters(self) -> list[User]:
        return [self.chair, *self.members]


MEMBER_SEATS = ["hr", "legal", "data_protection", "learner_representative", "member"]


def make_board(
    *,
    members: int = 3,
    quorum: int = 3,
    rule: str = "majority",
    is_default: bool = True,
    slug: str | None = None,
    extra_members: list[tuple[User, str]] = (),
) -> Board:
    """A committee with a chair and ``members`` other members (all Committee role).

    ``extra_members`` (user, seat) also sit on it but are not among ``Board.members``."""
    n = next(_counter)
    chair = make_user(Role.COMMITTEE, clearance=Clearance.SPECIAL, email=f"chair{n}@example.org")
    others = [make_user(Role.COMMITTEE, email=f"member{n}-{i}@example.org") for i in range(members)]
    seats = [(chair, "chair")] + [
        (user, MEMBER_SEATS[i % len(MEMBER_SEATS)]) for i, user in enumerate(others)
    ]
    committee = registry.committee_create(
        actor=chair,
        slug=slug or f"committee-{n}",
        name=f"Committee {n}",
        quorum=quorum,
        rule=rule,
        is_default=is_default,
        members=[*seats, *extra_members],
    )
    return Board(committee, chair, others)


# --- the OULAD-like registry ------------------------------------------------------------


@dataclass
class Oulad:
    """A learning-tagged dataset, its steward(s) and a purpose it permits."""

    dataset: Dataset
    steward: User
    purpose: Purpose
    stewards: list[User] = field(default_factory=list)

    def field(self, name: str) -> Field:
        return self.dataset.fields.get(name=name)

    def fields(self, *names: str) -> list[Field]:
        by_name = {f.name: f for f in self.dataset.fields.all()}
        return [by_name[n] for n in names]


def make_oulad(*, stewards: int = 1, purpose: Purpose | None = None, **purpose_overrides) -> Oulad:
    """An OULAD-like dataset tagged ``learning`` that permits one course-improvement
    purpose (or ``purpose``), stewarded by ``stewards`` stewards."""
    people = [make_user(Role.STEWARD, clearance=Clearance.SPECIAL) for _ in range(stewards)]
    purpose = purpose or make_purpose(people[0], **purpose_overrides)
    dataset = make_dataset(
        people[0],
        slug=f"oulad-{next(_counter)}",
        fields=OULAD_FIELDS,
        tags=["learning"],
        stewards=people,
        purposes=[purpose],
    )
    return Oulad(dataset, people[0], purpose, people)


# --- requests ---------------------------------------------------------------------------


def make_ready_request(analyst: User, oulad: Oulad, **overrides) -> AnalyticsRequest:
    """A draft nothing blocks: two fields, aggregate output, for the dataset's purpose."""
    values = {
        "title": f"Which modules lose students {next(_counter)}",
        "purpose": oulad.purpose,
        "justification": "Find the modules where students withdraw most often.",
        "expected_benefit": "Support for students on those modules.",
        "fields": oulad.fields("code_module", "final_result"),
        "output_level": "aggregate",
        "starts_on": today(),
        "ends_on": today() + datetime.timedelta(days=90),
    } | overrides
    return services.request_create(actor=analyst, **values)


def submit_and_sign_off(request: AnalyticsRequest, oulad: Oulad) -> AnalyticsRequest:
    """Submit as the requester and sign off as the steward: the committee now has it."""
    services.request_submit(actor=request.requester, request=request)
    services.signoff_record(
        actor=oulad.steward, request=request, dataset=oulad.dataset, approve=True, note="Fine."
    )
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_REVIEW
    return request


def vote_all(request: AnalyticsRequest, voters, choices) -> None:
    """Each voter casts the matching choice (a single choice is used for everyone)."""
    if isinstance(choices, str):
        choices = [choices] * len(voters)
    for voter, choice in zip(voters, choices, strict=True):
        services.vote_cast(actor=voter, request=request, choice=choice, rationale=f"{choice}.")


def approve(
    request: AnalyticsRequest, oulad: Oulad, board: Board, **conditions
) -> tuple[Decision, AnalyticsRequest]:
    """Take a draft through sign-off, three approvals and the chair's decision."""
    submit_and_sign_off(request, oulad)
    vote_all(request, board.voters[: board.committee.quorum], VoteChoice.APPROVE)
    decision = services.decision_record(
        actor=board.chair,
        request=request,
        outcome="approved",
        rationale="Benefits learners; aggregate only.",
        **conditions,
    )
    request.refresh_from_db()
    return decision, request
