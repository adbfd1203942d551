"""REST API v1 for the registry. Separate output shapes per endpoint; reads via selectors."""

from __future__ import annotations

import io

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import selectors
from .api_schema import PAGE, paginated
from .csvio import ImportRejected
from .models import LoadMode, Policy, Purpose
from .parsers import RequestTooLarge, too_large_message


def exception_handler(exc, context):
    """Every error is JSON with a ``message``; a forbidden object is a 404 like a missing one."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(too_large_message())
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"message": str(response.data["detail"])}
    elif response is not None and "message" not in (response.data or {}):
        response.data = {"message": "Invalid input.", "errors": response.data}
    return response


class CSVBodyParser(BaseParser):
    """Hands the request body to the view as a stream, never read whole into memory."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream


# --- output shapes ---------------------------------------------------------------------


class TagNames(serializers.RelatedField):
    def to_representation(self, value):
        return value.name


class FieldOut(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField(source="display_label")
    description = serializers.CharField()
    type = serializers.CharField()
    values = serializers.ListField(child=serializers.CharField())
    sensitivity = serializers.CharField()
    is_identifier = serializers.BooleanField()
    is_protected_attribute = serializers.BooleanField()
    excluded = serializers.BooleanField()


class DatasetListOut(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    tags = serializers.SerializerMethodField()
    record_count = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_tags(self, obj) -> list[str]:
        return [t.name for t in obj.tags.all()]

    def get_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(f"/api/v1/datasets/{obj.slug}/")


class DatasetDetailOut(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    source_system = serializers.CharField()
    lawful_basis = serializers.CharField()
    retention_days = serializers.IntegerField()
    status = serializers.CharField()
    person_column = serializers.CharField()
    record_count = serializers.IntegerField()
    tags = serializers.SerializerMethodField()
    stewards = serializers.SerializerMethodField()
    purposes = serializers.SerializerMethodField()
    fields = FieldOut(many=True, source="fields.all")

    def get_tags(self, obj) -> list[str]:
        return [t.name for t in obj.tags.all()]

    def get_stewards(self, obj) -> list[str]:
        return [u.email for u in obj.stewards.all()]

    def get_purposes(self, obj) -> list[str]:
        return [p.slug for p in obj.purposes.all()]


class PurposeOut(serializers.ModelSerializer):
    class Meta:
        model = Purpose
        fields = [
            "slug",
            "name",
            "category",
            "expected_benefit",
            "legal_basis",
            "consent_text",
            "consent_version",
        ]


class PolicyOut(serializers.ModelSerializer):
    owner = serializers.EmailField(source="owner.email")
    is_overdue = serializers.BooleanField()

    class Meta:
        model = Policy
        fields = [
            "slug",
            "title",
            "body",
            "owner",
            "version",
            "approval_date",
            "review_interval_months",
            "next_review_date",
            "is_overdue",
        ]


def _paginated(request, queryset, serializer_class):
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request)
    data = serializer_class(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data)


# --- endpoints ------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("q", str, description="Search names, descriptions and fields"),
        OpenApiParameter("tag", str),
        OpenApiParameter("sensitivity", str),
        OpenApiParameter("steward", str, description="A steward's e-mail"),
        PAGE,
    ],
    responses=paginated("PaginatedDatasetListOut", DatasetListOut),
    operation_id="v1_datasets_list",
)
@api_view(["GET"])
def dataset_list(request):
    """The catalogue: datasets you may see (metadata only, never record values)."""
    filters = {k: request.query_params.get(k, "") for k in ("q", "tag", "sensitivity", "steward")}
    return _paginated(request, selectors.dataset_list(user=request.user, **filters), DatasetListOut)


@extend_schema(responses=DatasetDetailOut)
@api_view(["GET"])
def dataset_detail(request, slug):
    """One dataset with its fields."""
    dataset = selectors.dataset_detail(user=request.user, slug=slug)
    return Response(DatasetDetailOut(dataset, context={"request": request}).data)


@extend_schema(
    request={"text/csv": {"type": "string", "format": "binary"}},
    parameters=[
        OpenApiParameter(
            "mode", str, enum=["add", "replace"], description="Add rows (default) or replace all"
        )
    ],
    responses={
        201: inline_serializer("LoadedOut", {"loaded": serializers.IntegerField()}),
        400: inline_serializer(
            "LoadErrorsOut",
            {
                "message": serializers.CharField(),
                "errors": serializers.ListField(child=serializers.DictField(), required=False),
            },
        ),
        404: OpenApiResponse(description="No such dataset, or not one you may see"),
    },
)
@api_view(["POST"])
@parser_classes([CSVBodyParser])
def dataset_records(request, slug):
    """Load records from a CSV body. Any bad row rejects the whole body; nothing is written."""
    from .services.records import records_import

    dataset = selectors.dataset_get_for_user(user=request.user, slug=slug, action="load")
    mode = request.query_params.get("mode", LoadMode.ADD)
    if mode not in LoadMode.values:
        return Response(
            {"message": "mode must be add or replace", "errors": []},
            status=status.HTTP_400_BAD_REQUEST,
        )
    try:
        load = records_import(
            actor=request.user,
            dataset=dataset,
            stream=request.data if hasattr(request.data, "read") else io.BytesIO(),
            file_name=request.headers.get("X-File-Name", "api-upload.csv"),
            mode=mode,
        )
    except ImportRejected as rejected:
        return Response(
            {
                "message": "The CSV was rejected; no rows were written.",
                "errors": [e.as_dict() for e in rejected.errors],
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    except ValidationError as exc:
        return Response(
            {"message": " ".join(exc.messages), "errors": []}, status=status.HTTP_400_BAD_REQUEST
        )
    return Response({"loaded": load.rows}, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[PAGE],
    responses=paginated("PaginatedPurposeListOut", PurposeOut),
    operation_id="v1_purposes_list",
)
@api_view(["GET"])
def purpose_list(request):
    """Registered purposes."""
    return _paginated(
        request, selectors.purpose_list(user=request.user).order_by("name"), PurposeOut
    )


@extend_schema(
    parameters=[PAGE],
    responses=paginated("PaginatedPolicyListOut", PolicyOut),
    operation_id="v1_policies_list",
)
@api_view(["GET"])
def policy_list(request):
    """Governance policies with their review schedule."""
    return _paginated(
        request, selectors.policy_list(user=request.user).order_by("title"), PolicyOut
    )
