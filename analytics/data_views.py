"""The grantee's data pages: preview, download, aggregates and prepared extracts.

Every read goes through ``analytics.access`` (which checks the grant at query time and
writes the access event); these views only translate its answers: someone else's grant
or extract is a 404, a grant that allows nothing now is a 403 with the reason, a field
not granted is a 400 naming it (and nothing is logged).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import transaction
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from . import access, disclosure, selectors, services
from .models import AccessKind, ExtractStatus, OutputLevel
from .tasks import extract_prepare_task, extract_progress_key

# Above this many rows an extract is prepared by a Celery task instead of streamed.
INLINE_EXTRACT_MAX_ROWS = 100_000


def _dataset_slugs(grant) -> list[str]:
    return sorted({f.dataset.slug for f in grant.fields.select_related("dataset")})


def _scope_or_error(request, grant, slug: str | None):
    """(scope, None) or (None, error response): 403 with the reason, 400 naming a field."""
    slugs = _dataset_slugs(grant)
    if slug is None and len(slugs) > 1:
        slug = slugs[0]
    context = {"grant": grant, "datasets": slugs, "dataset_slug": slug}
    try:
        return access.grant_scope(user=request.user, grant=grant, dataset_slug=slug), None
    except access.AccessDenied as exc:
        context["denied"] = str(exc)
        return None, render(request, "analytics/grant_data.html", context, status=403)
    except access.NotGranted as exc:
        context["denied"] = str(exc)
        return None, render(request, "analytics/grant_data.html", context, status=400)


def _builder_context(scope) -> dict:
    return {
        "grant": scope.grant,
        "scope": scope,
        "datasets": _dataset_slugs(scope.grant),
        "dataset_slug": scope.dataset.slug,
        "field_names": scope.field_names,
        "group_fields": [f for f in scope.fields if disclosure.can_group(f)],
        "ungroupable": [f for f in scope.fields if not disclosure.can_group(f)],
        "measures": [("count", "Number of people")]
        + [
            (f"mean:{f.name}", f"Mean {f.display_label.lower()}")
            for f in scope.fields
            if disclosure.can_average(f)
        ],
        "budget": disclosure.aggregate_cost(scope),
        "can_extract": scope.output_level != OutputLevel.AGGREGATE,
        "group_by": [],
        "measure": "count",
    }


@login_required
@require_GET
def grant_data(request, pk):
    grant = access.grant_for_user(user=request.user, pk=pk)
    scope, error = _scope_or_error(request, grant, request.GET.get("dataset") or None)
    if error:
        return error
    context = _builder_context(scope)
    if context["can_extract"]:
        context["header"], context["rows"] = access.preview(scope)
        context["preview"] = True
    return render(request, "analytics/grant_data.html", context)


def _result_rows(result: disclosure.AggregateResult, groups: int) -> list[dict]:
    return [
        {
            "groups": row["cells"][:groups],
            "values": row["cells"][groups:],
            "suppressed": row["suppressed"],
        }
        for row in result.rows
    ]


@login_required
@require_GET
def grant_aggregate(request, pk):
    grant = access.grant_for_user(user=request.user, pk=pk)
    scope, error = _scope_or_error(request, grant, request.GET.get("dataset") or None)
    if error:
        return error
    group_by = [g for g in request.GET.getlist("group_by") if g]
    measure = request.GET.get("measure") or "count"
    context = _builder_context(scope) | {"group_by": group_by, "measure": measure}
    try:
        result = disclosure.aggregate(scope, group_by, measure)
    except (access.NotGranted, disclosure.BadAggregate) as exc:
        context["aggregate_error"] = str(exc)
        return render(request, "analytics/grant_data.html", context, status=400)
    except disclosure.BudgetSpent as exc:
        context["aggregate_error"] = str(exc)
        return render(request, "analytics/grant_data.html", context, status=403)
    context["result"] = result
    context["budget"] |= {"spent": result.spent, "left": result.left}
    context["result_rows"] = _result_rows(result, len(group_by))
    template = (
        "analytics/_aggregate_table.html"
        if request.headers.get("HX-Request")
        else "analytics/grant_data.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def grant_download(request, pk):
    grant = access.grant_for_user(user=request.user, pk=pk)
    scope, error = _scope_or_error(request, grant, request.POST.get("dataset") or None)
    if error:
        return error
    if scope.output_level == OutputLevel.AGGREGATE:
        context = _builder_context(scope) | {"denied": "This grant allows aggregates only."}
        return render(request, "analytics/grant_data.html", context, status=403)
    if access.records_for(scope).count() <= INLINE_EXTRACT_MAX_ROWS:
        response = StreamingHttpResponse(
            access.extract_csv(scope, kind=AccessKind.DOWNLOAD), content_type="text/csv"
        )
        name = f"grant-{grant.pk}-{scope.dataset.slug}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    with transaction.atomic():
        extract = services.extract_file_create(actor=request.user, scope=scope)
        extract_prepare_task.delay_on_commit(extract.pk)
    return redirect("extract-detail", pk=extract.pk)


@login_required
@require_GET
def extract_detail(request, pk):
    extract = selectors.extract_get_for_owner(user=request.user, pk=pk)
    progress = cache.get(extract_progress_key(extract.pk)) or {}
    context = {
        "extract": extract,
        "progress": progress,
        "expired": extract.expires_at <= timezone.now(),
        "finished": extract.status in (ExtractStatus.READY, ExtractStatus.FAILED),
    }
    total = progress.get("total")
    if total:
        context["percent"] = min(100, round(100 * progress.get("rows", 0) / total))
    if request.headers.get("HX-Request"):
        return render(request, "analytics/_extract_status.html", context)
    return render(request, "analytics/extract_detail.html", context)


@login_required
@require_POST
def extract_retry(request, pk):
    extract = selectors.extract_get_for_owner(user=request.user, pk=pk)
    if services.extract_file_retry(actor=request.user, extract=extract):
        messages.success(request, "The extract is being prepared again.")
    return redirect("extract-detail", pk=extract.pk)


@login_required
@require_GET
def extract_file(request, pk):
    extract = selectors.extract_get_for_owner(user=request.user, pk=pk)
    if (
        extract.expires_at <= timezone.now()
        or extract.status != ExtractStatus.READY
        or not extract.file
    ):
        raise Http404("No such extract.")
    # The grant is checked again: a file prepared before a revocation, or before the
    # grant was narrowed to aggregates, is not handed out.
    scope, error = _scope_or_error(request, extract.grant, extract.dataset.slug)
    if error:
        return error
    if scope.output_level == OutputLevel.AGGREGATE:
        context = {"grant": extract.grant, "denied": "This grant allows aggregates only."}
        return render(request, "analytics/grant_data.html", context, status=403)
    return FileResponse(
        extract.file.open("rb"),
        as_attachment=True,
        filename=f"grant-{extract.grant_id}-{extract.dataset.slug}.csv",
        content_type="text/csv",
    )
