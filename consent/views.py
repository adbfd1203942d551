"""The person's own pages ("me"), and the stewards' and committees' queues.

Every "me" page finds the person from the login (``selectors.person_of``), never from
an id in the address: an object that is not the person's answers 404, the same as a
missing one. A login linked to no person sees the overview pages with an explanation;
its object URLs answer 404. Thin views: selectors read, one service call writes, a
service's ValidationError becomes a message or a form error and nothing is written.
"""

from __future__ import annotations

import json
from functools import partial
from html import escape

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.models import Role
from governance.permissions import has_role
from governance.views import NOT_SAVED, form_submit

from . import selectors, services, uses
from .forms import CorrectionDecisionForm, CorrectionForm, ObjectionAnswerForm, ObjectionForm
from .models import ExportStatus, RequestStatus

UNLINKED = "Your login is not linked to a person record; ask the data protection officer."
USES_PER_PAGE = 50
# The uses offered in the objection form: the latest reads, one choice per request.
OBJECTABLE_USES = 200
EXPORTS_SHOWN = 20

OUTPUT_LEVELS = {
    "pseudonymised": "Pseudonymised: your name and ids were replaced",
    "aggregate": "Aggregate: only counts of groups of at least k people",
    "identified": "Identified: your records were read with your name and ids",
}


def _person_or_404(request):
    person = selectors.person_of(request.user)
    if person is None:
        raise Http404(UNLINKED)
    return person


def _unlinked(request, template: str, **context):
    return render(request, template, {"unlinked": UNLINKED, **context})


# --- My data --------------------------------------------------------------------------


def _shown(value) -> str:
    if value is None:
        return "—"
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _correct_url_prefix() -> str:
    """The correction address up to the record id, resolved once per page, not per value."""
    url = reverse("correction-create", kwargs={"record": 0, "field": "f"})
    return url[: -len("0/f/")]


def _tables(held: list, prefix: str) -> list[dict]:
    """The two tables of each dataset on My data, as HTML built here in one pass.

    A person may have hundreds of values on the page, each with its "Correct" link, and
    the template engine costs microseconds per variable: rendered by template loops, My
    data took many times longer than a plain page (the bar is 5x). Every value is
    escaped here; field names are slugs, safe in a path."""
    tables = []
    for dataset in held:
        labels = [(f.name, escape(f.label)) for f in dataset.fields]
        fields = "".join(
            f'<tr><th scope="row">{label}</th><td>{escape(f.description or "—")}</td>'
            f'<td><span class="badge sens-{escape(f.sensitivity)}">{escape(f.sensitivity_label)}'
            "</span></td></tr>\n"
            for f, (_name, label) in zip(dataset.fields, labels, strict=True)
        )
        head = "".join(f'<th scope="col">{label}</th>' for _name, label in labels)
        rows = []
        for number, (record_id, values) in enumerate(dataset.records, start=1):
            base = f"{prefix}{record_id}/"
            cells = "".join(
                f'<td><span class="value">{escape(_shown(values.get(name)))}</span> '
                f'<a class="correct" href="{base}{name}/">Correct'
                f'<span class="visually-hidden"> {label}</span></a></td>'
                for name, label in labels
            )
            rows.append(f'<tr><th scope="row">{number}</th>{cells}</tr>\n')
        tables.append(
            {
                "dataset": dataset,
                # Safe: every value above is escaped.
                "fields": mark_safe(fields),  # noqa: S308
                "head": mark_safe(head),  # noqa: S308
                "body": mark_safe("".join(rows)),  # noqa: S308
            }
        )
    return tables


@login_required
@require_GET
def my_data(request):
    person = selectors.person_of(request.user)
    if person is None:
        return _unlinked(request, "consent/my_data.html")
    tables = _tables(selectors.data_held_about(person=person), _correct_url_prefix())
    return render(request, "consent/my_data.html", {"person": person, "tables": tables})


@login_required
@require_GET
def my_dataset(request, slug):
    person = _person_or_404(request)
    held = selectors.data_held_about(person=person, slug=slug, per_dataset=None)
    if not held:
        raise Http404("No such dataset holds data about you.")
    context = {"person": person, "dataset": held[0], "tables": _tables(held, _correct_url_prefix())}
    return render(request, "consent/my_dataset.html", context)


# --- Who used my data -----------------------------------------------------------------


