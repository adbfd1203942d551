"""Analytics requests, their review by stewards and a committee, decisions and grants."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from governance import limits
from governance.audit.chain import Chained
from governance.jobs import Job
from governance.limits import BoundedTextField
from governance.models import Committee, Dataset, Field, Purpose, Rule, RuleSeverity


class OutputLevel(models.TextChoices):
    AGGREGATE = "aggregate", "Aggregate"
    PSEUDONYMISED = "pseudonymised", "Pseudonymised"
    IDENTIFIED = "identified", "Identified"


class RequestStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted (stewards)"
    IN_REVIEW = "in_review", "In review (committee)"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


EDITABLE_STATUSES = (RequestStatus.DRAFT, RequestStatus.CHANGES_REQUESTED)
OPEN_STATUSES = (
    RequestStatus.DRAFT,
    RequestStatus.SUBMITTED,
    RequestStatus.IN_REVIEW,
    RequestStatus.CHANGES_REQUESTED,
)
# The statuses a recorded decision leaves a request in: only from these, and only in the
# decision's own round, may the chair correct it (analytics.services.decision_refusals).
DECIDED_STATUSES = (
    RequestStatus.APPROVED,
    RequestStatus.CHANGES_REQUESTED,
    RequestStatus.REJECTED,
)


class AnalyticsRequest(models.Model):
    """An analyst's request to use named fields, for one purpose, for a while."""

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="analytics_requests"
    )
    title = models.CharField(max_length=200)
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="requests")
    justification = BoundedTextField(max_length=limits.TEXT)
    expected_benefit = BoundedTextField(
        max_length=limits.TEXT, help_text="The benefit to learners."
    )
    fields = models.ManyToManyField(Field, related_name="requests", blank=True)
    cohort = models.JSONField(
        null=True,
        blank=True,
        help_text='Which people: null for all, or {"dataset.field": value, ...}.',
    )
    output_level = models.CharField(max_length=16, choices=OutputLevel.choices)
    involves_model = models.BooleanField(default=False)
    automated_decision = models.BooleanField(
        default=False, help_text="Results decide something about individuals."
    )
    human_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviewed_requests",
        help_text="The person who reviews each decision about an individual.",
    )
    minimisation_justification = BoundedTextField(max_length=limits.TEXT, blank=True)
    retention_days = models.PositiveIntegerField(default=365, validators=[MinValueValidator(1)])
    starts_on = models.DateField()
    ends_on = models.DateField()
    status = models.CharField(
        max_length=20, choices=RequestStatus.choices, default=RequestStatus.DRAFT
    )
    round = models.PositiveIntegerField(default=0, help_text="The current review round.")
    committee = models.ForeignKey(
        Committee, null=True, blank=True, on_delete=models.PROTECT, related_name="requests"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords(m2m_fields=["fields"])

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="request_ends_after_start",
                violation_error_message="The end date must not be before the start date.",
            )
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("request-detail", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_STATUSES


class RequestVersion(models.Model):
    """What was submitted in a review round, frozen, to compare rounds."""

    request = models.ForeignKey(AnalyticsRequest, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ["request", "number"]
        constraints = [
            models.UniqueConstraint(fields=["request", "number"], name="version_unique_number")
        ]

    def __str__(self):
        return f"{self.request} v{self.number}"


class Finding(models.Model):
    """One rule's verdict on a request as it stood in a round (0 while drafting)."""

    request = models.ForeignKey(AnalyticsRequest, on_delete=models.CASCADE, related_name="findings")
    round = models.PositiveIntegerField()
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="findings")
    severity = models.CharField(max_length=8, choices=RuleSeverity.choices)
    message = BoundedTextField(max_length=limits.TEXT)
    fix = BoundedTextField(max_length=limits.TEXT, blank=True)
    field_names = models.JSONField(default=list, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["request", "round", "severity", "rule__slug"]

    def __str__(self):
        return f"{self.get_severity_display()}: {self.message}"


class StewardSignoff(models.Model):
    """A steward's sign-off (or decline) of a request touching their dataset, per round."""

    request = models.ForeignKey(AnalyticsRequest, on_delete=models.CASCADE, related_name="signoffs")
    round = models.PositiveIntegerField()
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="signoffs")
    steward = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signoffs"
    )
    approve = models.BooleanField()
    note = BoundedTextField(max_length=limits.NOTE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ["request", "round", "dataset"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "round", "dataset"],
                name="signoff_once_per_dataset_per_round",
                violation_error_message="This dataset has already been signed off in this round.",
            )
        ]

    def __str__(self):
        return f"{'approved' if self.approve else 'declined'} {self.dataset} ({self.steward})"


