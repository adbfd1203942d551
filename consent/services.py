"""Every write a person makes about their own data, and the answers stewards and
committees give. Each function states the rule it enforces."""

from __future__ import annotations

import hashlib
import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.csvio import value_parser
from governance.history import acting_as
from governance.models import Committee, Field, LegalBasis, Person, Purpose, Record
from governance.services.notifications import notify

from . import uses
from .models import (
    Consent,
    ConsentReceipt,
    ConsentState,
    Correction,
    ExportStatus,
    Objection,
    ObjectionKind,
    RequestStatus,
    SubjectExport,
)

logger = logging.getLogger(__name__)

RECEIPT_FORMAT = "custos-consent-receipt/1"


def canonical_json(data) -> bytes:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_self(actor, person: Person) -> None:
    """Only the person decides about their consent and speaks for themselves: no staff
    role acts on someone else's behalf here."""
    if person.user_id is None or person.user_id != actor.pk:
        raise PermissionDenied("Only the person themselves can do this.")


def _person_url(name: str) -> str:
    from django.urls import reverse

    return reverse(name)


# --- consent --------------------------------------------------------------------------


def _receipt(*, consent: Consent, previous: str, actor) -> ConsentReceipt:
    purpose, person = consent.purpose, consent.person
    receipt = ConsentReceipt(
        consent=consent,
        person=person,
        purpose=purpose,
        state=consent.state,
        previous_state=previous,
        text_version=consent.text_version,
        text_hash=consent.text_hash,
        issued_at=consent.changed_at,
        actor=actor,
    )
    receipt.content = {
        "format": RECEIPT_FORMAT,
        "receipt_id": str(receipt.pk),
        "issued_at": receipt.issued_at.isoformat(),
        "organisation": {"name": settings.CUSTOS_ORGANISATION, "site": settings.CUSTOS_SITE_URL},
        "subject": {"external_id": person.external_id, "name": person.name},
        "changed_by": actor.email,
        "purpose": {
            "slug": purpose.slug,
            "name": purpose.name,
            "legal_basis": purpose.legal_basis,
            "category": purpose.category,
        },
        "consent_text": {"version": consent.text_version, "sha256": consent.text_hash},
        "state": str(consent.state),
        "previous_state": str(previous) or "not_asked",
    }
    receipt.content_hash = hashlib.sha256(canonical_json(receipt.content)).hexdigest()
    receipt.save(force_insert=True)
    return receipt


def _consent_for_update(person: Person, purpose: Purpose) -> Consent | None:
    return Consent.objects.select_for_update().filter(person=person, purpose=purpose).first()


@transaction.atomic
def consent_give(*, actor, person: Person, purpose: Purpose) -> ConsentReceipt:
    """The person consents to the purpose's current text. Rules: only for a purpose
    based on consent; only by the person; giving what is already given to this very
    text is refused (giving again after the text changed renews it)."""
    _check_self(actor, person)
    if purpose.legal_basis != LegalBasis.CONSENT:
        raise ValidationError(f"“{purpose.name}” does not rest on consent: there is none to give.")
    purpose = Purpose.objects.select_for_update().get(pk=purpose.pk)
    consent = _consent_for_update(person, purpose)
    if (
        consent is not None
        and consent.state == ConsentState.GIVEN
        and consent.text_version == purpose.consent_version
    ):
        raise ValidationError(
            f"You have already given consent for “{purpose.name}” "
            f"(text version {purpose.consent_version}). Nothing was changed."
        )
    previous = consent.state if consent is not None else ""
    with acting_as(actor):
        if consent is None:
            consent = Consent(person=person, purpose=purpose)
        consent.state = ConsentState.GIVEN
        consent.text_version = purpose.consent_version
        consent.text_hash = text_hash(purpose.consent_text)
        consent.changed_at = timezone.now()
        consent.changed_by = actor
        try:
            with transaction.atomic():
                consent.save()
        except IntegrityError:  # given at the same moment in another tab
            raise ValidationError("Your consent changed meanwhile; please try again.") from None
        return _receipt(consent=consent, previous=previous, actor=actor)


@transaction.atomic
def consent_withdraw(*, actor, person: Person, purpose: Purpose) -> ConsentReceipt:
    """The person withdraws consent. Rules: only a given consent can be withdrawn; it
    counts from the next read (the access layer asks on every read); the holders of
    active grants for the purpose are told, by a task after commit."""
    _check_self(actor, person)
    consent = _consent_for_update(person, purpose)
    if consent is None or consent.state != ConsentState.GIVEN:
        raise ValidationError(
            f"You have not given consent for “{purpose.name}”, so there is nothing to "
            "withdraw. Nothing was changed."
        )
    with acting_as(actor):
        consent.state = ConsentState.WITHDRAWN
        consent.changed_at = timezone.now()
        consent.changed_by = actor
        consent.save()
        receipt = _receipt(consent=consent, previous=ConsentState.GIVEN, actor=actor)
    from .tasks import consent_withdrawn_task

    transaction.on_commit(lambda: consent_withdrawn_task.delay(str(receipt.pk)))
    return receipt