@login_required
@require_GET
def my_uses(request):
    person = selectors.person_of(request.user)
    if person is None:
        return _unlinked(request, "consent/my_uses.html")
    before = None
    raw = request.GET.get("before")
    if raw:
        before = uses.Cursor.decode(raw)
        if before is None:
            messages.warning(request, "That page link was not valid; here are the latest uses.")
    found = uses.uses_for_person(person_id=person.pk, before=before, limit=USES_PER_PAGE + 1)
    page = found[:USES_PER_PAGE]
    next_cursor = None
    if len(found) > USES_PER_PAGE:
        next_cursor = uses.Cursor(page[-1].event_id).encode()
    rows = [(use, OUTPUT_LEVELS.get(use.output_level, use.output_label)) for use in page]
    return render(
        request,
        "consent/my_uses.html",
        {
            "person": person,
            "rows": rows,
            "next_cursor": next_cursor,
            "paged": before is not None,
        },
    )


# --- Consents and receipts ------------------------------------------------------------


@login_required
@require_GET
def my_consents(request):
    person = selectors.person_of(request.user)
    if person is None:
        return _unlinked(request, "consent/my_consents.html")
    return render(
        request,
        "consent/my_consents.html",
        {
            "person": person,
            "rows": selectors.consents_for(person=person),
            "receipts": list(selectors.receipts_for(person=person)),
        },
    )


