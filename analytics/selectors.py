"""Reads for requests and grants, with their relations loaded in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform
from django.http import Http404

from governance import history
from governance.models import CommitteeMembership, Dataset, Field, Seat

from .models import (
    AnalyticsRequest,
    Decision,
    ExtractFile,
    Finding,
    Grant,
    RequestStatus,
    RequestVersion,
    StewardSignoff,
    Vote,
    VoteChoice,
)
from .permissions import objects_for_user, user_can
from .services import version_differences


def request_get_for_user(*, user, pk: int, action: str = "view") -> AnalyticsRequest:
    """The request if the user may see it (404 otherwise); 403 if seen but not actionable."""
    request = objects_for_user(user, "view", AnalyticsRequest).filter(pk=pk).first()
    if request is None:
        raise Http404("No such request.")
    if action != "view" and not user_can(user, action, request):
        raise PermissionDenied
    return request


def _with_summary(requests: QuerySet) -> QuerySet:
    return requests.select_related("purpose", "requester", "committee").annotate(
        field_count=Count("fields", distinct=True),
        # Blocking findings of the content as it stands (the next round's).
        blocking=Count(
            "findings",
            filter=Q(findings__severity="block", findings__round=F("round") + 1),
            distinct=True,
        ),
    )


def request_list_for_requester(*, user) -> QuerySet[AnalyticsRequest]:
    return _with_summary(AnalyticsRequest.objects.filter(requester=user)).order_by(
        "-created_at", "-id"
    )


def steward_queue(*, user) -> QuerySet[AnalyticsRequest]:
    return _with_summary(objects_for_user(user, "signoff", AnalyticsRequest)).order_by(
        "created_at", "id"
    )


def committee_queue(*, user) -> QuerySet[AnalyticsRequest]:
    """Requests before the user's committees, awaiting votes or a decision."""
    requests = AnalyticsRequest.objects.filter(
        pk__in=AnalyticsRequest.objects.filter(committee__memberships__user=user).values("pk"),
        status=RequestStatus.IN_REVIEW,
    )
    return (
        _with_summary(requests)
        .annotate(votes_cast=Count("votes", filter=Q(votes__round=F("round")), distinct=True))
        .order_by("created_at", "id")
    )


def queue_rows(requests: QuerySet, *, user) -> list[AnalyticsRequest]:
    """A queue's requests with the current round's findings, the user's own vote and
    whether they chair the committee, as annotations (no query per row)."""
    current = Q(findings__round=F("round"))
    chair = CommitteeMembership.objects.filter(
        committee=OuterRef("committee"), user=user, seat=Seat.CHAIR
    )
    rows = list(
        requests.annotate(
            finding_count=Count("findings", filter=current, distinct=True),
            blocking_now=Count(
                "findings", filter=current & Q(findings__severity="block"), distinct=True
            ),
            my_vote=Subquery(
                Vote.objects.filter(request=OuterRef("pk"), round=OuterRef("round"), member=user)
                .order_by()
                .values("choice")[:1]
            ),
            is_chair=Exists(chair),
        )
    )
    for row in rows:
        row.my_vote_label = VoteChoice(row.my_vote).label if row.my_vote else ""
    return rows


def extract_get_for_owner(*, user, pk: int) -> ExtractFile:
    """A prepared extract of the user's own (404 for anyone else's, or a missing one)."""
    extract = (
        ExtractFile.objects.select_related("grant__request", "dataset")
        .filter(pk=pk, owner=user)
        .first()
    )
    if extract is None:
        raise Http404("No such extract.")
    return extract


def request_detail(*, user, pk: int) -> AnalyticsRequest:
    """One request with everything its page shows, in a fixed number of queries."""
    request = request_get_for_user(user=user, pk=pk)
    return (
        AnalyticsRequest.objects.filter(pk=request.pk)
        .select_related("purpose", "requester", "committee", "human_reviewer")
        .prefetch_related(
            Prefetch(
                "fields",
                queryset=Field.objects.select_related("dataset").order_by(
                    "dataset__slug", "position"
                ),
            ),
            Prefetch("findings", queryset=Finding.objects.select_related("rule")),
            Prefetch("versions", queryset=RequestVersion.objects.order_by("number")),
            Prefetch(
                "signoffs",
                queryset=StewardSignoff.objects.select_related("dataset", "steward"),
            ),
            Prefetch("votes", queryset=Vote.objects.select_related("member")),
            Prefetch(
                "decisions",
                queryset=Decision.objects.select_related("decided_by").prefetch_related(
                    "obligations__owner"
                ),
            ),
            Prefetch("grants", queryset=Grant.objects.prefetch_related("fields__dataset")),
            "committee__memberships__user",
        )
        .get()
    )


