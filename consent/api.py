"""REST API v1 for the person's own data: /api/v1/me/….

Like the pages, no endpoint takes a person id: the person is the one the login (or the
bearer token's user) is linked to, and a login linked to nobody answers 404. Each
endpoint has its own output shape; every write goes through one service, whose
ValidationError answers 400 and PermissionDenied 403, each with the reason.
"""

from __future__ import annotations

import functools

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.settings import api_settings

from governance.models import Purpose

from . import report, selectors, services, uses

ACCESS_LOG_PAGE = 50
NOT_LINKED = "Your login is not linked to a person record."


# --- errors ---------------------------------------------------------------------------


class BadRequest(exceptions.APIException):
    """A 400 whose body is ``{"message": ..., "errors": {...}}``."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid input."

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        # Set after the base class so DRF renders the dict as the body, unchanged.
        self.detail = {"message": message, "errors": errors or {}}


def _service_errors(view):
    """A service's ValidationError is a 400 and its PermissionDenied a 403, with the reason."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                errors = {
                    (api_settings.NON_FIELD_ERRORS_KEY if k == NON_FIELD_ERRORS else k): v
                    for k, v in exc.message_dict.items()
                }
            else:
                errors = {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
            raise BadRequest(" ".join(exc.messages), errors) from None
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc) or None) from None

    return wrapper


def _me(request):
    """The caller's person: the only way these endpoints find one."""
    person = selectors.person_of(request.user)
    if person is None:
        raise exceptions.NotFound(NOT_LINKED)
    return person


ERROR_BODY = inline_serializer(
    "MeErrorOut",
    {"message": serializers.CharField(), "errors": serializers.DictField(required=False)},
)
MESSAGE_BODY = inline_serializer("MeMessageOut", {"message": serializers.CharField()})
NOT_LINKED_RESPONSE = OpenApiResponse(
    MESSAGE_BODY, description="Your login is not linked to a person record."
)
NOT_FOUND = OpenApiResponse(
    MESSAGE_BODY,
    description="Your login is not linked to a person record, or there is no such purpose.",
)
FORBIDDEN = OpenApiResponse(
    MESSAGE_BODY,
    description="Not allowed; the message says why",
)


# --- output shapes ---------------------------------------------------------------------