def _error(request, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@login_required
@require_POST
def consent_give(request, slug):
    person = _person_or_404(request)
    row = selectors.consent_row_of(person=person, slug=slug)
    try:
        receipt = services.consent_give(actor=request.user, person=person, purpose=row.purpose)
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(
            request,
            f"You gave consent for “{row.purpose.name}” (text version {receipt.text_version}). "
            "Your receipt is listed below.",
        )
    return redirect("my-consents")


@login_required
@require_http_methods(["GET", "POST"])
def consent_withdraw(request, slug):
    person = _person_or_404(request)
    row = selectors.consent_row_of(person=person, slug=slug)
    if request.method == "GET":
        return render(request, "consent/consent_withdraw.html", {"row": row})
    try:
        services.consent_withdraw(actor=request.user, person=person, purpose=row.purpose)
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(
            request,
            f"You withdrew consent for “{row.purpose.name}”. From the next use, your data is "
            "left out. Your receipt is listed below.",
        )
    return redirect("my-consents")


@login_required
@require_GET
def receipt_download(request, pk):
    person = _person_or_404(request)
    receipt = selectors.receipt_of(person=person, pk=pk)
    body = {**receipt.content, "content_sha256": receipt.content_hash}
    response = HttpResponse(
        json.dumps(body, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{receipt.pk}.json"'
    return response


# --- Corrections ----------------------------------------------------------------------


@login_required
@require_GET
def my_corrections(request):
    person = selectors.person_of(request.user)
    if person is None:
        return _unlinked(request, "consent/my_corrections.html")
    corrections = list(selectors.corrections_for(person=person))
    return render(
        request, "consent/my_corrections.html", {"person": person, "corrections": corrections}
    )


@login_required
@require_http_methods(["GET", "POST"])
def correction_create(request, record, field):
    person = _person_or_404(request)
    held, field = selectors.record_field_of(person=person, record_id=record, field_name=field)
    form = CorrectionForm(request.POST if request.method == "POST" else None, field=field)
    write = partial(
        services.correction_propose, actor=request.user, person=person, record=held, field=field
    )
    correction = form_submit(request, form, write)
    if correction is not NOT_SAVED:
        messages.success(
            request,
            f"Your correction of “{field.display_label}” was sent to the stewards of "
            f"{held.dataset.name}. You will be told their answer.",
        )
        return redirect("my-corrections")
    context = {
        "form": form,
        "record": held,
        "field": field,
        "value": _shown(held.values.get(field.name)),
    }
    return render(request, "consent/correction_form.html", context)


# --- Objections and feedback ----------------------------------------------------------


def _objectable_uses(person, *, wanted: str | None) -> list:
    """The latest uses of the person's data, plus the one asked for (``?request=`` or the
    posted choice) if it read their data longer ago: a bounded list, however long the log."""
    found = uses.uses_for_person(person_id=person.pk, limit=OBJECTABLE_USES)
    if wanted and wanted.isdigit() and all(u.request_id != int(wanted) for u in found):
        use = uses.use_of_request(person_id=person.pk, request_id=int(wanted))
        if use is not None:
            found.append(use)
    return found


@login_required
@require_GET
def my_objections(request):
    person = selectors.person_of(request.user)
    if person is None:
        return _unlinked(request, "consent/my_objections.html")
    form = ObjectionForm(uses=_objectable_uses(person, wanted=None))
    objections = list(selectors.objections_for(person=person))
    return render(
        request,
        "consent/my_objections.html",
        {"person": person, "objections": objections, "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def objection_create(request):
    person = _person_or_404(request)
    if request.method == "POST":
        found = _objectable_uses(person, wanted=request.POST.get("request_id"))
        form = ObjectionForm(request.POST, uses=found)
    else:
        wanted = request.GET.get("request")
        found = _objectable_uses(person, wanted=wanted)
        initial = {"request_id": wanted} if wanted else {}
        form = ObjectionForm(uses=found, initial=initial)
    objection = form_submit(
        request, form, partial(services.objection_file, actor=request.user, person=person)
    )
    if objection is not NOT_SAVED:
        messages.success(
            request,
            f"Your {objection.kind} was sent to {objection.committee.name}. "
            "You will be told their answer.",
        )
        return redirect("my-objections")
    return render(request, "consent/objection_form.html", {"form": form})


# --- Subject access export ------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def my_export(request):
    if request.method == "POST":
        person = _person_or_404(request)
        _export, created = services.export_request(actor=request.user, person=person)
        if created:
            messages.success(
                request, "Your export is being prepared; this page shows when it is ready."
            )
        else:
            messages.info(request, "Your export is already being prepared.")
        return redirect("my-export")
    person = selectors.person_of(request.user)
    if person is None:
        return _unlinked(request, "consent/my_export.html")
    exports = list(selectors.exports_for(person=person)[:EXPORTS_SHOWN])
    pending = any(e.status in (ExportStatus.QUEUED, ExportStatus.RUNNING) for e in exports)
    context = {
        "person": person,
        "exports": exports,
        "pending": pending,
        "keep_days": settings.CUSTOS_EXPORT_KEEP_DAYS,
    }
    if request.headers.get("HX-Request"):
        return render(request, "consent/_exports.html", context)
    return render(request, "consent/my_export.html", context)


EXPORT_FORMATS = {
    "json": ("json_file", "application/json"),
    "html": ("html_file", "text/html; charset=utf-8"),
}


@login_required
@require_GET
def export_download(request, pk, fmt):
    person = _person_or_404(request)
    export = selectors.export_of(person=person, pk=pk)
    if fmt not in EXPORT_FORMATS or export.status != ExportStatus.READY:
        raise Http404("No such export.")
    attribute, content_type = EXPORT_FORMATS[fmt]
    file = getattr(export, attribute)
    if not file:
        raise Http404("No such export.")
    stamp = export.created_at.strftime("%Y%m%d")
    return FileResponse(
        file.open("rb"),
        as_attachment=True,
        filename=f"subject-access-{person.external_id}-{stamp}.{fmt}",
        content_type=content_type,
    )


# --- the stewards' and committees' queues ---------------------------------------------


@login_required
@require_GET
def correction_queue(request):
    if not has_role(request.user, Role.STEWARD):
        raise PermissionDenied
    page = Paginator(selectors.correction_queue(user=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "consent/correction_queue.html", {"page": page})


def _decide(*, actor, correction, decision: str, reason: str):
    if decision == "accept":
        return services.correction_accept(actor=actor, correction=correction, reason=reason)
    return services.correction_decline(actor=actor, correction=correction, reason=reason)


@login_required
@require_http_methods(["GET", "POST"])
def correction_decide(request, pk):
    correction = selectors.correction_for_steward(user=request.user, pk=pk)
    form = CorrectionDecisionForm(request.POST if request.method == "POST" else None)
    decided = form_submit(
        request, form, partial(_decide, actor=request.user, correction=correction)
    )
    if decided is not NOT_SAVED:
        messages.success(
            request,
            f"Correction {decided.get_status_display().lower()}; the person is told.",
        )
        return redirect("correction-queue")
    return render(
        request,
        "consent/correction_decide.html",
        {
            "correction": correction,
            "held": _shown(correction.current_value),
            "form": form,
            "is_open": correction.status == RequestStatus.OPEN,
        },
    )


def _require_committee_member(user) -> None:
    if not (has_role(user, Role.COMMITTEE) or user.memberships.exists()):
        raise PermissionDenied


@login_required
@require_GET
def objection_queue(request):
    _require_committee_member(request.user)
    page = Paginator(selectors.objection_queue(user=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "consent/objection_queue.html", {"page": page})


@login_required
@require_http_methods(["GET", "POST"])
def objection_answer(request, pk):
    objection = selectors.objection_for_member(user=request.user, pk=pk)
    form = ObjectionAnswerForm(request.POST if request.method == "POST" else None)
    answered = form_submit(
        request, form, partial(services.objection_answer, actor=request.user, objection=objection)
    )
    if answered is not NOT_SAVED:
        messages.success(request, "Your answer was sent; the person is told.")
        return redirect("objection-queue")
    return render(
        request,
        "consent/objection_answer.html",
        {"objection": objection, "form": form, "is_open": objection.status == RequestStatus.OPEN},
    )
