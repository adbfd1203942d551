"""Writes to the data registry: purposes, datasets, fields and policies.

Every function takes the acting user and records it in history. Updates change only
what differs, so applying the same values twice writes no history.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from ..history import acting_as
from ..models import (
    Committee,
    CommitteeMembership,
    Dataset,
    Field,
    Policy,
    Purpose,
    PurposeCategory,
    Rule,
    RuleKind,
    Seat,
    Tag,
    User,
)

STEWARD_CODENAME = "steward_dataset"
_UNSET = object()


def _assign(obj, changes: dict) -> list[str]:
    """Set attributes that differ; return the names that changed."""
    changed = []
    for name, value in changes.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed.append(name)
    return changed


def _save(obj, actor, *, exclude=None):
    obj.full_clean(exclude=exclude)
    with acting_as(actor):
        obj.save()
    return obj


# --- purposes -------------------------------------------------------------------------


@transaction.atomic
def purpose_create(
    *,
    actor,
    slug: str,
    name: str,
    category: str,
    expected_benefit: str,
    legal_basis: str,
    consent_text: str = "",
    committee: Committee | None = None,
) -> Purpose:
    """Register a purpose. Rule: a consent-based purpose carries a consent text (version 1)."""
    purpose = Purpose(
        slug=slug,
        name=name,
        category=category,
        expected_benefit=expected_benefit,
        legal_basis=legal_basis,
        consent_text=consent_text or "",
        consent_version=1 if consent_text else 0,
        committee=committee,
        created_by=actor,
    )
    return _save(purpose, actor)


@transaction.atomic
def purpose_update(*, actor, purpose: Purpose, **changes) -> bool:
    """Change a purpose. A new consent text raises the consent version. True if changed."""
    if "consent_text" in changes:
        changes["consent_text"] = changes["consent_text"] or ""
    changed = _assign(purpose, changes)
    if not changed:
        return False
    if "consent_text" in changed and purpose.consent_text:
        purpose.consent_version += 1
    _save(purpose, actor)
    return True


# --- datasets -------------------------------------------------------------------------


def _tags(names: Iterable[str], actor) -> list[Tag]:
    tags = []
    for name in names:
        tag = Tag.objects.filter(name=name).first()
        if tag is None:
            tag = _save(Tag(name=name), actor)
        tags.append(tag)
    return tags


def _set_m2m(dataset: Dataset, name: str, objects: Iterable, actor) -> bool:
    manager = getattr(dataset, name)
    wanted = {o.pk for o in objects}
    if set(manager.values_list("pk", flat=True)) == wanted:
        return False
    with acting_as(actor):
        manager.set(wanted)
    return True


def _set_stewards(dataset: Dataset, stewards: Iterable, actor) -> bool:
    """Stewards are listed on the dataset (with history) and hold the guardian permission."""
    stewards = list(stewards)
    previous = set(dataset.stewards.all())
    if not _set_m2m(dataset, "stewards", stewards, actor):
        return False
    for user in previous - set(stewards):
        remove_perm(STEWARD_CODENAME, user, dataset)
    for user in set(stewards) - previous:
        assign_perm(STEWARD_CODENAME, user, dataset)
    return True


def dataset_sync_steward_permissions(*, dataset: Dataset) -> None:
    """Make guardian's permissions match the dataset's steward list (admin edits)."""
    from guardian.models import UserObjectPermission

    stewards = set(dataset.stewards.all())
    holders = {
        p.user
        for p in UserObjectPermission.objects.filter(
            permission__codename=STEWARD_CODENAME,
            object_pk=str(dataset.pk),
            content_type__app_label="governance",
            content_type__model="dataset",
        ).select_related("user")
    }
    for user in holders - stewards:
        remove_perm(STEWARD_CODENAME, user, dataset)
    for user in stewards - holders:
        assign_perm(STEWARD_CODENAME, user, dataset)


@transaction.atomic
def dataset_create(
    *,
    actor,
    slug: str,
    name: str,
    lawful_basis: str,
    retention_days: int,
    description: str = "",
    source_system: str = "",
    status: str = "draft",
    person_column: str = "external_id",
    tags: Iterable[str] = (),
    stewards: Iterable = (),
    purposes: Iterable[Purpose] = (),
) -> Dataset:
    """Register a dataset. Rule: it has at least one steward (the creator by default)."""
    dataset = Dataset(
        slug=slug,
        name=name,
        description=description,
        source_system=source_system,
        lawful_basis=lawful_basis,
        retention_days=retention_days,
        status=status,
        person_column=person_column,
    )
    _save(dataset, actor)
    stewards = list(stewards) or [actor]
    _set_m2m(dataset, "tags", _tags(tags, actor), actor)
    _set_stewards(dataset, stewards, actor)
    _set_m2m(dataset, "purposes", purposes, actor)
    return dataset


@transaction.atomic
def dataset_update(
    *,
    actor,
    dataset: Dataset,
    tags=_UNSET,
    stewards=_UNSET,
    purposes=_UNSET,
    **changes,
) -> bool:
    """Change a dataset's description, lists or status. True if anything changed."""
    changed = bool(_assign(dataset, changes))
    if changed:
        _save(dataset, actor)
    if tags is not _UNSET:
        changed |= _set_m2m(dataset, "tags", _tags(tags, actor), actor)
    if stewards is not _UNSET:
        stewards = list(stewards)
        if not stewards:
            raise ValidationError({"stewards": "A dataset needs at least one steward."})
        changed |= _set_stewards(dataset, stewards, actor)
    if purposes is not _UNSET:
        changed |= _set_m2m(dataset, "purposes", purposes, actor)
    return changed