# --- corrections ----------------------------------------------------------------------


def _parse(field: Field, raw: str):
    parse = value_parser(field.type, field.values or [])
    if parse is None:
        return raw.strip() or None
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise ValidationError({"proposed_value": str(exc)}) from None


@transaction.atomic
def correction_propose(
    *, actor, person: Person, record: Record, field: Field, proposed_value: str, note: str
) -> Correction:
    """The person proposes a new value for one field of one of their records. Rules: the
    record is theirs and the field its dataset's; the value has the field's type; the
    proposal differs from what is held; the dataset's stewards are told."""
    _check_self(actor, person)
    if record.person_id != person.pk or field.dataset_id != record.dataset_id:
        raise PermissionDenied("That value is not held about you.")
    current = record.values.get(field.name)
    proposed = _parse(field, proposed_value)
    if proposed == current:
        raise ValidationError({"proposed_value": "That is the value already held."})
    if not note.strip():
        raise ValidationError({"note": "Say why the value is wrong."})
    with acting_as(actor):
        correction = Correction.objects.create(
            person=person,
            dataset=field.dataset,
            record=record,
            field=field,
            current_value=current,
            proposed_value=proposed_value.strip(),
            note=note.strip(),
        )
    notify(
        users=field.dataset.stewards.all(),
        key=f"correction-proposed:{correction.pk}",
        subject=f"Correction proposed for {field.dataset.name}",
        body=f"A person asks to correct “{field.display_label}”.",
        url=_person_url("correction-queue"),
    )
    return correction


def _check_steward(actor, correction: Correction) -> None:
    if not correction.dataset.stewards.filter(pk=actor.pk, is_active=True).exists():
        raise PermissionDenied("Only a steward of the dataset decides its corrections.")
    if correction.person.user_id == actor.pk:
        raise PermissionDenied("You cannot decide a correction to your own data.")


def _locked_open(correction: Correction) -> Correction:
    correction = (
        Correction.objects.select_for_update()
        .select_related("person", "dataset", "field")
        .get(pk=correction.pk)
    )
    if correction.status != RequestStatus.OPEN:
        raise ValidationError(
            f"This correction was already {correction.get_status_display().lower()}."
        )
    return correction


def _tell_person(correction_or_objection, *, key: str, subject: str, body: str, url: str):
    user = correction_or_objection.person.user
    if user is not None:
        notify(users=[user], key=key, subject=subject, body=body, url=url)


@transaction.atomic
def correction_accept(*, actor, correction: Correction, reason: str = "") -> Correction:
    """A steward accepts: the record takes the proposed value (the correction's history
    keeps old and new). Rules: a steward of the dataset, not the person; still open; the
    record still exists and still holds the value the person saw."""
    _check_steward(actor, correction)
    correction = _locked_open(correction)
    record = Record.objects.select_for_update().filter(pk=correction.record_id).first()
    if record is None:
        raise ValidationError(
            "The record was replaced by a later load; decline this correction and ask the "
            "person to check the new data."
        )
    if record.values.get(correction.field.name) != correction.current_value:
        raise ValidationError("The value changed since the person proposed this; decline it.")
    record.values[correction.field.name] = _parse(correction.field, correction.proposed_value)
    record.save(update_fields=["values"])
    return _decided(correction, actor=actor, status=RequestStatus.ACCEPTED, reason=reason)


@transaction.atomic
def correction_decline(*, actor, correction: Correction, reason: str) -> Correction:
    """A steward declines, saying why. Rules as for accepting; a reason is required."""
    _check_steward(actor, correction)
    if not reason.strip():
        raise ValidationError({"reason": "Tell the person why the correction is declined."})
    correction = _locked_open(correction)
    return _decided(correction, actor=actor, status=RequestStatus.DECLINED, reason=reason)


def _decided(correction: Correction, *, actor, status: str, reason: str) -> Correction:
    """Record the steward's answer (in history, as the steward) and tell the person."""
    with acting_as(actor):
        correction.status = status
        correction.reason = reason.strip()
        correction.decided_at = timezone.now()
        correction.decided_by = actor
        correction.save()
    _tell_person(
        correction,
        key=f"correction-decided:{correction.pk}",
        subject=(
            f"Your correction to {correction.dataset.name} was "
            f"{correction.get_status_display().lower()}"
        ),
        body=correction.reason,
        url=_person_url("my-corrections"),
    )
    return correction


# --- objections and feedback ----------------------------------------------------------


