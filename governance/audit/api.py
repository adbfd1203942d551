"""REST API v1 for auditors: the timeline, object history, as-of, and the chain check.

Read-only and for auditors and administrators only (403 for everyone else, 401 without
credentials). Bad filters answer 400 ``{"message": ...}``.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from . import chain, timeline
from .kinds import get_kind
from .timeline import BadFilter


class IsAuditor(permissions.BasePermission):
    message = "Only auditors and administrators may use the audit API."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return timeline.may_audit(request.user)


class BadRequest(exceptions.APIException):
    status_code = 400
    default_detail = "Invalid input."


def _tracked_kind_or_404(name):
    kind = get_kind(name)
    if kind is None or kind.history is None:
        raise Http404
    return kind


class EventOut(serializers.Serializer):
    at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=list(timeline.ACTIONS))
    kind = serializers.CharField()
    object_kind = serializers.CharField()
    object_id = serializers.IntegerField()
    object = serializers.CharField()
    context_kind = serializers.CharField(allow_null=True)
    context_id = serializers.IntegerField(allow_null=True)
    context = serializers.CharField(allow_null=True)
    actor = serializers.EmailField(allow_null=True)
    cursor = serializers.CharField()


_FILTER_PARAMETERS = [
    OpenApiParameter("kind", str, description="Lower-case model name, or 'access'"),
    OpenApiParameter("object", int, description="An object id (with kind)"),
    OpenApiParameter("actor", str, description="The actor's e-mail"),
    OpenApiParameter("action", str, enum=list(timeline.ACTIONS)),
    OpenApiParameter("since", str, description="ISO 8601 date or date-time"),
    OpenApiParameter("until", str, description="ISO 8601 date (inclusive) or date-time"),
    OpenApiParameter("cursor", str, description="The previous page's 'next'"),
]


@extend_schema(
    parameters=_FILTER_PARAMETERS,
    responses=inline_serializer(
        "AuditEventsOut",
        {"results": EventOut(many=True), "next": serializers.CharField(allow_null=True)},
    ),
)
@api_view(["GET"])
@permission_classes([IsAuditor])
def events(request):
    """The timeline across every history table and the access log, newest first."""
    try:
        filters = timeline.parse_filters(request.query_params)
    except BadFilter as exc:
        raise BadRequest(exc.message) from None
    page = timeline.timeline_page(viewer=request.user, filters=filters)
    return Response({"results": [e.as_dict() for e in page.events], "next": page.next})


@extend_schema(
    responses=inline_serializer(
        "AuditHistoryOut",
        {
            "kind": serializers.CharField(),
            "id": serializers.IntegerField(),
            "results": serializers.ListField(child=serializers.DictField()),
            "next": serializers.CharField(allow_null=True),
        },
    )
)
@api_view(["GET"])
@permission_classes([IsAuditor])
def object_history(request, kind, pk):
    """Every version of one object, newest first, with old → new per field."""
    kind = _tracked_kind_or_404(kind)
    entries = timeline.object_history(viewer=request.user, kind=kind, pk=pk)
    if entries is None:
        raise Http404
    results = [
        {
            "at": e.when.isoformat(),
            "actor": getattr(e.who, "email", None),
            "action": e.kind,
            "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in e.changes],
        }
        for e in entries
    ]
    return Response({"kind": kind.name, "id": pk, "results": results, "next": None})


@extend_schema(
    parameters=[OpenApiParameter("at", str, required=True, description="ISO 8601 date-time")],
    responses=inline_serializer(
        "AuditAsOfOut",
        {
            "kind": serializers.CharField(),
            "id": serializers.IntegerField(),
            "at": serializers.DateTimeField(),
            "exists": serializers.BooleanField(),
            "message": serializers.CharField(allow_null=True),
            "version_at": serializers.DateTimeField(allow_null=True),
            "version_by": serializers.EmailField(allow_null=True),
            "fields": serializers.DictField(),
        },
    ),
)
@api_view(["GET"])
@permission_classes([IsAuditor])
def object_as_of(request, kind, pk):
    """The object as it stood at ``at``."""
    kind = _tracked_kind_or_404(kind)
    raw = request.query_params.get("at", "")
    if not raw.strip():
        raise BadRequest("Give the moment as ?at=2025-03-01T14:30 (ISO 8601).")
    try:
        at = timeline.parse_moment(raw, name="date and time")
    except BadFilter as exc:
        raise BadRequest(exc.message) from None
    state = timeline.object_as_of(viewer=request.user, kind=kind, pk=pk, at=at)
    if state is None:
        raise Http404
    return Response(state.as_dict())


def verification_dict(verification) -> dict:
    if verification is None:
        return {"ok": None, "message": "No verification has run yet."}
    return {
        "ok": verification.ok,
        "started_at": verification.started_at.isoformat(),
        "finished_at": verification.finished_at.isoformat() if verification.finished_at else None,
        "entries": verification.entries,
        "heads": verification.heads,
        "problems": verification.problems,
        "triggered_by": verification.triggered_by,
        "message": "Every chain is intact." if verification.ok else "A chain is broken.",
    }


@extend_schema(
    responses=inline_serializer(
        "AuditVerificationOut",
        {
            "ok": serializers.BooleanField(allow_null=True),
            "started_at": serializers.DateTimeField(required=False),
            "finished_at": serializers.DateTimeField(required=False, allow_null=True),
            "entries": serializers.IntegerField(required=False),
            "heads": serializers.DictField(required=False),
            "problems": serializers.ListField(child=serializers.CharField(), required=False),
            "triggered_by": serializers.CharField(required=False),
            "message": serializers.CharField(),
        },
    )
)
@api_view(["GET"])
@permission_classes([IsAuditor])
def verify(request):
    """The latest hash-chain verification (run nightly and by ``verify_audit``)."""
    return Response(verification_dict(chain.latest_verification()))
