"""REST API v1 for analytics requests, their review, decisions and grants.

Each endpoint has its own input and output shapes; objects are fetched through the
selectors (a forbidden object is a 404 like a missing one) and every write goes
through one service. A rule a service enforces answers 400 with the reason; an act
the caller may not do answers 403 with the reason.
"""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Q
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings

from governance import limits
from governance.models import Dataset, DatasetStatus, Field, Purpose
from governance.permissions import objects_for_user as governance_objects

from . import selectors, services
from .models import Grant, Outcome, OutputLevel, VoteChoice
from .permissions import objects_for_user

# --- errors ---------------------------------------------------------------------------


class BadRequest(exceptions.APIException):
    """A 400 whose body is ``{"message": ..., "errors": {...}}`` (plus any extras)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid input."

    def __init__(self, message: str, errors: dict | None = None, **extra):
        super().__init__(message)
        # Set after the base class so DRF renders the dict as the body, unchanged.
        self.detail = {"message": message, "errors": errors or {}, **extra}


def _flatten(errors, prefix: str = "") -> list[str]:
    """Serializer errors as readable lines: ``conditions.obligations[0].owner: ...``."""
    if isinstance(errors, dict):
        lines = []
        for key, value in errors.items():
            name = "" if key == api_settings.NON_FIELD_ERRORS_KEY else str(key)
            lines += _flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name)
        return lines
    if isinstance(errors, list) and errors and not all(isinstance(e, str) for e in errors):
        lines = []
        for index, value in enumerate(errors):
            if value:
                lines += _flatten(value, f"{prefix}[{index}]")
        return lines
    messages = errors if isinstance(errors, list) else [errors]
    return [f"{prefix}: {m}" if prefix else str(m) for m in messages]


def _validation_error(exc: ValidationError) -> BadRequest:
    if hasattr(exc, "error_dict"):
        errors = {
            (api_settings.NON_FIELD_ERRORS_KEY if k == NON_FIELD_ERRORS else k): v
            for k, v in exc.message_dict.items()
        }
    else:
        errors = {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    return BadRequest(" ".join(exc.messages), errors)


def _service_errors(view):
    """A service's ValidationError is a 400 and its PermissionDenied a 403, with the reason."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except services.RequestBlocked as blocked:
            raise BadRequest(
                blocked.messages[0],
                {api_settings.NON_FIELD_ERRORS_KEY: blocked.messages},
                findings=FindingOut(blocked.findings, many=True).data,
            ) from None
        except ValidationError as exc:
            raise _validation_error(exc) from None
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc) or None) from None

    return wrapper


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data, context={"request": request})
    if not serializer.is_valid():
        raise BadRequest("; ".join(_flatten(serializer.errors)), serializer.errors)
    return serializer.validated_data


def _users_by_email(emails) -> dict:
    """Active users keyed by lower-cased e-mail, in one query."""
    emails = {e.lower() for e in emails if e}
    if not emails:
        return {}
    query = Q()
    for email in emails:
        query |= Q(email__iexact=email)
    users = get_user_model().objects.filter(query, is_active=True)
    return {u.email.lower(): u for u in users}


ERROR_BODY = inline_serializer(
    "AnalyticsErrorOut",
    {"message": serializers.CharField(), "errors": serializers.DictField(required=False)},
)
NOT_FOUND = OpenApiResponse(
    inline_serializer("AnalyticsNotFoundOut", {"message": serializers.CharField()}),
    description="No such object, or not one you may see",
)
FORBIDDEN = OpenApiResponse(
    inline_serializer("AnalyticsForbiddenOut", {"message": serializers.CharField()}),
    description="You may see it but not do this; the message says why",
)


# --- output shapes ---------------------------------------------------------------------


def _field_names(fields) -> list[str]:
    return [f"{f.dataset.slug}.{f.name}" for f in fields]


class FindingOut(serializers.Serializer):
    rule = serializers.SlugField(source="rule.slug")
    severity = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField(), source="field_names")
    fix = serializers.CharField()


class RequestContentOut(serializers.Serializer):
    purpose = serializers.SlugField(source="purpose.slug")
    justification = serializers.CharField()
    expected_benefit = serializers.CharField()
    fields = serializers.SerializerMethodField(method_name="field_names")
    cohort = serializers.JSONField(allow_null=True)
    output_level = serializers.CharField()
    involves_model = serializers.BooleanField()
    automated_decision = serializers.BooleanField()
    human_reviewer = serializers.SerializerMethodField()
    minimisation_justification = serializers.CharField()
    retention_days = serializers.IntegerField()
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()

    def field_names(self, obj) -> list[str]:
        return _field_names(obj.fields.all())

    def get_human_reviewer(self, obj) -> str | None:
        return obj.human_reviewer.email if obj.human_reviewer else None