class MySubjectOut(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    org_unit = serializers.CharField()


class MyPurposeOut(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    category = serializers.CharField()
    legal_basis = serializers.CharField()
    expected_benefit = serializers.CharField()


class MyFieldOut(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    type = serializers.CharField()
    sensitivity = serializers.CharField(source="sensitivity_label")


class MyRecordOut(serializers.Serializer):
    id = serializers.IntegerField()
    values = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="Every field's value by field name, special category included: they are yours.",
    )


class MyDatasetOut(serializers.Serializer):
    """One dataset holding records about you, with what GDPR Article 15 asks for."""

    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    source = serializers.CharField()
    lawful_basis = serializers.CharField()
    retention_days = serializers.IntegerField()
    stewards = serializers.ListField(child=serializers.CharField())
    purposes = MyPurposeOut(many=True)
    fields = MyFieldOut(many=True)
    record_count = serializers.IntegerField(source="count")
    records = serializers.SerializerMethodField()

    @extend_schema_field(MyRecordOut(many=True))
    def get_records(self, obj):
        return [{"id": pk, "values": obj.values_of(values)} for pk, values in obj.records]


class MyDataOut(serializers.Serializer):
    subject = MySubjectOut()
    datasets = MyDatasetOut(many=True)


class ChosenByOut(serializers.Serializer):
    field = serializers.CharField(help_text="<dataset-slug>.<field>")
    label = serializers.CharField(help_text="The field's label.")
    dataset = serializers.CharField(help_text="The dataset's name.")
    value = serializers.JSONField(help_text="Only people with this value were included.")


class UseOut(serializers.Serializer):
    at = serializers.DateTimeField(help_text="When the data was read.")
    kind = serializers.CharField(help_text="preview | extract | download | aggregate")
    output_level = serializers.CharField(help_text="aggregate | pseudonymised | identified")
    output_label = serializers.CharField()
    dataset = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField(), source="field_names")
    read_by = serializers.CharField()
    request = serializers.SerializerMethodField()
    purpose = serializers.CharField()
    purpose_slug = serializers.SlugField()
    requester = serializers.CharField()
    committee = serializers.CharField()
    decision = serializers.CharField(help_text="The committee's decision.")
    decided_at = serializers.DateTimeField(allow_null=True)
    recipients = serializers.ListField(
        child=serializers.CharField(), help_text="Who received the data read."
    )
    chosen_by = ChosenByOut(
        many=True, help_text="The cohort the read applied: how the people were chosen."
    )

    @extend_schema_field(
        inline_serializer(
            "UseRequestOut", {"id": serializers.IntegerField(), "title": serializers.CharField()}
        )
    )
    def get_request(self, obj):
        return {"id": obj.request_id, "title": obj.request_title}


class AccessLogOut(serializers.Serializer):
    results = UseOut(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="Pass as ?cursor= for the next (older) page; null at the end."
    )


class ReceiptSummaryOut(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField()
    previous_state = serializers.CharField()
    text_version = serializers.IntegerField()
    issued_at = serializers.DateTimeField()
    content_sha256 = serializers.CharField(source="content_hash")


class ConsentRowOut(serializers.Serializer):
    purpose = MyPurposeOut()
    consent_text = serializers.CharField(source="purpose.consent_text")
    current_text_version = serializers.IntegerField(source="purpose.consent_version")
    state = serializers.CharField(help_text="given | withdrawn | refused | not_asked")
    text_version = serializers.IntegerField(
        source="consent.text_version",
        allow_null=True,
        help_text="The version of the text you answered; null when not asked.",
    )
    changed_at = serializers.DateTimeField(source="consent.changed_at", allow_null=True)
    outdated = serializers.BooleanField(
        help_text="Given to an older version of the text than the current one."
    )
    receipts = serializers.SerializerMethodField()

    @extend_schema_field(ReceiptSummaryOut(many=True))
    def get_receipts(self, obj):
        receipts = self.context["receipts"].get(obj.purpose.pk, [])
        return ReceiptSummaryOut(receipts, many=True).data


class ConsentListOut(serializers.Serializer):
    results = ConsentRowOut(many=True)


RECEIPT_OUT = inline_serializer(
    "ConsentReceiptOut",
    {
        "format": serializers.CharField(),
        "receipt_id": serializers.UUIDField(),
        "issued_at": serializers.DateTimeField(),
        "organisation": serializers.DictField(),
        "subject": serializers.DictField(),
        "changed_by": serializers.CharField(),
        "purpose": serializers.DictField(),
        "consent_text": serializers.DictField(help_text="version and sha256 of the text"),
        "state": serializers.CharField(),
        "previous_state": serializers.CharField(),
        "content_sha256": serializers.CharField(
            help_text="SHA-256 of the receipt without this key, as canonical JSON (sorted "
            "keys, no spaces, UTF-8)."
        ),
    },
)


def receipt_json(receipt) -> dict:
    """The receipt as issued, with its hash: the same document the download gives."""
    return {**receipt.content, "content_sha256": receipt.content_hash}


# --- input shapes ----------------------------------------------------------------------


class ConsentChangeIn(serializers.Serializer):
    purpose = serializers.SlugField(max_length=100, help_text="The purpose's slug.")
    action = serializers.ChoiceField(choices=["give", "withdraw"])


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    if not serializer.is_valid():
        lines = [f"{k}: {' '.join(map(str, v))}" for k, v in serializer.errors.items()]
        raise BadRequest("; ".join(lines), serializer.errors)
    return serializer.validated_data


# --- endpoints ------------------------------------------------------------------------


@extend_schema(responses={200: MyDataOut, 404: NOT_LINKED_RESPONSE})
@api_view(["GET"])
def me_data(request):
    """Every dataset holding records about you: its purposes, lawful basis, retention,
    source and stewards, each field's label, description and sensitivity, and all your
    records with every value."""
    person = _me(request)
    held = selectors.data_held_about(person=person, per_dataset=None)
    return Response(MyDataOut({"subject": person, "datasets": held}).data)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "cursor", str, description="The previous page's ``next``: the page after it."
        )
    ],
    responses={200: AccessLogOut, 400: ERROR_BODY, 404: NOT_LINKED_RESPONSE},
)
@api_view(["GET"])
def me_access_log(request):
    """Every read of your data, newest first, 50 per page: when, through which request
    and purpose, at which output level, by whom, and the committee's decision."""
    person = _me(request)
    raw = request.query_params.get("cursor", "")
    before = None
    if raw:
        before = uses.Cursor.decode(raw)
        if before is None:
            raise BadRequest(
                "That cursor is not one this API gave; start again without it.",
                {"cursor": ["Unknown cursor."]},
            )
    page = uses.uses_for_person(person_id=person.pk, before=before, limit=ACCESS_LOG_PAGE + 1)
    more = len(page) > ACCESS_LOG_PAGE
    page = page[:ACCESS_LOG_PAGE]
    following = uses.Cursor(page[-1].event_id).encode() if more else None
    return Response(AccessLogOut({"results": page, "next": following}).data)