@transaction.atomic
def objection_file(
    *, actor, person: Person, kind: str, message: str, request_id: int | None = None
) -> Objection:
    """The person objects to one use of their data, or sends feedback on the policy.
    Rules: an objection names a use that read the person's data (else it is refused as
    not found); it goes to that request's committee, feedback to the default one."""
    _check_self(actor, person)
    if not message.strip():
        raise ValidationError({"message": "Write what you want the committee to know."})
    title, committee = "", None
    if kind == ObjectionKind.OBJECTION:
        use = uses.use_of_request(person_id=person.pk, request_id=request_id or 0)
        if use is None:
            raise ValidationError({"request_id": "Choose a use of your data to object to."})
        title = use.request_title
        committee = Committee.objects.filter(pk=use.committee_id).first()
    elif kind != ObjectionKind.FEEDBACK:
        raise ValidationError({"kind": "Choose an objection or feedback."})
    committee = committee or Committee.objects.filter(is_default=True).first()
    if committee is None:
        raise ValidationError("No committee is set up to receive this yet; tell the DPO.")
    with acting_as(actor):
        objection = Objection.objects.create(
            person=person,
            kind=kind,
            committee=committee,
            request_id=request_id if kind == ObjectionKind.OBJECTION else None,
            request_title=title,
            message=message.strip(),
        )
    notify(
        users=[m.user for m in committee.memberships.select_related("user")],
        key=f"objection-filed:{objection.pk}",
        subject=f"{objection.get_kind_display()}: {title or 'the data policy'}",
        url=_person_url("objection-queue"),
    )
    return objection


@transaction.atomic
def objection_answer(*, actor, objection: Objection, answer: str) -> Objection:
    """A member of the committee answers. Rules: a member of that committee, not the
    person; still open; an answer is required; the person is told."""
    if not objection.committee.memberships.filter(user=actor).exists():
        raise PermissionDenied("Only a member of the committee answers this.")
    if objection.person.user_id == actor.pk:
        raise PermissionDenied("You cannot answer your own objection.")
    if not answer.strip():
        raise ValidationError({"answer": "Write the committee's answer."})
    objection = Objection.objects.select_for_update().select_related("person").get(pk=objection.pk)
    if objection.status != RequestStatus.OPEN:
        raise ValidationError("This has already been answered.")
    with acting_as(actor):
        objection.status = RequestStatus.ANSWERED
        objection.answer = answer.strip()
        objection.answered_at = timezone.now()
        objection.answered_by = actor
        objection.save()
    _tell_person(
        objection,
        key=f"objection-answered:{objection.pk}",
        subject="The committee answered you",
        body=answer.strip(),
        url=_person_url("my-objections"),
    )
    return objection


# --- subject access export ------------------------------------------------------------


def export_request(*, actor, person: Person) -> tuple[SubjectExport, bool]:
    """Prepare the person's subject access report in the background. Rule: one at a
    time: asking while one is queued or running returns that one (created False)."""
    _check_self(actor, person)
    pending = [ExportStatus.QUEUED, ExportStatus.RUNNING]
    existing = SubjectExport.objects.filter(person=person, status__in=pending).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic(), acting_as(actor):
            export = SubjectExport.objects.create(person=person, requested_by=actor)
            from .tasks import subject_export_task

            transaction.on_commit(lambda: subject_export_task.delay(export.pk))
    except IntegrityError:  # asked twice at the same moment: the partial unique index
        return SubjectExport.objects.get(person=person, status__in=pending), False
    export.refresh_from_db()
    return export, True


def export_prepare(*, export: SubjectExport) -> SubjectExport:
    """Write a claimed export's report files and tell the person (governance/jobs.py).

    Rules: half a report is no report (a failure removes whatever file was written);
    the result is saved only while the claim is still this worker's, and the person is
    told once per export (the notification is keyed by it)."""
    from django.core.files.base import ContentFile
    from django.urls import reverse

    from governance import jobs
    from governance.management.base import system_user

    from .report import render_html, report_json, subject_access_report

    try:
        report = subject_access_report(person=export.person)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        export.json_file.save(
            f"subject-access-{stamp}.json", ContentFile(report_json(report)), save=False
        )
        export.html_file.save(
            f"subject-access-{stamp}.html", ContentFile(render_html(report).encode()), save=False
        )
        export.status = ExportStatus.READY
    except Exception:
        logger.exception("subject access export %s failed", export.pk)
        export.json_file.delete(save=False)
        export.html_file.delete(save=False)
        export.status = ExportStatus.FAILED
        export.error = "The export could not be prepared; ask again, or tell the DPO."
    export.finished_at = timezone.now()
    try:
        with transaction.atomic(), acting_as(system_user()):
            jobs.job_hold(export)
            export.save(update_fields=["json_file", "html_file", "status", "error", "finished_at"])
            if export.person.user is not None:
                ready = export.status == ExportStatus.READY
                notify(
                    users=[export.person.user],
                    key=f"export-finished:{export.pk}",
                    subject="Your data export is ready" if ready else "Your data export failed",
                    body=export.error,
                    url=reverse("my-export"),
                )
    except jobs.ClaimLost:
        # Another worker owns the export now; the files this one wrote are not its.
        export.json_file.delete(save=False)
        export.html_file.delete(save=False)
    return export
