"""The reviewers' pages: steward sign-off, committee votes, decisions, grants, inbox, rules.

Thin views: reads through the selectors, one service call per write. A ValidationError
from a service re-renders the form with the reason (nothing written); PermissionDenied
is a 403; an object the user may not see is a 404, the same as a missing one.
"""

from __future__ import annotations

import json
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from governance import history
from governance.models import Dataset, Notification, Role, Rule
from governance.permissions import has_role
from governance.permissions import objects_for_user as governance_objects
from governance.services import registry
from governance.services.notifications import notification_mark_read
from governance.views import NOT_SAVED, form_submit

from . import disclosure, selectors, services
from .models import GrantStatus, Outcome
from .permissions import user_can
from .review_forms import (
    OBLIGATIONS_PREFIX,
    DecisionForm,
    GrantRevokeForm,
    ObligationFormSet,
    RuleForm,
    SignoffForm,
    VoteForm,
)

# --- queues ---------------------------------------------------------------------------


@login_required
def steward_queue(request):
    if not has_role(request.user, Role.STEWARD):
        raise PermissionDenied
    requests = selectors.queue_rows(selectors.steward_queue(user=request.user), user=request.user)
    return render(request, "analytics/steward_queue.html", {"requests": requests})


@login_required
def committee_queue(request):
    if not (has_role(request.user, Role.COMMITTEE) or request.user.memberships.exists()):
        raise PermissionDenied
    requests = selectors.queue_rows(selectors.committee_queue(user=request.user), user=request.user)
    return render(request, "analytics/committee_queue.html", {"requests": requests})


# --- sign-off, vote, decision ---------------------------------------------------------


def _review_context(user, pk: int) -> dict:
    """The request as its reviewers see it beside their form, in a fixed number of queries."""
    detail = selectors.request_detail(user=user, pk=pk)
    current = detail.round
    return {
        "analytics_request": detail,
        "cohort": selectors.cohort_filters(detail),
        "findings": [f for f in detail.findings.all() if f.round == current],
        "signoffs": [s for s in detail.signoffs.all() if s.round == current],
        "votes": [v for v in detail.votes.all() if v.round == current],
    }


@login_required
@require_http_methods(["GET", "POST"])
def request_signoff(request, pk):
    analytics_request = selectors.request_get_for_user(user=request.user, pk=pk, action="signoff")
    context = _review_context(request.user, pk)
    signed = {s.dataset_id for s in context["signoffs"]}
    datasets = [
        d for d in _stewarded_datasets_of(request.user, analytics_request) if d.pk not in signed
    ]
    form = SignoffForm(request.POST or None, datasets=datasets)
    write = partial(services.signoff_record, actor=request.user, request=analytics_request)
    signoff = form_submit(request, form, write)
    if signoff is not NOT_SAVED:
        if signoff.approve:
            messages.success(request, f"Signed off the use of {signoff.dataset.name}.")
        else:
            messages.success(
                request,
                f"Declined the use of {signoff.dataset.name}: the request is returned to the "
                "analyst.",
            )
        return redirect(analytics_request)
    context |= {"form": form, "datasets": datasets}
    return render(request, "analytics/signoff_form.html", context)


