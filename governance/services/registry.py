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
from ..models import Dataset, Field, Policy, Purpose, Tag

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
    is_identifier: bool = False,
    is_protected_attribute: bool = False,
    excluded: bool = False,
    position: int | None = None,
) -> Field:
    """Add a field to a dataset. Rule: names are unique per dataset; only categories list values."""
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
        is_identifier=is_identifier,
        is_protected_attribute=is_protected_attribute,
        excluded=excluded,
        position=position,
    )
    return _save(field, actor)


@transaction.atomic
def field_update(*, actor, field: Field, **changes) -> bool:
    """Change a field's description, type, sensitivity or flags. True if changed."""
    if "values" in changes:
        changes["values"] = list(changes["values"] or [])
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
]