# --- fields ---------------------------------------------------------------------------


@transaction.atomic
def field_create(
    *,
    actor,
    dataset: Dataset,
    name: str,
    type: str,  # noqa: A002 - the domain's word
    sensitivity: str,
    label: str = "",
    description: str = "",
    values: list[str] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    bins: list | None = None,
    is_identifier: bool = False,
    is_protected_attribute: bool = False,
    excluded: bool = False,
    position: int | None = None,
) -> Field:
    """Add a field to a dataset. Rules: names are unique per dataset; only categories list
    values; only numeric fields declare a minimum, a maximum and groups."""
    if position is None:
        position = dataset.fields.count()
    field = Field(
        dataset=dataset,
        name=name,
        type=type,
        sensitivity=sensitivity,
        label=label,
        description=description,
        values=list(values or []),
        minimum=minimum,
        maximum=maximum,
        bins=list(bins or []),
        is_identifier=is_identifier,
        is_protected_attribute=is_protected_attribute,
        excluded=excluded,
        position=position,
    )
    return _save(field, actor)


@transaction.atomic
def field_update(*, actor, field: Field, **changes) -> bool:
    """Change a field's description, type, sensitivity or flags. True if changed."""
    for name in ("values", "bins"):
        if name in changes:
            changes[name] = list(changes[name] or [])
    if not _assign(field, changes):
        return False
    _save(field, actor)
    return True


# --- policies -------------------------------------------------------------------------


@transaction.atomic
def policy_create(
    *,
    actor,
    slug: str,
    title: str,
    body: str,
    owner,
    version: str = "1.0",
    approval_date=None,
    review_interval_months: int = 12,
) -> Policy:
    """Record a policy. Rule: it has an owner and a review schedule; next review is derived."""
    policy = Policy(
        slug=slug,
        title=title,
        body=body,
        owner=owner,
        version=version,
        approval_date=approval_date,
        review_interval_months=review_interval_months,
    )
    return _save(policy, actor)


@transaction.atomic
def policy_update(*, actor, policy: Policy, **changes) -> bool:
    """Change a policy; the next review date follows the approval date and interval."""
    if not _assign(policy, changes):
        return False
    _save(policy, actor)
    return True


# --- rules ----------------------------------------------------------------------------

RULE_EDITABLE = frozenset({"name", "severity", "enabled", "description", "parameters"})


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _positive_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


# The parameters each kind of check reads; anything else would be silently ignored.
RULE_PARAMETERS = {
    RuleKind.LEARNING_FIREWALL: {
        "tags": (_strings, "a list of tag names"),
        "categories": (
            lambda v: _strings(v) and set(v) <= set(PurposeCategory.values),
            "a list of purpose categories: " + ", ".join(PurposeCategory.values),
        ),
    },
    RuleKind.MINIMISATION: {
        "max_fields": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "a whole number of at least 1",
        ),
    },
    RuleKind.SSO_SIGNUP: {
        "domains": (
            lambda v: _strings(v) and all("@" not in d and "." in d for d in v),
            'a list of e-mail domains, e.g. ["example.org"]',
        ),
    },
    RuleKind.PRIVACY_BUDGET: {
        "epsilon": (_positive_number, "a number above 0"),
        "max_epsilon": (_positive_number, "a number above 0"),
        "epsilon_per_query": (_positive_number, "a number above 0"),
        "max_cells_per_person": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "a whole number of at least 1",
        ),
    },
}


def _check_rule_parameters(kind: str, parameters) -> None:
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters must be a JSON object."})
    accepted = RULE_PARAMETERS.get(kind, {})
    for name, value in parameters.items():
        if name not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise ValidationError(
                {"parameters": f"Unknown parameter {name!r} for this rule (accepted: {known})."}
            )
        is_valid, expected = accepted[name]
        if not is_valid(value):
            raise ValidationError({"parameters": f"{name!r} must be {expected}."})


