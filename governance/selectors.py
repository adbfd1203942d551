"""Reads for the governance pages and API, with their relations already loaded."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from . import history
from .models import (
    SENSITIVITY_RANK,
    Dataset,
    Field,
    Person,
    Policy,
    Purpose,
    RecordLoad,
    Role,
    Rule,
    RuleKind,
    Sensitivity,
    User,
)
from .permissions import objects_for_user, user_can


def _get_for_user(model, user, action: str, **lookup):
    """The object if the user may see it, else 404; 403 if seen but not ``action``-able.

    A missing object and one the user may not see give the same 404.
    """
    obj = objects_for_user(user, "view", model).filter(**lookup).first()
    if obj is None:
        raise Http404(f"No {model._meta.verbose_name} matches the given query.")
    if action != "view" and not user_can(user, action, obj):
        raise PermissionDenied
    return obj


# --- datasets and fields -------------------------------------------------------------


def dataset_list(
    *, user, q: str = "", tag: str = "", sensitivity: str = "", steward: str = ""
) -> QuerySet[Dataset]:
    """The catalogue: datasets the user may see, filtered, with fields, tags and stewards."""
    datasets = objects_for_user(user, "view", Dataset)
    if q:
        datasets = datasets.filter(
            Q(name__icontains=q)
            | Q(slug__icontains=q)
            | Q(description__icontains=q)
            | Q(
                pk__in=Field.objects.filter(
                    Q(name__icontains=q) | Q(label__icontains=q) | Q(description__icontains=q)
                ).values("dataset")
            )
        )
    if tag:
        datasets = datasets.filter(tags__name=tag)
    if sensitivity:
        datasets = datasets.filter(
            pk__in=Field.objects.filter(sensitivity=sensitivity).values("dataset")
        )
    if steward:
        datasets = datasets.filter(stewards__email=steward)
    return (
        datasets.distinct()
        .prefetch_related(
            "tags",
            "stewards",
            "purposes",
            Prefetch("fields", queryset=Field.objects.order_by("position", "name")),
        )
        .order_by("name")
    )


def dataset_get_for_user(*, user, slug: str, action: str = "view") -> Dataset:
    return _get_for_user(Dataset, user, action, slug=slug)


def dataset_detail(*, user, slug: str) -> Dataset:
    """One dataset with everything its page shows, in a fixed number of queries."""
    dataset = dataset_get_for_user(user=user, slug=slug)
    return (
        Dataset.objects.filter(pk=dataset.pk)
        .prefetch_related(
            "tags",
            "stewards",
            "purposes",
            Prefetch("fields", queryset=Field.objects.order_by("position", "name")),
        )
        .get()
    )


def dataset_recent_loads(*, dataset: Dataset, limit: int = 10) -> list[RecordLoad]:
    return list(dataset.loads.select_related("created_by").order_by("-created_at")[:limit])


def dataset_timeline(*, dataset: Dataset, limit: int = 100):
    """The dataset's own changes, its fields' and its loads', newest first."""
    entries = history.timeline(Dataset.history.filter(id=dataset.pk), subject=lambda r: "dataset")
    entries += history.timeline(
        Field.history.filter(dataset_id=dataset.pk), subject=lambda r: f"field {r.name}"
    )
    entries += history.timeline(
        RecordLoad.history.filter(dataset_id=dataset.pk),
        subject=lambda r: f"load of {r.file_name}",
    )
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries[:limit]


def field_get_for_user(*, user, dataset: Dataset, name: str, action: str = "view") -> Field:
    if action != "view" and not user_can(user, action, dataset):
        raise PermissionDenied
    field = dataset.fields.filter(name=name).first()
    if field is None:
        raise Http404("No such field.")
    return field


def catalogue_facets(*, user) -> dict:
    """Choices for the catalogue filters, drawn from what the user may see."""
    visible = objects_for_user(user, "view", Dataset)
    return {
        "tags": list(
            visible.exclude(tags=None)
            .values_list("tags__name", flat=True)
            .distinct()
            .order_by("tags__name")
        ),
        "stewards": list(
            User.objects.filter(stewarded_datasets__in=visible)
            .distinct()
            .order_by("email")
            .values_list("email", flat=True)
        ),
        "sensitivities": Sensitivity.choices,
    }


def steward_candidates() -> QuerySet[User]:
    return User.objects.filter(groups__name=Role.STEWARD, is_active=True).order_by("email")


# --- loads --------------------------------------------------------------------------


def load_get_for_user(*, user, pk: int) -> RecordLoad:
    load = (
        objects_for_user(user, "view", RecordLoad)
        .select_related("dataset", "created_by")
        .filter(pk=pk)
        .first()
    )
    if load is None:
        raise Http404("No such load.")
    return load


# --- purposes and policies -------------------------------------------------------------


def purpose_list(*, user) -> QuerySet[Purpose]:
    return objects_for_user(user, "view", Purpose).annotate(dataset_count=Count("datasets"))


def purpose_get_for_user(*, user, slug: str, action: str = "view") -> Purpose:
    return _get_for_user(Purpose, user, action, slug=slug)


def policy_list(*, user) -> QuerySet[Policy]:
    return objects_for_user(user, "view", Policy).select_related("owner")


def policy_get_for_user(*, user, slug: str, action: str = "view") -> Policy:
    return _get_for_user(Policy, user, action, slug=slug)


def purpose_timeline(*, purpose: Purpose):
    return history.timeline(Purpose.history.filter(id=purpose.pk), subject=lambda r: "purpose")


def policy_timeline(*, policy: Policy):
    return history.timeline(Policy.history.filter(id=policy.pk), subject=lambda r: "policy")


def policies_overdue(*, user) -> list[Policy]:
    from django.utils import timezone

    return list(
        policy_list(user=user)
        .filter(next_review_date__lt=timezone.localdate())
        .order_by("next_review_date")
    )


# --- people -------------------------------------------------------------------------


def person_list(*, user, q: str = "") -> QuerySet[Person]:
    people = objects_for_user(user, "view", Person).select_related("user")
    if q:
        people = people.filter(
            Q(external_id__icontains=q) | Q(name__icontains=q) | Q(email__icontains=q)
        )
    return people.order_by("external_id")


def person_get_for_user(*, user, pk: int, action: str = "view") -> Person:
    return _get_for_user(Person, user, action, pk=pk)


def person_timeline(*, person: Person):
    return history.timeline(Person.history.filter(id=person.pk), subject=lambda r: "person")


def sensitivity_rank(value: str) -> int:
    return SENSITIVITY_RANK[Sensitivity(value)]


def sso_signup_allowed(*, email: str) -> bool:
    """Whether single sign-on may create a data-subject login for ``email``: the DPO's
    ``sso_signup`` rule is enabled and, if it names domains, the address is in one."""
    rule = Rule.objects.filter(kind=RuleKind.SSO_SIGNUP, enabled=True).first()
    if rule is None:
        return False
    domains = {d.lower() for d in rule.parameters.get("domains", [])}
    return not domains or email.rpartition("@")[2].lower() in domains