class VoteChoice(models.TextChoices):
    APPROVE = "approve", "Approve"
    APPROVE_WITH_CONDITIONS = "approve_with_conditions", "Approve with conditions"
    REQUEST_CHANGES = "request_changes", "Request changes"
    REJECT = "reject", "Reject"
    CONFLICT = "conflict", "Declare a conflict of interest (recuse)"


class Vote(Chained):
    """One member's vote in one review round. A declared conflict recuses the member.
    Hash-chained (tamper-evident): written once, never changed."""

    chain_name = "vote"

    request = models.ForeignKey(AnalyticsRequest, on_delete=models.CASCADE, related_name="votes")
    round = models.PositiveIntegerField()
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes"
    )
    choice = models.CharField(max_length=32, choices=VoteChoice.choices)
    rationale = BoundedTextField(max_length=limits.NOTE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ["request", "round", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "round", "member"],
                name="vote_once_per_member_per_round",
                violation_error_message="You have already voted in this round.",
            )
        ]

    def __str__(self):
        return f"{self.member}: {self.get_choice_display()}"


class Outcome(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"


class Decision(Chained):
    """The recorded outcome of a round. Never edited: a correction supersedes it.
    Hash-chained (tamper-evident)."""

    chain_name = "decision"

    request = models.ForeignKey(
        AnalyticsRequest, on_delete=models.PROTECT, related_name="decisions"
    )
    round = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    rationale = BoundedTextField(max_length=limits.TEXT)
    aggregate_only = models.BooleanField(default=False)
    min_cohort = models.PositiveIntegerField(default=10, validators=[MinValueValidator(2)])
    expires_on = models.DateField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions"
    )
    decided_at = models.DateTimeField(default=timezone.now, editable=False)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    epsilon = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0)],
        help_text="The privacy budget (ε) an approval gives the request's aggregates.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["request", "decided_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(epsilon__isnull=True) | models.Q(epsilon__gte=0),
                name="decision_epsilon_not_negative",
            )
        ]

    def __str__(self):
        return f"{self.get_outcome_display()} ({self.request})"

    def chain_content(self) -> dict:
        # The budget came after the chain began: decisions recorded before it are hashed
        # as they were, without it.
        content = super().chain_content()
        if content.get("epsilon") is None:
            content.pop("epsilon", None)
        return content


class Obligation(models.Model):
    """Something the decision requires someone to do by a date."""

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="obligations")
    text = BoundedTextField(max_length=limits.NOTE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="obligations"
    )
    due_on = models.DateField()
    done_at = models.DateTimeField(null=True, blank=True)
    overdue_since = models.DateField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["due_on", "id"]

    def __str__(self):
        return self.text


def _new_pseudonym_key() -> bytes:
    return secrets.token_bytes(32)


class GrantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class Grant(models.Model):
    """What an approved request may read, and until when."""

    request = models.ForeignKey(AnalyticsRequest, on_delete=models.PROTECT, related_name="grants")
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="grant")
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grants"
    )
    fields = models.ManyToManyField(Field, related_name="grants")
    output_level = models.CharField(max_length=16, choices=OutputLevel.choices)
    k = models.PositiveIntegerField(default=10, validators=[MinValueValidator(2)])
    valid_from = models.DateField()
    valid_until = models.DateField()
    status = models.CharField(max_length=16, choices=GrantStatus.choices, default="active")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="revoked_grants",
    )
    revoke_reason = BoundedTextField(max_length=limits.NOTE, blank=True)
    expiry_warned_on = models.DateField(null=True, blank=True)
    epsilon = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0)],
        help_text="The privacy budget (ε) of this grant's aggregates, set by the decision.",
    )
    # The key of this grant's pseudonyms (HMAC-SHA256): stable within the grant,
    # unlinkable across grants. Never shown; excluded from history.
    pseudonym_key = models.BinaryField(max_length=32, default=_new_pseudonym_key, editable=False)

    history = HistoricalRecords(m2m_fields=["fields"], excluded_fields=["pseudonym_key"])

    class Meta:
        ordering = ["-valid_from", "-id"]

    def __str__(self):
        return f"grant {self.pk} for {self.request}"

    def get_absolute_url(self):
        return reverse("grant-detail", args=[self.pk])

    def is_usable(self, on=None) -> bool:
        """Active and within its window today: checked on every access, not by a batch."""
        today = on or timezone.localdate()
        return self.status == GrantStatus.ACTIVE and self.valid_from <= today <= self.valid_until


