"""Who may do what in the governance layer: the one place these rules live.

Roles are Django groups (``Role``); stewardship of a dataset is a django-guardian
object permission (``governance.steward_dataset``). Views and the API ask
``user_can`` and ``objects_for_user``; they never test groups themselves.
"""

from __future__ import annotations

from django.db.models import Model, Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from .models import Dataset, DatasetStatus, Person, Policy, Purpose, RecordLoad, Role

STEWARD_PERM = "governance.steward_dataset"
# Roles that see every dataset in the catalogue, drafts included.
_CATALOGUE_OVERSIGHT = {Role.DPO, Role.AUDITOR, Role.ADMINISTRATOR}


def roles_of(user) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_custos_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {Role.ADMINISTRATOR}
        user._custos_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def _stewarded(user) -> QuerySet:
    return get_objects_for_user(
        user, STEWARD_PERM, klass=Dataset, with_superuser=False, accept_global_perms=False
    )


def _dataset_queryset(user, action: str) -> QuerySet:
    datasets = Dataset.objects.all()
    if action == "view":
        if has_role(user, *_CATALOGUE_OVERSIGHT):
            return datasets
        public = Q(status__in=[DatasetStatus.ACTIVE, DatasetStatus.RETIRED])
        return datasets.filter(public | Q(pk__in=_stewarded(user).values("pk")))
    if action in {"change", "load"}:
        return datasets.filter(pk__in=_stewarded(user).values("pk"))
    raise ValueError(f"unknown dataset action {action!r}")


def _purpose_queryset(user, action: str) -> QuerySet:
    purposes = Purpose.objects.all()
    if action == "view":
        return purposes
    if action == "change":
        if has_role(user, Role.DPO):
            return purposes
        if has_role(user, Role.STEWARD):
            return purposes.filter(created_by=user)
        return purposes.none()
    raise ValueError(f"unknown purpose action {action!r}")


def _policy_queryset(user, action: str) -> QuerySet:
    if action == "view":
        return Policy.objects.all()
    if action == "change":
        return Policy.objects.all() if has_role(user, Role.DPO) else Policy.objects.none()
    raise ValueError(f"unknown policy action {action!r}")


def _person_queryset(user, action: str) -> QuerySet:
    if action in {"view", "change"} and has_role(user, Role.DPO):
        return Person.objects.all()
    return Person.objects.none()


def _load_queryset(user, action: str) -> QuerySet:
    if action != "view":
        raise ValueError(f"unknown load action {action!r}")
    if has_role(user, Role.DPO, Role.AUDITOR, Role.ADMINISTRATOR):
        return RecordLoad.objects.all()
    return RecordLoad.objects.filter(
        Q(created_by=user) | Q(dataset__in=_stewarded(user).values("pk"))
    )


_QUERYSETS = {
    Dataset: _dataset_queryset,
    Purpose: _purpose_queryset,
    Policy: _policy_queryset,
    Person: _person_queryset,
    RecordLoad: _load_queryset,
}

# Actions on a model as a whole (creating one, importing many).
_MODEL_ACTIONS = {
    (Dataset, "add"): (Role.STEWARD,),
    (Purpose, "add"): (Role.STEWARD, Role.DPO),
    (Policy, "add"): (Role.DPO,),
    (Person, "add"): (Role.DPO,),
    (Person, "view"): (Role.DPO,),
}


def objects_for_user(user, action: str, model: type[Model]) -> QuerySet:
    """Every object of ``model`` the user may ``action``, as a queryset."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return model.objects.none()
    return _QUERYSETS[model](user, action)


def user_can(user, action: str, obj) -> bool:
    """May ``user`` do ``action`` to ``obj`` (an instance, or a model for add actions)?"""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if isinstance(obj, type):
        return has_role(user, *_MODEL_ACTIONS.get((obj, action), ()))
    if isinstance(obj, Dataset) and action in {"change", "load"}:
        # One guardian lookup (cached per user by guardian), not a queryset per object.
        return user.has_perm(STEWARD_PERM, obj)
    return objects_for_user(user, action, type(obj)).filter(pk=obj.pk).exists()