class SignoffOut(serializers.Serializer):
    round = serializers.IntegerField()
    dataset = serializers.SlugField(source="dataset.slug")
    steward = serializers.EmailField(source="steward.email")
    approve = serializers.BooleanField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class VoteOut(serializers.Serializer):
    member = serializers.EmailField(source="member.email")
    vote = serializers.CharField(source="choice")
    rationale = serializers.CharField()


class ObligationOut(serializers.Serializer):
    text = serializers.CharField()
    owner = serializers.EmailField(source="owner.email")
    due_on = serializers.DateField()


class ConditionsOut(serializers.Serializer):
    aggregate_only = serializers.BooleanField()
    min_cohort = serializers.IntegerField()
    expires_on = serializers.DateField(allow_null=True)
    epsilon = serializers.FloatField(
        allow_null=True, help_text="The privacy budget (ε) an approval gave; null otherwise."
    )
    obligations = ObligationOut(many=True, source="obligations.all")


class DecisionOut(serializers.Serializer):
    id = serializers.IntegerField()
    round = serializers.IntegerField()
    outcome = serializers.CharField()
    rationale = serializers.CharField()
    conditions = ConditionsOut(source="*")
    decided_by = serializers.EmailField(source="decided_by.email")
    decided_at = serializers.DateTimeField()
    supersedes = serializers.IntegerField(source="supersedes_id", allow_null=True)


class GrantSummaryOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    valid_until = serializers.DateField()