def _stewarded_datasets_of(user, analytics_request) -> list[Dataset]:
    return list(
        governance_objects(user, "change", Dataset)
        .filter(fields__requests=analytics_request)
        .distinct()
        .order_by("name")
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_vote(request, pk):
    analytics_request = selectors.request_get_for_user(user=request.user, pk=pk, action="vote")
    form = VoteForm(request.POST or None)
    write = partial(services.vote_cast, actor=request.user, request=analytics_request)
    vote = form_submit(request, form, write)
    if vote is not NOT_SAVED:
        messages.success(request, f"Your vote is recorded: {vote.get_choice_display().lower()}.")
        return redirect(analytics_request)
    context = _review_context(request.user, pk)
    context["my_vote"] = next((v for v in context["votes"] if v.member_id == request.user.pk), None)
    context["form"] = form
    return render(request, "analytics/vote_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def request_decide(request, pk):
    analytics_request = selectors.request_get_for_user(user=request.user, pk=pk, action="decide")
    return _decision_page(request, analytics_request, supersedes=None)


@login_required
@require_http_methods(["GET", "POST"])
def request_correct(request, pk):
    """The chair corrects the latest decision: the same service and rules as deciding."""
    analytics_request = selectors.request_get_for_user(user=request.user, pk=pk, action="correct")
    supersedes = selectors.decision_latest(request=analytics_request)
    return _decision_page(request, analytics_request, supersedes=supersedes)


def _decision_page(request, analytics_request, *, supersedes):
    """The decision form, or the correction form of ``supersedes`` (prefilled with its
    conditions); either way ``services.decision_record`` decides what may be recorded."""
    data = request.POST if request.method == "POST" else None
    initial = None
    if supersedes is not None:
        initial = {
            "outcome": supersedes.outcome,
            "aggregate_only": supersedes.aggregate_only,
            "min_cohort": supersedes.min_cohort,
            "expires_on": supersedes.expires_on,
            "epsilon": supersedes.epsilon,
        }
    form = DecisionForm(data, initial=initial)
    # The request page's inline form may post no obligation rows at all: that is no rows.
    with_rows = data is None or f"{OBLIGATIONS_PREFIX}-TOTAL_FORMS" in data
    obligations = ObligationFormSet(data if with_rows else None, prefix=OBLIGATIONS_PREFIX)
    if data is not None and with_rows and not obligations.is_valid():
        form.is_valid()  # show the decision's own errors beside the rows'
    else:
        write = partial(
            services.decision_record,
            actor=request.user,
            request=analytics_request,
            supersedes=supersedes,
            obligations=obligations.obligations() if data is not None and with_rows else [],
        )
        decision = form_submit(request, form, write)
        if decision is not NOT_SAVED:
            done = "Decision corrected" if supersedes is not None else "Decision recorded"
            messages.success(request, f"{done}: {decision.get_outcome_display().lower()}.")
            return redirect(analytics_request)
    context = _review_context(request.user, analytics_request.pk)
    committee = context["analytics_request"].committee
    tally = services.tally(analytics_request, votes=context["votes"])
    open_outcomes = services.outcomes_open(
        request=context["analytics_request"], supersedes=supersedes, votes=context["votes"]
    )
    context |= {
        "form": form,
        "obligations": obligations,
        "committee": committee,
        "tally": tally,
        "quorum_met": tally.counted >= committee.quorum,
        "outcomes": [(o, o.label, not open_outcomes[o], open_outcomes[o]) for o in Outcome],
        "supersedes": supersedes,
    }
    return render(request, "analytics/decision_form.html", context)


# --- grants ---------------------------------------------------------------------------


def _grant_page(request, grant, form):
    releases = disclosure.budget_over_time(grant)
    return render(
        request,
        "analytics/grant_detail.html",
        {
            "grant": grant,
            "fields": list(grant.fields.all()),
            "obligations": list(grant.decision.obligations.select_related("owner")),
            "releases": releases,
            "budget_left": releases[-1]["left"] if releases else grant.epsilon,
            "form": form,
            "can_revoke": grant.status in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
            and user_can(request.user, "revoke", grant),
        },
    )


@login_required
def grant_detail(request, pk):
    grant = selectors.grant_get_for_user(user=request.user, pk=pk)
    return _grant_page(request, grant, GrantRevokeForm())


@login_required
@require_POST
def grant_revoke(request, pk):
    grant = selectors.grant_get_for_user(user=request.user, pk=pk, action="revoke")
    form = GrantRevokeForm(request.POST)
    revoked = form_submit(
        request, form, partial(services.grant_revoke, actor=request.user, grant=grant)
    )
    if revoked is not NOT_SAVED:
        messages.success(request, "Grant revoked: the next access is refused.")
        return redirect(grant)
    return _grant_page(request, grant, form)


# --- inbox ----------------------------------------------------------------------------


@login_required
def inbox(request):
    page = Paginator(request.user.notifications.all(), 50).get_page(request.GET.get("page"))
    return render(request, "analytics/inbox.html", {"page": page})


@login_required
@require_POST
def inbox_read(request, pk):
    # Someone else's notification is a 404, the same as a missing one.
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    notification_mark_read(user=request.user, notification=notification)
    return redirect("inbox")


# --- rules ----------------------------------------------------------------------------


@login_required
def rule_list(request):
    return render(
        request,
        "analytics/rule_list.html",
        {"rules": _rules_with_json(), "can_change": has_role(request.user, Role.DPO)},
    )


def _rules_with_json() -> list[Rule]:
    rules = list(Rule.objects.order_by("slug"))
    for rule in rules:
        rule.parameters_json = json.dumps(rule.parameters, sort_keys=True, ensure_ascii=False)
    return rules


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request, slug):
    if not has_role(request.user, Role.DPO):
        raise PermissionDenied
    rule = get_object_or_404(Rule, slug=slug)
    form = RuleForm(request.POST or None, instance=rule)
    changed = form_submit(
        request, form, partial(registry.rule_update, actor=request.user, rule=rule)
    )
    if changed is not NOT_SAVED:
        messages.success(request, f"Rule “{rule.name}” saved." if changed else "Nothing changed.")
        return redirect("rule-list")
    timeline = history.timeline(Rule.history.filter(id=rule.pk), subject=lambda r: "rule")
    return render(
        request, "analytics/rule_form.html", {"form": form, "rule": rule, "timeline": timeline}
    )
