"""Who used a person's data: the question this app asks of the layer above it.

The reads themselves are recorded by the analytics app (access events), which sits
above this one: imports point one way, so analytics registers a ``UsesProvider``
when it starts, and the "my data" pages, objections and the subject access export
ask through the functions here. Without a provider there are no uses to show.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ChosenBy:
    """One condition that chose the people a read included: a field used, in plain words."""

    field: str  # "dataset.field", for the API
    label: str  # the field's label, for people
    dataset: str  # the dataset's name
    value: object


@dataclass(frozen=True)
class Use:
    """One read that included the person, with what a person needs to judge it."""

    event_id: int
    at: datetime.datetime
    kind: str  # preview | extract | download | aggregate
    kind_label: str
    output_level: str  # aggregate | pseudonymised | identified
    output_label: str
    dataset: str
    field_names: list[str]
    read_by: str  # the user who read (name or e-mail)
    request_id: int
    request_title: str
    purpose: str
    purpose_slug: str
    requester: str
    committee_id: int | None
    committee: str
    decision: str  # the decision's outcome label
    decided_at: datetime.datetime | None
    recipients: list[str] = field(default_factory=list)
    # The cohort the read applied: only people with these values were included.
    chosen_by: list[ChosenBy] = field(default_factory=list)


@dataclass(frozen=True)
class Cursor:
    """Where a page of uses ends: the next page starts with the read logged before it."""

    event_id: int

    def encode(self) -> str:
        return str(self.event_id)

    @classmethod
    def decode(cls, raw: str) -> Cursor | None:
        """The cursor, or None if ``raw`` is not one (the caller says so and starts over)."""
        try:
            event_id = int(raw)
        except (TypeError, ValueError):
            return None
        return cls(event_id) if event_id > 0 else None


class UsesProvider(Protocol):
    def for_person(
        self, *, person_id: int, before: Cursor | None, limit: int | None
    ) -> list[Use]: ...

    def request_for_person(self, *, person_id: int, request_id: int) -> Use | None: ...


_provider: UsesProvider | None = None


def register(provider: UsesProvider) -> None:
    global _provider
    _provider = provider


def uses_for_person(
    *, person_id: int, before: Cursor | None = None, limit: int | None = None
) -> list[Use]:
    """Newest first; ``limit`` rows strictly before ``before`` (all when None)."""
    if _provider is None:
        return []
    return _provider.for_person(person_id=person_id, before=before, limit=limit)


def use_of_request(*, person_id: int, request_id: int) -> Use | None:
    """The latest read by ``request_id`` that included the person, or None if it never
    read their data: a person may object only to a use of their own data."""
    if _provider is None:
        return None
    return _provider.request_for_person(person_id=person_id, request_id=request_id)
