"""Governance pages: thin views over selectors (reads) and services (writes)."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from . import lockout, selectors
from .audit.chain import latest_verification
from .csvio import ImportRejected
from .forms import (
    ApiTokenForm,
    DatasetForm,
    FieldForm,
    LockoutLiftForm,
    PeopleImportForm,
    PersonLinkForm,
    PolicyForm,
    PurposeForm,
    UploadForm,
)
from .middleware import bad_request as reject
from .middleware import is_api
from .models import ApiToken, Dataset, DatasetStatus, LoadMode, Person, Policy, Purpose, Role
from .parsers import too_large_message
from .permissions import has_role, user_can
from .services import accounts, registry
from .services.people import people_import
from .services.records import record_load_create, record_load_retry
from .tasks import load_progress_key, record_load_task


def _require(user, action, obj):
    if not user_can(user, action, obj):
        raise PermissionDenied


def _form_errors_from(exc: ValidationError, form):
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


NOT_SAVED = object()


def form_submit(request, form, write, *, drop=frozenset()):
    """Call ``write(**cleaned_data)`` for a valid POST and return what it returns.

    A rule the service enforces (ValidationError) becomes a form error, like a bad
    field; either way nothing is saved and the result is NOT_SAVED.
    """
    if request.method != "POST" or not form.is_valid():
        return NOT_SAVED
    data = {k: v for k, v in form.cleaned_data.items() if k not in drop}
    try:
        return write(**data)
    except ValidationError as exc:
        _form_errors_from(exc, form)
        return NOT_SAVED


# --- dashboard and profile ------------------------------------------------------------


@login_required
def dashboard(request):
    user = request.user
    context = {}
    if has_role(user, Role.DPO):
        context["overdue_policies"] = selectors.policies_overdue(user=user)
    if has_role(user, Role.STEWARD):
        context["my_datasets"] = list(selectors.dataset_list(user=user, steward=user.email))
    if has_role(user, Role.AUDITOR, Role.ADMINISTRATOR):
        context["show_audit"] = True
        context["audit_verification"] = latest_verification()
    if has_role(user, Role.ADMINISTRATOR):
        context["locks"] = lockout.locks_current()
    return render(request, "governance/dashboard.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def lockout_list(request):
    """Logins and network addresses locked after failed sign-ins; an administrator
    lifts a lock here (recorded in the audit trail)."""
    if not has_role(request.user, Role.ADMINISTRATOR):
        raise PermissionDenied
    form = LockoutLiftForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account, address = form.cleaned_data["account"], form.cleaned_data["address"]
        if accounts.lockout_lift(actor=request.user, account=account, address=address):
            messages.success(request, f"Unlocked sign-in for {account or address}.")
        else:
            messages.info(request, f"Sign-in for {account or address} was not locked.")
        return redirect("lockout-list")
    return render(
        request,
        "governance/lockouts.html",
        {
            "form": form,
            "locks": lockout.locks_current(),
            "minutes": int(lockout.cool_off().total_seconds() // 60),
            "account_limit": lockout.account_limit(),
            "address_limit": lockout.address_limit(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    user = request.user
    form = ApiTokenForm()
    new_secret = None
    if request.method == "POST":
        if "revoke" in request.POST:
            token = get_object_or_404(ApiToken, pk=request.POST.get("revoke"), user=user)
            accounts.api_token_revoke(actor=user, token=token)
            messages.success(request, f"Token “{token.name}” revoked.")
            return redirect("profile")
        form = ApiTokenForm(request.POST)
        created = form_submit(
            request, form, partial(accounts.api_token_create, actor=user, user=user)
        )
        if created is not NOT_SAVED:
            new_secret = created[1]
            form = ApiTokenForm()
    tokens = user.api_tokens.filter(revoked_at__isnull=True)
    return render(
        request,
        "governance/profile.html",
        {"form": form, "tokens": tokens, "new_secret": new_secret},
    )


@login_required
@require_http_methods(["POST"])
def sign_out_everywhere(request):
    accounts.user_sign_out_everywhere(actor=request.user, user=request.user)
    auth_logout(request)
    messages.success(request, "You are signed out everywhere: every browser has to sign in again.")
    return redirect("account_login")


# --- catalogue ------------------------------------------------------------------------


@login_required
def dataset_list(request):
    filters = {
        key: request.GET.get(key, "").strip() for key in ("q", "tag", "sensitivity", "steward")
    }
    datasets = selectors.dataset_list(user=request.user, **filters)
    page = Paginator(datasets, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "governance/dataset_list.html",
        {
            "page": page,
            "filters": filters,
            "facets": selectors.catalogue_facets(user=request.user),
            "can_add": user_can(request.user, "add", Dataset),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def dataset_create(request):
    _require(request.user, "add", Dataset)
    form = DatasetForm(request.POST or None)
    dataset = form_submit(request, form, partial(registry.dataset_create, actor=request.user))
    if dataset is not NOT_SAVED:
        messages.success(request, f"Dataset “{dataset.name}” registered.")
        return redirect(dataset)
    return render(request, "governance/dataset_form.html", {"form": form})


@login_required
def dataset_detail(request, slug):
    dataset = selectors.dataset_detail(user=request.user, slug=slug)
    return render(
        request,
        "governance/dataset_detail.html",
        {
            "dataset": dataset,
            "fields": list(dataset.fields.all()),
            "loads": selectors.dataset_recent_loads(dataset=dataset),
            "timeline": selectors.dataset_timeline(dataset=dataset),
            "can_change": user_can(request.user, "change", dataset),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def dataset_edit(request, slug):
    dataset = selectors.dataset_get_for_user(user=request.user, slug=slug, action="change")
    form = DatasetForm(request.POST or None, instance=dataset)
    update = partial(registry.dataset_update, actor=request.user, dataset=dataset)
    changed = form_submit(request, form, update, drop={"slug"})
    if changed is not NOT_SAVED:
        messages.success(request, "Dataset saved." if changed else "Nothing changed.")
        return redirect(dataset)
    return render(request, "governance/dataset_form.html", {"form": form, "dataset": dataset})


@login_required
@require_http_methods(["GET", "POST"])
def field_create(request, slug):
    dataset = selectors.dataset_get_for_user(user=request.user, slug=slug, action="change")
    form = FieldForm(request.POST or None, dataset=dataset)
    create = partial(registry.field_create, actor=request.user, dataset=dataset)
    field = form_submit(request, form, create)
    if field is not NOT_SAVED:
        messages.success(request, f"Field “{field.name}” added.")
        return redirect(dataset)
    return render(request, "governance/field_form.html", {"form": form, "dataset": dataset})


@login_required
@require_http_methods(["GET", "POST"])
def field_edit(request, slug, name):
    dataset = selectors.dataset_get_for_user(user=request.user, slug=slug, action="change")
    field = selectors.field_get_for_user(
        user=request.user, dataset=dataset, name=name, action="change"
    )
    form = FieldForm(request.POST or None, dataset=dataset, instance=field)
    update = partial(registry.field_update, actor=request.user, field=field)
    changed = form_submit(request, form, update, drop={"name"})
    if changed is not NOT_SAVED:
        messages.success(request, "Field saved." if changed else "Nothing changed.")
        return redirect(dataset)
    return render(
        request, "governance/field_form.html", {"form": form, "dataset": dataset, "field": field}
    )


@login_required
@require_http_methods(["GET", "POST"])
def dataset_upload(request, slug):
    dataset = selectors.dataset_get_for_user(user=request.user, slug=slug, action="load")
    form = UploadForm(request.POST or None, request.FILES or None)
    if dataset.status == DatasetStatus.RETIRED:
        form.add_error(None, "A retired dataset takes no new records.")
    elif request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        with transaction.atomic():
            load = record_load_create(
                actor=request.user,
                dataset=dataset,
                file_name=upload.name,
                mode=LoadMode.REPLACE if form.cleaned_data["replace"] else LoadMode.ADD,
                file=upload,
            )
            record_load_task.delay_on_commit(load.pk)
        return redirect(load)
    return render(request, "governance/dataset_upload.html", {"form": form, "dataset": dataset})


@login_required
@require_POST
def load_retry(request, pk):
    load = selectors.load_get_for_user(user=request.user, pk=pk)
    # Retrying loads records: the same right as uploading to the dataset.
    selectors.dataset_get_for_user(user=request.user, slug=load.dataset.slug, action="load")
    if record_load_retry(actor=request.user, load=load):
        messages.success(request, "The load is queued again.")
    return redirect(load)


@login_required
def load_detail(request, pk):
    load = selectors.load_get_for_user(user=request.user, pk=pk)
    progress = cache.get(load_progress_key(load.pk)) or {}
    context = {"load": load, "progress": progress}
    total = progress.get("total")
    if total:
        context["percent"] = min(100, round(100 * progress.get("rows", 0) / total))
    if request.headers.get("HX-Request"):
        return render(request, "governance/_load_status.html", context)
    return render(request, "governance/load_detail.html", context)


# --- purposes -------------------------------------------------------------------------


@login_required
def purpose_list(request):
    return render(
        request,
        "governance/purpose_list.html",
        {
            "purposes": selectors.purpose_list(user=request.user),
            "can_add": user_can(request.user, "add", Purpose),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def purpose_create(request):
    _require(request.user, "add", Purpose)
    form = PurposeForm(request.POST or None)
    purpose = form_submit(request, form, partial(registry.purpose_create, actor=request.user))
    if purpose is not NOT_SAVED:
        messages.success(request, f"Purpose “{purpose.name}” registered.")
        return redirect(purpose)
    return render(request, "governance/purpose_form.html", {"form": form})


@login_required
def purpose_detail(request, slug):
    purpose = selectors.purpose_get_for_user(user=request.user, slug=slug)
    return render(
        request,
        "governance/purpose_detail.html",
        {
            "purpose": purpose,
            "datasets": selectors.dataset_list(user=request.user).filter(purposes=purpose),
            "timeline": selectors.purpose_timeline(purpose=purpose),
            "can_change": user_can(request.user, "change", purpose),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def purpose_edit(request, slug):
    purpose = selectors.purpose_get_for_user(user=request.user, slug=slug, action="change")
    form = PurposeForm(request.POST or None, instance=purpose)
    update = partial(registry.purpose_update, actor=request.user, purpose=purpose)
    changed = form_submit(request, form, update, drop={"slug"})
    if changed is not NOT_SAVED:
        messages.success(request, "Purpose saved." if changed else "Nothing changed.")
        return redirect(purpose)
    return render(request, "governance/purpose_form.html", {"form": form, "purpose": purpose})


# --- policies -------------------------------------------------------------------------


@login_required
def policy_list(request):
    return render(
        request,
        "governance/policy_list.html",
        {
            "policies": selectors.policy_list(user=request.user),
            "can_add": user_can(request.user, "add", Policy),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def policy_create(request):
    _require(request.user, "add", Policy)
    form = PolicyForm(request.POST or None, initial={"owner": request.user})
    policy = form_submit(request, form, partial(registry.policy_create, actor=request.user))
    if policy is not NOT_SAVED:
        messages.success(request, f"Policy “{policy.title}” recorded.")
        return redirect(policy)
    return render(request, "governance/policy_form.html", {"form": form})


@login_required
def policy_detail(request, slug):
    policy = selectors.policy_get_for_user(user=request.user, slug=slug)
    return render(
        request,
        "governance/policy_detail.html",
        {
            "policy": policy,
            "timeline": selectors.policy_timeline(policy=policy),
            "can_change": user_can(request.user, "change", policy),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def policy_edit(request, slug):
    policy = selectors.policy_get_for_user(user=request.user, slug=slug, action="change")
    form = PolicyForm(request.POST or None, instance=policy)
    update = partial(registry.policy_update, actor=request.user, policy=policy)
    changed = form_submit(request, form, update, drop={"slug"})
    if changed is not NOT_SAVED:
        messages.success(request, "Policy saved." if changed else "Nothing changed.")
        return redirect(policy)
    return render(request, "governance/policy_form.html", {"form": form, "policy": policy})


# --- people ---------------------------------------------------------------------------


@login_required
def person_list(request):
    _require(request.user, "view", Person)
    q = request.GET.get("q", "").strip()
    page = Paginator(selectors.person_list(user=request.user, q=q), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "governance/person_list.html", {"page": page, "q": q})


@login_required
@require_http_methods(["GET", "POST"])
def person_import(request):
    _require(request.user, "add", Person)
    form = PeopleImportForm(request.POST or None, request.FILES or None)
    errors = None
    if request.method == "POST" and form.is_valid():
        try:
            result = people_import(actor=request.user, stream=form.cleaned_data["file"])
        except ImportRejected as rejected:
            errors = rejected.errors
        else:
            messages.success(
                request,
                f"{result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.linked} linked to logins.",
            )
            return redirect("person-list")
    return render(request, "governance/person_import.html", {"form": form, "errors": errors})


@login_required
@require_http_methods(["GET", "POST"])
def person_detail(request, pk):
    person = selectors.person_get_for_user(user=request.user, pk=pk)
    form = PersonLinkForm(request.POST or None, person=person)
    if request.method == "POST":
        _require(request.user, "change", person)
        if form.is_valid():
            accounts.person_link_user(
                actor=request.user, person=person, user=form.cleaned_data["user"]
            )
            messages.success(request, "Login link saved.")
            return redirect(person)
    return render(
        request,
        "governance/person_detail.html",
        {"person": person, "form": form, "timeline": selectors.person_timeline(person=person)},
    )


def bad_request(request, exception=None):
    # Django's own refusals (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields).
    if isinstance(exception, RequestDataTooBig):
        return reject(request, too_large_message(), status=413)
    return reject(request, "The request could not be read. Nothing was changed.")


def permission_denied(request, exception=None):
    if is_api(request):
        return JsonResponse({"message": "You do not have permission to do this."}, status=403)
    return render(request, "403.html", status=403)


def not_found(request, exception=None):
    # The same page whether the object is missing or forbidden: nothing to tell apart.
    if is_api(request):  # a URL no API route matches
        return JsonResponse({"message": "Not found."}, status=404)
    return render(request, "404.html", status=404)