@extend_schema(
    methods=["GET"],
    responses={200: ConsentListOut, 404: NOT_LINKED_RESPONSE},
    description="Each purpose that rests on consent (and any other you have answered): "
    "its current text and version, where you stand, and your receipts for it.",
)
@extend_schema(
    methods=["POST"],
    request=ConsentChangeIn,
    responses={201: RECEIPT_OUT, 400: ERROR_BODY, 403: FORBIDDEN, 404: NOT_FOUND},
    description="Give or withdraw your consent; the answer is the receipt. Giving what is "
    "already given to the current text, or withdrawing what is not given, is a 400 and "
    "changes nothing. A withdrawal counts from the next read of your data.",
)
@api_view(["GET", "POST"])
@_service_errors
def me_consents(request):
    """Your consents, or give or withdraw one."""
    person = _me(request)
    if request.method == "GET":
        receipts: dict[int, list] = {}
        for receipt in selectors.receipts_for(person=person):
            receipts.setdefault(receipt.purpose_id, []).append(receipt)
        rows = selectors.consents_for(person=person)
        data = ConsentRowOut(rows, many=True, context={"receipts": receipts}).data
        return Response({"results": data})

    data = _validated(ConsentChangeIn, request)
    purpose = Purpose.objects.filter(slug=data["purpose"]).first()
    if purpose is None:
        raise exceptions.NotFound(f"No purpose {data['purpose']!r}.")
    change = services.consent_give if data["action"] == "give" else services.consent_withdraw
    receipt = change(actor=request.user, person=person, purpose=purpose)
    return Response(receipt_json(receipt), status=status.HTTP_201_CREATED)


@extend_schema(
    responses={
        (200, "application/json"): OpenApiResponse(
            OpenApiTypes.OBJECT,
            description=f"The subject access report ({report.REPORT_FORMAT}): subject, "
            "datasets (purposes, lawful basis, retention, source, stewards, fields, "
            "records), uses (with recipients), consents and receipts, corrections, "
            "objections, automated decision-making and your rights.",
        ),
        404: NOT_LINKED_RESPONSE,
    }
)
@api_view(["GET"])
def me_export(request):
    """Your subject access report (GDPR Article 15), as JSON, prepared now."""
    person = _me(request)
    return Response(report.subject_access_report(person=person))
