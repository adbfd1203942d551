"""Who may see and act on requests and grants: the one place these rules live."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from governance.models import Dataset, Role, Seat
from governance.permissions import STEWARD_PERM, has_role

from .models import DECIDED_STATUSES, AnalyticsRequest, Decision, Grant, RequestStatus

# Staff who see every request once it leaves draft (read-only unless another rule allows).
_OVERSIGHT = (Role.DPO, Role.AUDITOR, Role.ADMINISTRATOR)


def _stewarded_datasets(user) -> QuerySet:
    return get_objects_for_user(
        user, STEWARD_PERM, klass=Dataset, with_superuser=False, accept_global_perms=False
    )


def _requests(user, action: str) -> QuerySet[AnalyticsRequest]:
    requests = AnalyticsRequest.objects.all()
    mine = Q(requester=user)
    if action in {"change", "submit", "withdraw"}:
        return requests.filter(mine)
    submitted = ~Q(status=RequestStatus.DRAFT) & Q(round__gte=1)
    stewarded = Q(fields__dataset__in=_stewarded_datasets(user).values("pk"))
    committee = Q(committee__memberships__user=user)
    # Filters on multi-valued relations go through pk__in, so that counting a request's
    # fields or votes afterwards counts them all, not just the ones that matched.
    if action == "signoff":
        return requests.filter(
            pk__in=AnalyticsRequest.objects.filter(stewarded).values("pk"),
            status=RequestStatus.SUBMITTED,
        )
    if action == "vote":
        return requests.filter(
            pk__in=AnalyticsRequest.objects.filter(committee).values("pk"),
            status=RequestStatus.IN_REVIEW,
        ).exclude(mine)
    if action in {"decide", "correct"}:
        chaired = AnalyticsRequest.objects.filter(
            committee__memberships__user=user, committee__memberships__seat=Seat.CHAIR
        ).values("pk")
        if action == "decide":
            return requests.filter(pk__in=chaired, status=RequestStatus.IN_REVIEW)
        # A decision of the current round that nothing has superseded, on a request that
        # still stands as a decision left it. The service checks the rest under its lock.
        latest = Decision.objects.filter(
            request=OuterRef("pk"), round=OuterRef("round"), superseded_by__isnull=True
        )
        return requests.filter(pk__in=chaired, status__in=DECIDED_STATUSES).filter(Exists(latest))
    if action != "view":
        raise ValueError(f"unknown request action {action!r}")
    if has_role(user, *_OVERSIGHT):
        return requests.filter(mine | submitted)
    reviewing = AnalyticsRequest.objects.filter(stewarded | committee).values("pk")
    return requests.filter(mine | (submitted & Q(pk__in=reviewing)))


def _grants(user, action: str) -> QuerySet[Grant]:
    grants = Grant.objects.all()
    if action == "view":
        if has_role(user, *_OVERSIGHT):
            return grants
        return grants.filter(Q(grantee=user) | Q(request__committee__memberships__user=user))
    if action == "revoke":
        if has_role(user, Role.DPO):
            return grants
        return grants.filter(
            request__committee__memberships__user=user,
            request__committee__memberships__seat=Seat.CHAIR,
        )
    raise ValueError(f"unknown grant action {action!r}")


def objects_for_user(user, action: str, model) -> QuerySet:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return model.objects.none()
    return {AnalyticsRequest: _requests, Grant: _grants}[model](user, action)


def user_can(user, action: str, obj) -> bool:
    if isinstance(obj, type):
        return obj is AnalyticsRequest and action == "add" and has_role(user, Role.ANALYST)
    return objects_for_user(user, action, type(obj)).filter(pk=obj.pk).exists()
