"""The auditor's workspace: thin read-only views over governance.audit.timeline."""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from governance import csvsafe

from . import timeline
from .kinds import get_kind, kinds, tracked_kinds
from .timeline import ACTIONS, BadFilter


def auditor_only(view):
    """Logged in (else to the login page) and an auditor or administrator (else 403);
    read-only: anything but GET is refused before the view runs."""

    @login_required
    @require_GET
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not timeline.may_audit(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _tracked_kind_or_404(name):
    kind = get_kind(name)
    if kind is None or kind.history is None:
        raise Http404
    return kind


def _form_context(params) -> dict:
    return {
        "kinds": list(kinds()),
        "actions": list(ACTIONS),
        "values": {k: params.get(k, "") for k in timeline.FILTER_NAMES},
    }


@auditor_only
def audit_timeline(request):
    context = _form_context(request.GET)
    try:
        filters = timeline.parse_filters(request.GET)
    except BadFilter as exc:
        context["error"] = exc.message
        return render(request, "governance/audit/timeline.html", context, status=400)
    page = timeline.timeline_page(viewer=request.user, filters=filters)
    context |= {
        "page": page,
        "filters": filters,
        "query": filters.query(),
        "first_page": filters.cursor is None,
    }
    return render(request, "governance/audit/timeline.html", context)


EXPORT_COLUMNS = ["at", "action", "kind", "object_kind", "object_id", "object", "context", "actor"]


def export_lines(*, viewer, filters, exported_at):
    """The CSV export, line by line: ``# `` header lines, the column names, the rows.

    Every line goes through the CSV writer with each text cell neutralised
    (docs/csv.md). The filters line gives one cell per filter, so a value holding a
    comma or a quote stays inside its own quoted cell and cannot start a new one."""
    lines = csvsafe.CsvLines(newline="\r\n")
    yield lines.line(["# Custos audit timeline export"])
    yield lines.line([f"# exported at: {exported_at.isoformat()}"])
    yield lines.line([f"# exported by: {viewer.email}"])
    described = [f"{k}={v}" for k, v in filters.query().items()] or ["none"]
    yield lines.line([f"# filters: {described[0]}", *(f" {d}" for d in described[1:])])
    yield lines.line(EXPORT_COLUMNS)
    for event in timeline.timeline_iter(viewer=viewer, filters=filters):
        row = event.as_dict()
        yield lines.line(row[c] for c in EXPORT_COLUMNS)


@auditor_only
def audit_export(request):
    try:
        filters = timeline.parse_filters(request.GET)
    except BadFilter as exc:
        context = _form_context(request.GET) | {"error": exc.message}
        return render(request, "governance/audit/timeline.html", context, status=400)
    now = timezone.now()
    response = StreamingHttpResponse(
        export_lines(viewer=request.user, filters=filters, exported_at=now),
        content_type="text/csv; charset=utf-8",
    )
    name = f"audit-{timezone.localtime(now):%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@auditor_only
def audit_object(request, kind, pk):
    kind = _tracked_kind_or_404(kind)
    entries = timeline.object_history(viewer=request.user, kind=kind, pk=pk)
    if entries is None:
        raise Http404
    return render(
        request,
        "governance/audit/object.html",
        {"kind": kind, "pk": pk, "timeline": entries, "primary": tracked_kinds()},
    )


@auditor_only
def audit_as_of(request, kind, pk):
    kind = _tracked_kind_or_404(kind)
    context = {"kind": kind, "pk": pk, "at": request.GET.get("at", "")}
    status = 200
    try:
        at = timeline.parse_moment(request.GET.get("at", ""), name="date and time")
    except BadFilter as exc:
        context["error"], at, status = exc.message, None, 400
    if at is not None:
        state = timeline.object_as_of(viewer=request.user, kind=kind, pk=pk, at=at)
        if state is None:
            raise Http404
        context["state"] = state
    elif status == 200 and not timeline.object_history_exists(kind=kind, pk=pk):
        raise Http404
    return render(request, "governance/audit/as_of.html", context, status=status)


@auditor_only
def audit_grants_as_of(request):
    context = {"at": request.GET.get("at", "")}
    status = 200
    try:
        at = timeline.parse_moment(request.GET.get("at", ""), name="date and time")
    except BadFilter as exc:
        context["error"], at, status = exc.message, None, 400
    if at is not None:
        context["moment"] = at
        context["grants"] = timeline.grants_as_of(at=at)
    return render(request, "governance/audit/grants_as_of.html", context, status=status)