@transaction.atomic
def rule_update(*, actor, rule: Rule, **changes) -> bool:
    """Change a rule's name, severity, enabled flag, description or parameters.

    Rule: a rule's check (its kind) and slug never change; parameters are an object
    holding only what the check reads. Only changed values are written. True if changed.
    """
    unknown = set(changes) - RULE_EDITABLE
    if unknown:
        raise TypeError(f"rule_update cannot change {', '.join(sorted(unknown))}")
    if "parameters" in changes:
        _check_rule_parameters(rule.kind, changes["parameters"])
    if not _assign(rule, changes):
        return False
    _save(rule, actor)
    return True


__all__ = [
    "dataset_create",
    "dataset_sync_steward_permissions",
    "dataset_update",
    "field_create",
    "field_update",
    "policy_create",
    "policy_update",
    "purpose_create",
    "purpose_update",
    "rule_update",
]


# --- committees -----------------------------------------------------------------------

COMMITTEE_EDITABLE = frozenset({"name", "quorum", "rule", "is_default"})


@transaction.atomic
def committee_create(
    *,
    actor,
    slug: str,
    name: str,
    members: Iterable[tuple[User, str]],
    quorum: int = 3,
    rule: str = "majority",
    is_default: bool = False,
) -> Committee:
    """Set up a committee with its members. Rules: one default committee at most;
    exactly one chair (see ``committee_set_members``)."""
    committee = _save(
        Committee(slug=slug, name=name, quorum=quorum, rule=rule, is_default=is_default), actor
    )
    committee_set_members(actor=actor, committee=committee, members=members)
    return committee


@transaction.atomic
def committee_update(*, actor, committee: Committee, **changes) -> bool:
    """Change a committee's name, quorum, decision rule or default flag. Only changed
    values are written; one committee at most is the default. True if changed."""
    unknown = set(changes) - COMMITTEE_EDITABLE
    if unknown:
        raise TypeError(f"committee_update cannot change {', '.join(sorted(unknown))}")
    if not _assign(committee, changes):
        return False
    _save(committee, actor)
    return True


@transaction.atomic
def committee_set_members(
    *, actor, committee: Committee, members: Iterable[tuple[User, str]]
) -> list[str]:
    """Make the committee's members exactly ``members`` (user, seat) pairs.

    Rules: each member is an active login, listed once, with a known seat; exactly one
    chair, so a decision can always be recorded. Members not listed are removed. Only
    differences are written. Returns what changed, as readable phrases.
    """
    members = list(members)
    seen: set[int] = set()
    for user, seat in members:
        if seat not in Seat.values:
            raise ValidationError({"members": f"Unknown seat {seat!r}."})
        if not user.is_active:
            raise ValidationError({"members": f"{user.email} is not an active login."})
        if user.pk in seen:
            raise ValidationError({"members": f"{user.email} is listed twice."})
        seen.add(user.pk)
    chairs = sum(seat == Seat.CHAIR for _, seat in members)
    if chairs != 1:
        raise ValidationError({"members": f"A committee has exactly one chair, not {chairs}."})

    wanted = {user.pk: (user, seat) for user, seat in members}
    current = {m.user_id: m for m in committee.memberships.select_related("user")}
    changes: list[str] = []
    with acting_as(actor):
        for user_id, membership in current.items():
            if user_id not in wanted:
                membership.delete()
                changes.append(f"member {membership.user.email} removed")
        moves = [
            (membership, wanted[user_id][1])
            for user_id, membership in current.items()
            if user_id in wanted and membership.seat != wanted[user_id][1]
        ]
        # The old chair leaves the seat before the new one takes it (one chair at a time).
        moves.sort(key=lambda move: move[0].seat != Seat.CHAIR)
        for membership, seat in moves:
            changes.append(f"member {membership.user.email} seat {membership.seat} → {seat}")
            membership.seat = seat
            membership.full_clean()
            membership.save()
        for user_id, (user, seat) in wanted.items():
            if user_id not in current:
                membership = CommitteeMembership(committee=committee, user=user, seat=seat)
                membership.full_clean()
                membership.save()
                changes.append(f"member {user.email} added as {seat}")
    return changes


# --- rules (creation) -----------------------------------------------------------------


@transaction.atomic
def rule_create(
    *,
    actor,
    slug: str,
    name: str,
    kind: str,
    severity: str,
    description: str = "",
    parameters: dict | None = None,
    enabled: bool = True,
) -> Rule:
    """Add a rule. Rules: its kind is one of the implemented checks; parameters hold
    only what that check reads."""
    parameters = {} if parameters is None else parameters
    _check_rule_parameters(kind, parameters)
    rule = Rule(
        slug=slug,
        name=name,
        kind=kind,
        severity=severity,
        description=description,
        parameters=parameters,
        enabled=enabled,
    )
    return _save(rule, actor)


__all__ += [
    "committee_create",
    "committee_set_members",
    "committee_update",
    "rule_create",
]
