"""REST API v1 for reading data through a grant: extract, aggregate, and the reads logged.

Every endpoint fetches the caller's own grant (anyone else's is a 404 like a missing
one) and asks the access layer what the grant allows now: a grant that is revoked,
expired or not yet valid answers 403 with the reason; a field the grant does not let
the caller read answers 400 naming it, and nothing is logged as released.
"""

from __future__ import annotations

import functools

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from . import access, disclosure, selectors
from .api import ERROR_BODY, FORBIDDEN, NOT_FOUND, BadRequest

# --- errors ---------------------------------------------------------------------------

BAD_FIELD = OpenApiResponse(
    ERROR_BODY,
    description="A field (or dataset, or measure) the grant does not let you read; the "
    "message names it. Nothing is logged as released.",
)
DATASET = OpenApiParameter(
    "dataset",
    str,
    description="The dataset's slug; needed only when the grant spans several datasets.",
)


def _scope_errors(view):
    """The access layer's refusals as API errors: AccessDenied 403, NotGranted 400."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except access.AccessDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
        except access.NotGranted as exc:
            raise BadRequest(str(exc), {"fields": [exc.name]}) from None
        except disclosure.BadAggregate as exc:
            raise BadRequest(str(exc), {"query": [str(exc)]}) from None

    return wrapper


def _scope(request, pk: int) -> access.Scope:
    grant = access.grant_for_user(user=request.user, pk=pk)
    dataset = request.query_params.get("dataset") or None
    return access.grant_scope(user=request.user, grant=grant, dataset_slug=dataset)


# --- output shapes ---------------------------------------------------------------------


class BudgetOut(serializers.Serializer):
    total = serializers.FloatField(help_text="The grant's privacy budget (ε), set by the decision.")
    spent = serializers.FloatField(help_text="ε spent by the round's aggregates so far.")
    left = serializers.FloatField()


class AggregateOut(serializers.Serializer):
    columns = serializers.ListField(
        child=serializers.CharField(),
        help_text='The group-by fields, then "people", then "mean_<field>" for a mean.',
    )
    rows = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(allow_null=True)),
        help_text="One list of cells per declared group (every group the registry "
        'declares, in its order, with "Not recorded" last): the groups\' labels, then '
        "the noisy number of people and, for a mean, the noisy mean. A suppressed "
        "cell is null (never 0).",
    )
    suppressed_rows = serializers.ListField(
        child=serializers.BooleanField(),
        help_text="For each row: true when its noisy number of people is under k.",
    )
    suppressed = serializers.IntegerField(help_text="How many rows are suppressed.")
    k = serializers.IntegerField(help_text="Cells with fewer people than this are suppressed.")
    epsilon = serializers.FloatField(
        help_text="The ε this answer spent: 0 when it repeats a stored answer."
    )
    budget = BudgetOut()
    repeated = serializers.BooleanField(
        help_text="True when the same aggregate was asked before: the stored answer."
    )
    margin_95 = serializers.FloatField(
        help_text="Each number of people is within this of the true number 95 times in 100."
    )


class AccessEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    dataset = serializers.SlugField(source="dataset.slug")
    fields = serializers.ListField(child=serializers.CharField(), source="field_names")
    output_level = serializers.CharField()
    people = serializers.IntegerField(help_text="How many people the read included.")
    rows = serializers.IntegerField()
    cohort = serializers.SerializerMethodField(
        help_text='The cohort that chose the people, {"<dataset-slug>.<field>": value}; '
        "null for everyone."
    )

    def get_cohort(self, obj) -> dict | None:
        return obj.detail.get("cohort")


# --- endpoints ------------------------------------------------------------------------


@extend_schema(
    operation_id="v1_grants_extract_csv",
    parameters=[DATASET],
    responses={
        (200, "text/csv"): OpenApiResponse(
            OpenApiTypes.BINARY,
            description="The whole extract, streamed: a pseudonym column (or external_id "
            "for an identified grant) and the granted fields.",
        ),
        400: BAD_FIELD,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@api_view(["GET"])
@_scope_errors
def grant_extract(request, pk):
    """The grant's extract as CSV: only granted fields, only the granted cohort.

    A pseudonymised grant replaces each person's id by a keyed hash (stable within the
    grant, unlinkable across grants) and drops identifier fields. The read is logged,
    with every person it includes, before the first byte leaves."""
    scope = _scope(request, pk)
    chunks = access.extract_csv(scope)
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="grant-{scope.grant.pk}-{scope.dataset.slug}.csv"'
    )
    return response


@extend_schema(
    parameters=[
        OpenApiParameter(
            "group_by",
            str,
            description="Up to three granted fields, comma-separated (f1,f2).",
        ),
        OpenApiParameter(
            "measure", str, description="count (the default) or mean:<numeric field>."
        ),
        DATASET,
    ],
    responses={200: AggregateOut, 400: BAD_FIELD, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET"])
@_scope_errors
def grant_aggregate(request, pk):
    """Numbers of people, or means, per declared group, under differential privacy.

    The database counts; OpenDP adds noise; each new aggregate spends the privacy
    budget's share (403 with the reason once it is spent), and the same aggregate asked
    again returns the stored answer at no cost. Groups come from the registry (a field
    with no declared groups cannot group: 400); a cell whose noisy count is under k is
    null and its row marked."""
    scope = _scope(request, pk)
    group_by = [g.strip() for g in request.query_params.get("group_by", "").split(",")]
    measure = request.query_params.get("measure", "count").strip() or "count"
    data = disclosure.aggregate(scope, [g for g in group_by if g], measure).as_dict()
    return Response(AggregateOut(data).data)


@extend_schema(
    responses={
        200: inline_serializer(
            "PaginatedAccessEventListOut",
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": AccessEventOut(many=True),
            },
        ),
        404: NOT_FOUND,
    },
)
@api_view(["GET"])
def grant_access_events(request, pk):
    """Your own reads through this grant, newest first. They stay listed after the grant
    ends or is revoked."""
    grant = access.grant_for_user(user=request.user, pk=pk)
    events = selectors.access_events_for_grantee(user=request.user, grant=grant).order_by(
        "-at", "-id"
    )
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(events, request)
    return paginator.get_paginated_response(AccessEventOut(page, many=True).data)