class AccessKind(models.TextChoices):
    PREVIEW = "preview", "Preview"
    EXTRACT = "extract", "Extract"
    DOWNLOAD = "download", "Download"
    AGGREGATE = "aggregate", "Aggregate"


class AccessEvent(Chained):
    """One read of subject-level data through a grant. Append-only: never updated or
    deleted by the application, and on PostgreSQL a trigger refuses both. Hash-chained
    (tamper-evident)."""

    chain_name = "access"

    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="access_events")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_events"
    )
    kind = models.CharField(max_length=16, choices=AccessKind.choices)
    at = models.DateTimeField(default=timezone.now, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    field_names = models.JSONField(default=list)
    output_level = models.CharField(max_length=16, choices=OutputLevel.choices)
    people = models.PositiveIntegerField(help_text="How many people the read included.")
    rows = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True, help_text="e.g. the aggregate asked")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["grant", "-at"], name="access_event_grant_at"),
            # The auditor's timeline reads the whole log newest first, by keyset.
            models.Index(fields=["-at", "-id"], name="access_event_at"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.user} via grant {self.grant_id}"


class AccessEventSubject(models.Model):
    """Who an access event included: one narrow row per (event, person), indexed by
    person first, so "which reads included person P" is one index range scan.

    Written only set-based by the access layer, from ids it has just read, hundreds of
    thousands at a time: no database-level foreign keys, whose per-row checks would
    cost more than the rows themselves (see docs/access.md)."""

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(
        AccessEvent,
        on_delete=models.PROTECT,
        related_name="subjects",
        db_index=False,
        db_constraint=False,
    )
    person = models.ForeignKey(
        "governance.Person",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        indexes = [models.Index(fields=["person", "event"], name="access_subject_person_event")]

    def __str__(self):
        return f"{self.person_id} in event {self.event_id}"


class ExtractStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Being prepared"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ExtractFile(Job):
    """A prepared extract to download: only by its owner, until it expires (24 hours).

    A job (governance/jobs.py): its task claims it; the read is logged once per file,
    however often the task runs (``access_event``, set under the row's lock)."""

    job_what = "preparing this extract"

    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="extract_files")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extract_files"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(upload_to="extracts/%Y/%m/", blank=True)
    rows = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=ExtractStatus.choices, default=ExtractStatus.QUEUED
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    access_event = models.OneToOneField(
        AccessEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="extract_file",
        help_text="The one event that logged this file's read.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"extract {self.pk} of grant {self.grant_id}"


class AggregateRelease(models.Model):
    """One aggregate released under differential privacy: the noisy answer exactly as
    released, what it cost, and the access event that recorded it. Append-only.

    Asking the same aggregate again, over the same data, returns this answer and spends
    nothing, so averaging repeated answers gains nothing. The budget is accounted per
    request and review round: a correction within the round shares it."""

    request = models.ForeignKey(
        AnalyticsRequest, on_delete=models.PROTECT, related_name="aggregate_releases"
    )
    round = models.PositiveIntegerField()
    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="aggregate_releases")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    query_key = models.CharField(
        max_length=64, help_text="SHA-256 of the query and of the state of the data it read."
    )
    query = models.JSONField(help_text="The groups and the measure asked.")
    epsilon = models.FloatField(help_text="The ε this release spent.")
    answer = models.JSONField(help_text="The released (noisy) cells.")
    event = models.OneToOneField(
        AccessEvent, on_delete=models.PROTECT, related_name="aggregate_release"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "round", "query_key"], name="release_once_per_query"
            )
        ]

    def __str__(self):
        return f"release {self.pk} of grant {self.grant_id} (ε {self.epsilon:g})"