@dataclass(frozen=True)
class CohortFilter:
    """One filter of a request's cohort: the field (None if the request does not name it,
    as a request drafted before that rule may not) and the value that selects people."""

    key: str
    value: object
    field: Field | None

    @property
    def label(self) -> str:
        return self.field.display_label if self.field is not None else self.key


def cohort_filters(request: AnalyticsRequest) -> list[CohortFilter]:
    """The request's cohort with its fields, from the request's fields (prefetched by
    ``request_detail``: no query of its own there)."""
    named = {f"{f.dataset.slug}.{f.name}": f for f in request.fields.all()}
    return [
        CohortFilter(key, value, named.get(key)) for key, value in (request.cohort or {}).items()
    ]


def decision_latest(*, request: AnalyticsRequest) -> Decision | None:
    """The request's decision that nothing supersedes (the one a correction names)."""
    return (
        Decision.objects.filter(request=request, superseded_by__isnull=True)
        .select_related("decided_by")
        .prefetch_related("obligations__owner")
        .order_by("-decided_at", "-id")
        .first()
    )


def request_versions_with_differences(request: AnalyticsRequest) -> list[dict]:
    versions = list(request.versions.all())
    out = []
    previous = None
    for version in versions:
        out.append(
            {
                "version": version,
                "changes": version_differences(previous.content, version.content)
                if previous
                else [],
            }
        )
        previous = version
    return out


def request_timeline(*, request: AnalyticsRequest, votes: bool = True):
    """The request's history; ``votes=False`` for viewers who may not see the votes."""
    entries = history.timeline(
        AnalyticsRequest.history.filter(id=request.pk), subject=lambda r: "request"
    )
    entries += history.timeline(
        StewardSignoff.history.filter(request_id=request.pk),
        subject=lambda r: f"sign-off of {r.dataset}",
    )
    if votes:
        entries += history.timeline(
            Vote.history.filter(request_id=request.pk), subject=lambda r: "vote"
        )
    entries += history.timeline(
        Decision.history.filter(request_id=request.pk), subject=lambda r: "decision"
    )
    entries += history.timeline(
        Grant.history.filter(request_id=request.pk), subject=lambda r: "grant"
    )
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries


def requestable_fields(*, user) -> QuerySet[Dataset]:
    """Datasets the user may see, each with its fields that may be requested (not excluded)."""
    from governance.permissions import objects_for_user as governance_objects

    return (
        governance_objects(user, "view", Dataset)
        .filter(status="active")
        .prefetch_related(
            Prefetch(
                "fields",
                queryset=Field.objects.filter(excluded=False).order_by("position", "name"),
                to_attr="requestable",
            )
        )
        .order_by("name")
    )


def grant_get_for_user(*, user, pk: int, action: str = "view") -> Grant:
    grant = (
        objects_for_user(user, "view", Grant)
        .select_related("request__purpose", "request__committee", "grantee", "decision")
        .prefetch_related("fields__dataset")
        .filter(pk=pk)
        .first()
    )
    if grant is None:
        raise Http404("No such grant.")
    if action != "view" and not objects_for_user(user, action, Grant).filter(pk=pk).exists():
        raise PermissionDenied
    return grant


def access_events_for_person(*, person_id: int, before_id: int | None = None, limit=None):
    """Every access event that included the person, newest (last logged) first, in four
    queries: the events, found from the subject index (person, event) read backwards
    from ``before_id`` (so a page costs the same however long the person's history),
    then their few grants (with request, purpose and decision), users and datasets,
    each loaded once rather than repeated on every event row. Of the event's detail
    only ``cohort`` is read (how the people were chosen), as ``event.cohort``."""
    from governance.models import User

    from .models import AccessEvent, AccessEventSubject

    subjects = AccessEventSubject.objects.filter(person_id=person_id)
    if before_id is not None:
        subjects = subjects.filter(event_id__lt=before_id)
    ids = subjects.order_by("-event_id").values("event_id")
    if limit is not None:
        ids = ids[:limit]
    return (
        AccessEvent.objects.filter(pk__in=Subquery(ids))
        .defer("detail")
        .annotate(cohort=KeyTransform("cohort", "detail"))
        .prefetch_related(
            Prefetch(
                "grant",
                queryset=Grant.objects.select_related(
                    "request__purpose", "request__requester", "request__committee", "decision"
                ),
            ),
            Prefetch("user", queryset=User.objects.only("id", "email", "full_name")),
            "dataset",
        )
        .order_by("-id")
    )


def access_events_for_grantee(*, user, grant):
    from .models import AccessEvent

    return AccessEvent.objects.filter(grant=grant, user=user).select_related("dataset")
