"""Consents, their receipts, and what people ask of the organisation about their data:
corrections, objections and feedback, and subject access exports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from governance import limits
from governance.audit.chain import Chained
from governance.jobs import Job
from governance.limits import BoundedTextField
from governance.models import Committee, Dataset, Field, Person, Purpose, Record


class ConsentState(models.TextChoices):
    GIVEN = "given", "Given"
    WITHDRAWN = "withdrawn", "Withdrawn"
    REFUSED = "refused", "Refused"


class Consent(models.Model):
    """A person's current answer for one purpose, with the consent text version answered.

    "Not asked" is the absence of a row. Every change issues a ConsentReceipt."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="consents")
    purpose = models.ForeignKey(Purpose, on_delete=models.CASCADE, related_name="consents")
    state = models.CharField(max_length=16, choices=ConsentState.choices)
    text_version = models.PositiveIntegerField(default=0)
    text_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the consent text answered."
    )
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["person", "purpose"]
        constraints = [
            models.UniqueConstraint(fields=["person", "purpose"], name="consent_one_per_purpose")
        ]
        indexes = [models.Index(fields=["purpose", "state"], name="consent_purpose_state")]

    def __str__(self):
        return f"{self.person} · {self.purpose}: {self.get_state_display()}"


class ConsentReceipt(Chained):
    """Proof of one consent change, as issued to the person. Never changed once written.

    The id is random so a receipt's address reveals nothing; ``content`` is the receipt
    exactly as downloaded and ``content_hash`` its SHA-256 (canonical JSON). Receipts
    form the hash-chained (tamper-evident) log of consent changes."""

    chain_name = "consent"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="receipts")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="consent_receipts")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ConsentState.choices)
    previous_state = models.CharField(max_length=16, blank=True)
    text_version = models.PositiveIntegerField()
    text_hash = models.CharField(max_length=64)
    issued_at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["person", "-issued_at"], name="receipt_person_issued")]

    def __str__(self):
        return f"receipt {self.pk}: {self.get_state_display()}"


class RequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    ANSWERED = "answered", "Answered"


class Correction(models.Model):
    """A person's proposal to change one value held about them, decided by a steward of
    the dataset. Accepting it changes the record; both values stay in this row's history."""

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="corrections")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="corrections")
    # Records carry no database constraints (bulk loads); a replaced load leaves this
    # pointing at nothing, and the correction can then only be declined.
    record = models.ForeignKey(
        Record, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    field = models.ForeignKey(Field, on_delete=models.PROTECT, related_name="corrections")
    current_value = models.JSONField(null=True, blank=True, help_text="As held when proposed.")
    proposed_value = models.CharField(max_length=1000)
    note = BoundedTextField(max_length=limits.NOTE)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.OPEN
    )
    reason = BoundedTextField(max_length=limits.NOTE, blank=True, help_text="The steward's answer.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["dataset", "status"], name="correction_dataset_status"),
            models.Index(fields=["person", "-created_at"], name="correction_person_created"),
        ]

    def __str__(self):
        return f"correction of {self.field} for {self.person}"


class ObjectionKind(models.TextChoices):
    OBJECTION = "objection", "Objection to a use of my data"
    FEEDBACK = "feedback", "Feedback on the data policy"


class Objection(models.Model):
    """An objection to one use of a person's data (an analytics request that read it),
    or feedback on the data policy, for a committee to answer."""

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="objections")
    kind = models.CharField(max_length=16, choices=ObjectionKind.choices)
    committee = models.ForeignKey(Committee, on_delete=models.PROTECT, related_name="objections")
    # The use objected to. The request lives in the analytics app, above this one, so it
    # is named by id (checked against the person's access log when filed) and title.
    request_id = models.PositiveBigIntegerField(null=True, blank=True)
    request_title = models.CharField(max_length=200, blank=True)
    message = BoundedTextField(max_length=limits.NOTE)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.OPEN
    )
    answer = BoundedTextField(max_length=limits.NOTE, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["committee", "status"], name="objection_committee_status"),
            models.Index(fields=["person", "-created_at"], name="objection_person_created"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} from {self.person}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Being prepared"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class SubjectExport(Job):
    """A subject access report (GDPR Article 15) prepared in the background: a JSON file
    and a printable HTML file, downloadable by the person only, kept for a few days.
    A job (governance/jobs.py): its task claims it before writing anything."""

    job_what = "preparing your export"

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    json_file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    html_file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error = BoundedTextField(max_length=limits.NOTE, blank=True)

    history = HistoricalRecords(excluded_fields=["heartbeat_at"])

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Asking again while one is being prepared gives that one, not a second.
            models.UniqueConstraint(
                fields=["person"],
                condition=models.Q(status__in=["queued", "running"]),
                name="export_one_pending_per_person",
            )
        ]

    def __str__(self):
        return f"export {self.pk} for {self.person}"

    def job_failed(self, reason: str) -> list[str]:
        fields = super().job_failed(reason)
        self.error = reason
        return [*fields, "error"]