class RequestDetailOut(serializers.Serializer):
    """A request as it stands, with its review so far."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField()
    round = serializers.IntegerField()
    requester = serializers.EmailField(source="requester.email")
    committee = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    content = RequestContentOut(source="*")
    findings = serializers.SerializerMethodField()
    signoffs = serializers.SerializerMethodField()
    votes = serializers.SerializerMethodField(
        help_text="The current round's votes: for the committee's members, and for the "
        "requester once the round is decided; null when hidden from you."
    )
    decision = serializers.SerializerMethodField()
    grant = serializers.SerializerMethodField()

    def get_committee(self, obj) -> str | None:
        return obj.committee.slug if obj.committee else None

    @extend_schema_field(FindingOut(many=True))
    def get_findings(self, obj):
        # Findings are stored for the round the content is (or would be) submitted as;
        # the latest such round is what the request says now.
        findings = list(obj.findings.all())
        latest = max((f.round for f in findings), default=None)
        return FindingOut([f for f in findings if f.round == latest], many=True).data

    @extend_schema_field(SignoffOut(many=True))
    def get_signoffs(self, obj):
        return SignoffOut([s for s in obj.signoffs.all() if s.round == obj.round], many=True).data

    @extend_schema_field(VoteOut(many=True, allow_null=True))
    def get_votes(self, obj):
        user = self.context["request"].user
        decided = any(d.round == obj.round for d in obj.decisions.all())
        if user.pk == obj.requester_id:
            # The requester sees how members voted only once the round is decided,
            # even if they also sit on the committee.
            visible = decided
        else:
            memberships = obj.committee.memberships.all() if obj.committee else []
            visible = any(m.user_id == user.pk for m in memberships)
        if not visible:
            return None
        return VoteOut([v for v in obj.votes.all() if v.round == obj.round], many=True).data

    @extend_schema_field(DecisionOut(allow_null=True))
    def get_decision(self, obj):
        decisions = list(obj.decisions.all())
        return DecisionOut(decisions[-1]).data if decisions else None

    @extend_schema_field(GrantSummaryOut(allow_null=True))
    def get_grant(self, obj):
        grants = sorted(obj.grants.all(), key=lambda g: g.pk)
        return GrantSummaryOut(grants[-1]).data if grants else None


class RequestListOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField()
    round = serializers.IntegerField()
    purpose = serializers.SlugField(source="purpose.slug")
    field_count = serializers.IntegerField()
    blocking = serializers.IntegerField(help_text="Blocking findings recorded on the request.")
    created_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(f"/api/v1/requests/{obj.pk}/")


class SignoffCreatedOut(SignoffOut):
    request_status = serializers.CharField(source="request.status")


class VoteCreatedOut(VoteOut):
    round = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class DecisionCreatedOut(DecisionOut):
    request_status = serializers.CharField(source="request.status")
    grant = serializers.SerializerMethodField()

    def get_grant(self, obj) -> int | None:
        grant = getattr(obj, "grant", None)
        return grant.pk if grant else None


class GrantOut(serializers.Serializer):
    id = serializers.IntegerField()
    request = serializers.IntegerField(source="request_id")
    title = serializers.CharField(source="request.title")
    purpose = serializers.SlugField(source="request.purpose.slug")
    decision = serializers.IntegerField(source="decision_id")
    grantee = serializers.EmailField(source="grantee.email")
    fields = serializers.SerializerMethodField(method_name="field_names")
    output_level = serializers.CharField()
    k = serializers.IntegerField()
    epsilon = serializers.FloatField(help_text="The privacy budget (ε) of its aggregates.")
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    status = serializers.CharField()
    usable = serializers.BooleanField(source="is_usable", help_text="Active and in its window.")
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.SerializerMethodField()
    revoke_reason = serializers.CharField()

    def field_names(self, obj) -> list[str]:
        return sorted(_field_names(obj.fields.all()))

    def get_revoked_by(self, obj) -> str | None:
        return obj.revoked_by.email if obj.revoked_by else None


# --- input shapes ----------------------------------------------------------------------

# "<dataset-slug>.<field>": two slugs of at most 100 characters and the dot.
FIELD_NAME = 201


class RequestCreateIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    purpose = serializers.SlugField(max_length=100, help_text="A registered purpose's slug.")
    justification = serializers.CharField(max_length=limits.TEXT)
    expected_benefit = serializers.CharField(
        max_length=limits.TEXT, help_text="The benefit to learners."
    )
    fields = serializers.ListField(
        child=serializers.CharField(max_length=FIELD_NAME),
        allow_empty=False,
        max_length=limits.CATEGORY_VALUES,
        help_text='["<dataset-slug>.<field>"]',
    )
    cohort = serializers.DictField(
        child=serializers.JSONField(),
        allow_null=True,
        required=False,
        default=None,
        help_text='null for everyone, or {"<dataset-slug>.<field>": value}. A field that '
        "selects people is a field used: each must also be in fields, within your clearance.",
    )
    output_level = serializers.ChoiceField(choices=OutputLevel.choices)
    involves_model = serializers.BooleanField(default=False)
    automated_decision = serializers.BooleanField(default=False)
    human_reviewer = serializers.EmailField(
        max_length=254, allow_null=True, required=False, default=None
    )
    minimisation_justification = serializers.CharField(
        allow_blank=True, required=False, default="", max_length=limits.TEXT
    )
    retention_days = serializers.IntegerField(min_value=1, required=False, default=365)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()


class SignoffIn(serializers.Serializer):
    dataset = serializers.SlugField(
        max_length=100, help_text="The slug of a dataset the request uses."
    )
    approve = serializers.BooleanField()
    note = serializers.CharField(max_length=limits.NOTE)


class VoteIn(serializers.Serializer):
    vote = serializers.ChoiceField(choices=VoteChoice.choices)
    rationale = serializers.CharField(max_length=limits.NOTE)


class ObligationIn(serializers.Serializer):
    text = serializers.CharField(max_length=limits.NOTE)
    owner = serializers.EmailField(max_length=254)
    due_on = serializers.DateField()


class ConditionsIn(serializers.Serializer):
    aggregate_only = serializers.BooleanField(default=False)
    min_cohort = serializers.IntegerField(min_value=2, default=10)
    expires_on = serializers.DateField(allow_null=True, required=False, default=None)
    epsilon = serializers.FloatField(
        min_value=0.0,
        allow_null=True,
        required=False,
        default=None,
        help_text="The privacy budget (ε) an approval gives the aggregates; null for the "
        "data protection officer's default (in a correction, the corrected decision's).",
    )
    obligations = ObligationIn(many=True, required=False, default=list)


CORRECTABLE_CONDITIONS = {"aggregate_only", "min_cohort", "expires_on", "epsilon"}


class DecisionIn(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    rationale = serializers.CharField(max_length=limits.TEXT)
    conditions = ConditionsIn(required=False, allow_null=True, default=None)
    supersedes = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="To correct a decision: the id of the request's latest decision. "
        "Decisions are never edited; the correction supersedes it, keeping each condition "
        "it does not name. It passes the same "
        "checks as a first decision over the votes of that round, may narrow access but "
        "never widen it, and never turns a refusal into an approval (a new review round "
        "does that); a revoked or expired request cannot be corrected.",
    )


class RevokeIn(serializers.Serializer):
    reason = serializers.CharField(max_length=limits.NOTE)


# --- endpoints ------------------------------------------------------------------------


def _detail_response(request, pk: int, status_code: int = status.HTTP_200_OK) -> Response:
    obj = selectors.request_detail(user=request.user, pk=pk)
    return Response(RequestDetailOut(obj, context={"request": request}).data, status=status_code)


def _resolve_fields(user, names: list[str]) -> list[Field]:
    """Fields by ``dataset.field`` on active datasets the user may see; 400 naming any other.

    Excluded fields resolve, so the rule that forbids them explains why in a finding.
    """
    wanted = list(dict.fromkeys(names))
    pairs = [(n.partition(".")[0], n.partition(".")[2]) for n in wanted]
    query = Q()
    for slug, name in pairs:
        query |= Q(dataset__slug=slug, name=name)
    visible = governance_objects(user, "view", Dataset).filter(status=DatasetStatus.ACTIVE)
    found = {
        f"{f.dataset.slug}.{f.name}": f
        for f in Field.objects.filter(query, dataset__in=visible).select_related("dataset")
    }
    unknown = [n for n in wanted if n not in found]
    if unknown:
        message = "Unknown field(s): " + ", ".join(unknown) + " (use <dataset-slug>.<field>)."
        raise BadRequest(message, {"fields": [message]})
    return [found[n] for n in wanted]


@extend_schema(
    methods=["GET"],
    operation_id="v1_requests_list",
    responses=inline_serializer(
        "PaginatedRequestListOut",
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": RequestListOut(many=True),
        },
    ),
    description="Your own requests, newest first.",
)
@extend_schema(
    methods=["POST"],
    request=RequestCreateIn,
    responses={201: RequestDetailOut, 400: ERROR_BODY, 403: FORBIDDEN},
    description="Draft a request. The response carries the rules' findings; "
    "an unknown purpose, field or user is a 400 naming it.",
)
@api_view(["GET", "POST"])
@_service_errors
def request_list(request):
    """List your requests, or draft a new one."""
    if request.method == "GET":
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.request_list_for_requester(user=request.user), request
        )
        data = RequestListOut(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    data = dict(_validated(RequestCreateIn, request))
    purpose = Purpose.objects.filter(slug=data["purpose"]).first()
    if purpose is None:
        message = f"Unknown purpose {data['purpose']!r}."
        raise BadRequest(message, {"purpose": [message]})
    data["purpose"] = purpose
    fields = _resolve_fields(request.user, data.pop("fields"))
    if data["human_reviewer"]:
        email = data["human_reviewer"]
        data["human_reviewer"] = _users_by_email([email]).get(email.lower())
        if data["human_reviewer"] is None:
            message = f"No active user has the e-mail {email}."
            raise BadRequest(message, {"human_reviewer": [message]})
    created = services.request_create(actor=request.user, fields=fields, **data)
    return _detail_response(request, created.pk, status.HTTP_201_CREATED)


@extend_schema(responses={200: RequestDetailOut, 404: NOT_FOUND})
@api_view(["GET"])
def request_detail(request, pk):
    """A request with its findings, sign-offs, votes (when you may see them), decision and grant."""
    return _detail_response(request, pk)


@extend_schema(
    request=None,
    responses={
        200: RequestDetailOut,
        400: OpenApiResponse(
            inline_serializer(
                "SubmitBlockedOut",
                {
                    "message": serializers.CharField(),
                    "errors": serializers.DictField(required=False),
                    "findings": FindingOut(many=True),
                },
            ),
            description="Rules block it (listed in findings), or it cannot be submitted now; "
            "the request is unchanged",
        ),
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@api_view(["POST"])
@_service_errors
def request_submit(request, pk):
    """Submit a draft (or a request returned with changes) for a new review round."""
    obj = selectors.request_get_for_user(user=request.user, pk=pk)
    services.request_submit(actor=request.user, request=obj)
    return _detail_response(request, pk)


@extend_schema(
    request=None,
    responses={200: RequestDetailOut, 400: ERROR_BODY, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["POST"])
@_service_errors
def request_withdraw(request, pk):
    """Withdraw your request, at any time before a decision."""
    obj = selectors.request_get_for_user(user=request.user, pk=pk)
    services.request_withdraw(actor=request.user, request=obj)
    return _detail_response(request, pk)


@extend_schema(
    request=SignoffIn,
    responses={201: SignoffCreatedOut, 400: ERROR_BODY, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["POST"])
@_service_errors
def request_signoffs(request, pk):
    """A steward signs off (approve: true) or declines (false) a dataset the request uses."""
    obj = selectors.request_get_for_user(user=request.user, pk=pk)
    services.check_may(actor=request.user, request=obj, action="signoff")
    data = _validated(SignoffIn, request)
    dataset = Dataset.objects.filter(slug=data["dataset"], fields__requests=obj).first()
    if dataset is None:
        message = f"This request does not use a dataset {data['dataset']!r}."
        raise BadRequest(message, {"dataset": [message]})
    signoff = services.signoff_record(
        actor=request.user,
        request=obj,
        dataset=dataset,
        approve=data["approve"],
        note=data["note"],
    )
    return Response(SignoffCreatedOut(signoff).data, status=status.HTTP_201_CREATED)


@extend_schema(
    request=VoteIn,
    responses={201: VoteCreatedOut, 400: ERROR_BODY, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["POST"])
@_service_errors
def request_votes(request, pk):
    """A committee member votes once per round, with a rationale; ``conflict`` recuses."""
    obj = selectors.request_get_for_user(user=request.user, pk=pk)
    services.check_may(actor=request.user, request=obj, action="vote")
    data = _validated(VoteIn, request)
    vote = services.vote_cast(
        actor=request.user, request=obj, choice=data["vote"], rationale=data["rationale"]
    )
    return Response(VoteCreatedOut(vote).data, status=status.HTTP_201_CREATED)


@extend_schema(
    request=DecisionIn,
    responses={201: DecisionCreatedOut, 400: ERROR_BODY, 403: FORBIDDEN, 404: NOT_FOUND},
    description="The chair records the decision once the votes meet quorum and support the "
    "outcome. An approval creates a grant (its id is in the response). With `supersedes`, "
    "the chair corrects the latest decision under the same rules, narrowing access only; "
    "a refused correction is a 400 with the reasons and changes nothing.",
)
@api_view(["POST"])
@_service_errors
def request_decision(request, pk):
    """The chair records the committee's decision, with conditions."""
    obj = selectors.request_get_for_user(user=request.user, pk=pk)
    services.check_may(actor=request.user, request=obj, action="decide")
    data = _validated(DecisionIn, request)
    conditions = dict(data["conditions"] or {})
    obligations = conditions.pop("obligations", [])
    owners = _users_by_email(o["owner"] for o in obligations)
    unknown = sorted({o["owner"] for o in obligations if o["owner"].lower() not in owners})
    if unknown:
        message = "No active user has the e-mail " + ", ".join(unknown) + "."
        raise BadRequest(message, {"conditions": {"obligations": [message]}})
    supersedes = None
    if data["supersedes"] is not None:
        supersedes = obj.decisions.filter(pk=data["supersedes"]).first()
        if supersedes is None:
            raise BadRequest(
                "This request has no such decision.", {"supersedes": ["No such decision."]}
            )
        # As the correction page shows them prefilled: a correction keeps each condition
        # of the corrected decision that it does not name.
        raw = request.data.get("conditions") if hasattr(request.data, "get") else None
        named = set(raw) if isinstance(raw, dict) else set()
        for name in CORRECTABLE_CONDITIONS - named:
            conditions[name] = getattr(supersedes, name)
    decision = services.decision_record(
        actor=request.user,
        request=obj,
        outcome=data["outcome"],
        rationale=data["rationale"],
        supersedes=supersedes,
        obligations=[
            services.ObligationInput(
                text=o["text"], owner=owners[o["owner"].lower()], due_on=o["due_on"]
            )
            for o in obligations
        ],
        **conditions,
    )
    return Response(DecisionCreatedOut(decision).data, status=status.HTTP_201_CREATED)


@extend_schema(responses={200: GrantOut, 404: NOT_FOUND})
@api_view(["GET"])
def grant_detail(request, pk):
    """A grant: what its holder may read, at which output level, and until when."""
    grant = selectors.grant_get_for_user(user=request.user, pk=pk)
    return Response(GrantOut(grant).data)


@extend_schema(
    request=RevokeIn,
    responses={200: GrantOut, 400: ERROR_BODY, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["POST"])
@_service_errors
def grant_revoke(request, pk):
    """The chair or the DPO revokes a grant with a reason; the next access is refused."""
    grant = selectors.grant_get_for_user(user=request.user, pk=pk)
    if not objects_for_user(request.user, "revoke", Grant).filter(pk=grant.pk).exists():
        raise PermissionDenied("Only the committee's chair or the DPO revokes a grant.")
    data = _validated(RevokeIn, request)
    services.grant_revoke(actor=request.user, grant=grant, reason=data["reason"])
    return Response(GrantOut(selectors.grant_get_for_user(user=request.user, pk=pk)).data)
