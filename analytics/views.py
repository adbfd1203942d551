"""The analyst's pages: draft a request, see what the rules say, submit, follow it.

Thin views: forms give the input its shape, services write (their ValidationError
becomes a form error), selectors read. The detail page also renders the forms of
the stewards, the committee and the chair; their POST views live in review_views.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from governance.models import Dataset, RuleSeverity
from governance.permissions import objects_for_user as governance_objects_for_user
from governance.views import NOT_SAVED, form_submit

from . import selectors, services
from .forms import RequestForm, WithdrawForm
from .models import (
    OPEN_STATUSES,
    AnalyticsRequest,
    Grant,
    GrantStatus,
    VoteChoice,
)
from .permissions import objects_for_user, user_can


def _require_analyst(user):
    if not user_can(user, "add", AnalyticsRequest):
        raise PermissionDenied


def _posted(request):
    # An empty POST is still a submission: bind it so its errors show.
    return request.POST if request.method == "POST" else None


def _blocking_first(findings) -> list:
    """Findings (stored) or verdicts (previewed), the ones that block first."""
    return sorted(findings, key=lambda f: (f.severity != RuleSeverity.BLOCK, f.rule.slug))


# --- the analyst's list ----------------------------------------------------------------


@login_required
def request_list(request):
    _require_analyst(request.user)
    page = Paginator(selectors.request_list_for_requester(user=request.user), 25).get_page(
        request.GET.get("page")
    )
    return render(request, "analytics/request_list.html", {"page": page})


# --- drafting --------------------------------------------------------------------------


def _preview(form: RequestForm) -> dict:
    """What the rules would say about the form's content, without saving anything.

    Works on a partly filled form: it needs only a purpose and at least one field.
    """
    data = form.cleaned_data if form.is_bound else {}
    if not data.get("purpose") or not data.get("fields"):
        return {"findings": None, "preview": True}
    verdicts = services.findings_preview(
        purpose=data["purpose"],
        fields=list(data["fields"]),
        output_level=data.get("output_level"),
        involves_model=data.get("involves_model"),
        automated_decision=data.get("automated_decision"),
        human_reviewer=data.get("human_reviewer"),
        minimisation_justification=data.get("minimisation_justification"),
    )
    return {"findings": _blocking_first(verdicts), "preview": True}


def _form_page(request, form: RequestForm, analytics_request=None, findings=None):
    context = {
        "form": form,
        "datasets": form.datasets,
        "selected": form.selected_field_ids,
        "analytics_request": analytics_request,
        "preview": True,
        "findings": findings,
    }
    if analytics_request is not None:
        offered = {f.pk for d in form.datasets for f in d.requestable}
        context["unavailable"] = [f for f in analytics_request.fields.all() if f.pk not in offered]
    return render(request, "analytics/request_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def request_create(request):
    _require_analyst(request.user)
    form = RequestForm(_posted(request), datasets=selectors.requestable_fields(user=request.user))
    created = form_submit(request, form, partial(services.request_create, actor=request.user))
    if created is not NOT_SAVED:
        messages.success(request, f"Request “{created.title}” saved as a draft.")
        return redirect(created)
    findings = _preview(form)["findings"] if form.is_bound else None
    return _form_page(request, form, findings=findings)


@login_required
@require_POST
def request_findings_preview(request):
    """The findings fragment for the form as it stands (htmx, while drafting)."""
    _require_analyst(request.user)
    form = RequestForm(request.POST, datasets=selectors.requestable_fields(user=request.user))
    form.is_valid()
    return render(request, "analytics/_findings.html", _preview(form))


@login_required
@require_http_methods(["GET", "POST"])
def request_edit(request, pk):
    analytics_request = selectors.request_get_for_user(user=request.user, pk=pk, action="change")
    if not analytics_request.is_editable:
        messages.error(
            request,
            f"A {analytics_request.get_status_display().lower()} request cannot be edited.",
        )
        return redirect(analytics_request)
    form = RequestForm(
        _posted(request),
        datasets=selectors.requestable_fields(user=request.user),
        instance=analytics_request,
    )
    update = partial(services.request_update, actor=request.user, request=analytics_request)
    changed = form_submit(request, form, update)
    if changed is not NOT_SAVED:
        messages.success(
            request, "Saved; the rules checked it again." if changed else "Nothing changed."
        )
        return redirect(analytics_request)
    if form.is_bound:
        findings = _preview(form)["findings"]
    else:
        findings = _blocking_first(
            services.findings_preview(
                purpose=analytics_request.purpose,
                fields=list(analytics_request.fields.all()),
                output_level=analytics_request.output_level,
                involves_model=analytics_request.involves_model,
                automated_decision=analytics_request.automated_decision,
                human_reviewer=analytics_request.human_reviewer,
                minimisation_justification=analytics_request.minimisation_justification,
            )
        )
    return _form_page(request, form, analytics_request, findings=findings)


# --- the request page ------------------------------------------------------------------


def _label(name: str) -> str:
    if name == "fields":
        return "fields"
    return str(AnalyticsRequest._meta.get_field(name).verbose_name)


def _shown(value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return "; ".join(f"{k} = {v}" for k, v in value.items())
    return str(value)


def _readable(differences) -> list[dict]:
    return [
        {"name": _label(name), "before": _shown(before), "after": _shown(after)}
        for name, before, after in differences
    ]


def _shown_findings(analytics_request, pending_changes: bool):
    """The findings that matter now: those of the content as it would next be submitted,
    or, while the request is under review (or unchanged since), those it was submitted with.
    """
    by_round = defaultdict(list)
    for finding in analytics_request.findings.all():
        by_round[finding.round].append(finding)
    current = analytics_request.round
    if current and (not analytics_request.is_editable or not pending_changes):
        return _blocking_first(by_round.get(current, [])), current, True
    return _blocking_first(by_round.get(current + 1, [])), current + 1, False


def _detail_context(user, analytics_request, *, findings=None) -> dict:
    """Everything the request page shows, from the prefetched request plus a fixed number
    of permission queries: nothing here runs a query per row."""
    r = analytics_request
    fields = list(r.fields.all())
    datasets = list({f.dataset_id: f.dataset for f in fields}.values())
    versions = selectors.request_versions_with_differences(r)
    for entry in versions:
        entry["changes"] = _readable(entry["changes"])
    pending = []
    if r.is_editable and versions:
        pending = _readable(
            services.version_differences(versions[-1]["version"].content, services.snapshot(r))
        )
    cohort = selectors.cohort_filters(r)
    shown, findings_round, as_submitted = _shown_findings(r, bool(pending))
    if findings is not None:
        shown, findings_round, as_submitted = _blocking_first(findings), r.round + 1, False
    blocking = [f for f in shown if f.severity == RuleSeverity.BLOCK]

    is_requester = user.pk == r.requester_id
    memberships = list(r.committee.memberships.all()) if r.committee_id else []
    is_member = any(m.user_id == user.pk for m in memberships)
    decisions = list(r.decisions.all())
    superseded = {d.supersedes_id for d in decisions if d.supersedes_id}
    grants = list(r.grants.all())
    grant_of = {g.decision_id: g for g in grants}
    for decision in decisions:
        decision.page_grant = grant_of.get(decision.pk)
        decision.is_superseded = decision.pk in superseded
    votes = [v for v in r.votes.all() if v.round == r.round]
    decided = any(d.round == r.round for d in decisions)
    signoffs = list(r.signoffs.all())
    # Votes are the committee's until the round is decided; then the requester sees them.
    show_votes = is_member or (is_requester and decided)

    signoff_datasets = []
    if user_can(user, "signoff", r):
        stewarded = set(
            governance_objects_for_user(user, "change", Dataset)
            .filter(pk__in=[d.pk for d in datasets])
            .values_list("pk", flat=True)
        )
        done = {s.dataset_id for s in signoffs if s.round == r.round}
        signoff_datasets = [d for d in datasets if d.pk in stewarded and d.pk not in done]
    revocable = set()
    live = [g.pk for g in grants if g.status in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)]
    if live:
        revocable = set(
            objects_for_user(user, "revoke", Grant).filter(pk__in=live).values_list("pk", flat=True)
        )
    for grant in grants:
        grant.page_revocable = grant.pk in revocable

    return {
        "analytics_request": r,
        "fields": fields,
        "cohort": cohort,
        "cohort_field_ids": {c.field.pk for c in cohort if c.field is not None},
        "datasets": datasets,
        "findings": shown,
        "findings_round": findings_round,
        "findings_as_submitted": as_submitted,
        "blocking": blocking,
        "versions": versions,
        "pending_changes": pending,
        "signoffs": signoffs,
        "signoff_datasets": signoff_datasets,
        "votes": votes,
        "show_votes": show_votes,
        "can_vote": user_can(user, "vote", r) and not any(v.member_id == user.pk for v in votes),
        "vote_choices": VoteChoice.choices,
        "can_decide": user_can(user, "decide", r),
        "can_correct": user_can(user, "correct", r),
        "decisions": decisions,
        "grants": grants,
        "can_change": r.is_editable and user_can(user, "change", r),
        "can_submit": r.is_editable and not blocking and user_can(user, "submit", r),
        "can_withdraw": r.status in OPEN_STATUSES and user_can(user, "withdraw", r),
        "is_requester": is_requester,
        "timeline": selectors.request_timeline(request=r, votes=show_votes),
    }


@login_required
def request_detail(request, pk):
    analytics_request = selectors.request_detail(user=request.user, pk=pk)
    return render(
        request,
        "analytics/request_detail.html",
        _detail_context(request.user, analytics_request),
    )


@login_required
@require_POST
def request_submit(request, pk):
    analytics_request = selectors.request_get_for_user(user=request.user, pk=pk, action="submit")
    try:
        services.request_submit(actor=request.user, request=analytics_request)
    except services.RequestBlocked as blocked:
        # Nothing was written: show why, on the request page, with a 400.
        context = _detail_context(
            request.user,
            selectors.request_detail(user=request.user, pk=pk),
            findings=blocked.findings,
        )
        context["submit_errors"] = [
            f"Not submitted: {len(blocked.findings)} rule(s) block this request. "
            "Change what they name, save, then submit again."
        ]
        return render(request, "analytics/request_detail.html", context, status=400)
    except ValidationError as exc:
        context = _detail_context(request.user, selectors.request_detail(user=request.user, pk=pk))
        context["submit_errors"] = exc.messages
        return render(request, "analytics/request_detail.html", context, status=400)
    messages.success(
        request, "Submitted. The stewards of its datasets are asked to sign off first."
    )
    return redirect(analytics_request)


@login_required
@require_http_methods(["GET", "POST"])
def request_withdraw(request, pk):
    """GET asks for confirmation; POST with the box ticked withdraws."""
    analytics_request = selectors.request_get_for_user(user=request.user, pk=pk, action="withdraw")
    form = WithdrawForm(_posted(request))
    withdraw = partial(services.request_withdraw, actor=request.user, request=analytics_request)
    done = form_submit(request, form, lambda confirm: withdraw())
    if done is not NOT_SAVED:
        messages.success(request, f"Request “{analytics_request.title}” withdrawn.")
        return redirect(analytics_request)
    return render(
        request,
        "analytics/request_withdraw.html",
        {
            "analytics_request": analytics_request,
            "form": form,
            "can_withdraw": analytics_request.status in OPEN_STATUSES,
        },
    )
