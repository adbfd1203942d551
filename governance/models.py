"""Governance layer: accounts, people, the data registry and policies."""

from __future__ import annotations

import calendar
import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from simple_history.models import HistoricalRecords

from . import limits
from .audit.chain import Chained
from .jobs import Job
from .limits import BoundedTextField, validate_category_values


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` later, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Sensitivity(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    PERSONAL = "personal", "Personal"
    SPECIAL = "special", "Special category"


SENSITIVITY_RANK = {
    Sensitivity.PUBLIC: 0,
    Sensitivity.INTERNAL: 1,
    Sensitivity.PERSONAL: 2,
    Sensitivity.SPECIAL: 3,
}


class Clearance(models.TextChoices):
    INTERNAL = "internal", "Internal"
    PERSONAL = "personal", "Personal"
    SPECIAL = "special", "Special category"


class Role(models.TextChoices):
    """Roles are Django groups with these names."""

    STEWARD = "Data steward"
    ANALYST = "Analyst"
    COMMITTEE = "Committee member"
    DPO = "Data protection officer"
    AUDITOR = "Auditor"
    ADMINISTRATOR = "Administrator"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        extra_fields.setdefault("clearance", Clearance.SPECIAL)
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A login. E-mail is the username; clearance caps the field sensitivity it may see."""

    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    clearance = models.CharField(
        max_length=16, choices=Clearance.choices, default=Clearance.INTERNAL
    )
    is_staff = models.BooleanField(default=False, help_text="Can sign in to the Django admin site.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Part of every session's check (get_session_auth_hash): setting it ends them all.
    signed_out_everywhere_at = models.DateTimeField(
        "signed out everywhere at", null=True, blank=True, editable=False
    )

    history = HistoricalRecords(excluded_fields=["password", "last_login"], m2m_fields=["groups"])

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.full_name or self.email

    def get_full_name(self):
        return self.full_name or self.email

    def _get_session_auth_hash(self, secret=None):
        """Django checks every session against this on every request: it changes with
        the password, as Django's does, and with "sign out everywhere"."""
        if self.signed_out_everywhere_at is None:
            return super()._get_session_auth_hash(secret=secret)
        return salted_hmac(
            "governance.User.get_session_auth_hash",
            f"{self.password}|{self.signed_out_everywhere_at.isoformat()}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def clearance_rank(self) -> int:
        return SENSITIVITY_RANK[Sensitivity(self.clearance)]

    def may_see(self, sensitivity: str) -> bool:
        """Clearance caps the sensitivity of any field value this user may ever see."""
        return SENSITIVITY_RANK[Sensitivity(sensitivity)] <= self.clearance_rank


class ApiTokenScope(models.TextChoices):
    READ = "read", "Read only"
    READ_WRITE = "read-write", "Read and write"


API_TOKEN_DEFAULT_DAYS = 90
API_TOKEN_MAX_DAYS = 365


def api_token_default_expiry() -> datetime.datetime:
    """90 days from now: a new token's expiry, and an old token's when scopes came in."""
    return timezone.now() + datetime.timedelta(days=API_TOKEN_DEFAULT_DAYS)


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the secret is shown once.

    A ``read`` token may only read (governance.api_auth.TokenScope); every token
    expires, at most a year after it was made.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(
        max_length=10, choices=ApiTokenScope.choices, default=ApiTokenScope.READ_WRITE
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(default=api_token_default_expiry)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope__in=ApiTokenScope.values),
                name="apitoken_scope_valid",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.expires_at is None or self.created_at is None:
            return
        lifetime = self.expires_at - self.created_at
        # Only a new token is held to a year: the tokens made before expiry existed were
        # given 90 days from the migration, and must stay editable (revocable).
        longest = datetime.timedelta(days=API_TOKEN_MAX_DAYS)
        if lifetime <= datetime.timedelta(0) or (self._state.adding and lifetime > longest):
            raise ValidationError(
                {
                    "expires_at": "A token expires after it is made and at most "
                    f"{API_TOKEN_MAX_DAYS} days later."
                }
            )

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def may_write(self) -> bool:
        return self.scope == ApiTokenScope.READ_WRITE


class Person(models.Model):
    """A data subject (employee or learner), keyed by HR or student number."""

    external_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    org_unit = models.CharField(max_length=200, blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="person",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # Imports create people by the hundred thousand: the history table keeps only the
    # indexes history is read by, and no per-row constraint check on the acting user.
    history = HistoricalRecords(
        no_db_index=["external_id", "email", "user"], user_db_constraint=False
    )

    class Meta:
        ordering = ["external_id"]
        verbose_name_plural = "people"
        constraints = [
            # A constraint rather than unique=True: the same unique index, without the
            # extra pattern-matching index PostgreSQL would get for a unique CharField.
            models.UniqueConstraint(
                fields=["external_id"],
                name="person_unique_external_id",
                violation_error_message="A person with this external id already exists.",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.external_id})" if self.name else self.external_id

    def get_absolute_url(self):
        return reverse("person-detail", args=[self.pk])


class LegalBasis(models.TextChoices):
    CONSENT = "consent", "Consent"
    CONTRACT = "contract", "Contract"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"
    PUBLIC_TASK = "public_task", "Public task"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"


class PurposeCategory(models.TextChoices):
    LEARNING_SUPPORT = "learning_support", "Learning support"
    COURSE_IMPROVEMENT = "course_improvement", "Course improvement"
    STRATEGIC_PLANNING = "strategic_planning", "Strategic planning"
    WELLBEING = "wellbeing", "Wellbeing"
    RESEARCH = "research", "Research"
    PERFORMANCE_MANAGEMENT = "performance_management", "Performance management"
    RECRUITMENT = "recruitment", "Recruitment"
    PAY = "pay", "Pay"


class DecisionRule(models.TextChoices):
    MAJORITY = "majority", "Majority"
    TWO_THIRDS = "two_thirds", "Two thirds"
    UNANIMOUS = "unanimous", "Unanimous"


class Seat(models.TextChoices):
    CHAIR = "chair", "Chair"
    HR = "hr", "HR"
    LEGAL = "legal", "Legal"
    DATA_PROTECTION = "data_protection", "Data protection"
    LEARNER_REPRESENTATIVE = "learner_representative", "Learner representative"
    MEMBER = "member", "Member"


class Committee(models.Model):
    """An oversight committee: who reviews requests, how many votes decide, and how."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    quorum = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Non-recused votes needed before a decision.",
    )
    rule = models.CharField(
        max_length=16, choices=DecisionRule.choices, default=DecisionRule.MAJORITY
    )
    is_default = models.BooleanField(
        default=False, help_text="Reviews every purpose that names no committee."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="CommitteeMembership", related_name="committees"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="committee_one_default",
                violation_error_message="Only one committee can be the default.",
            ),
            models.CheckConstraint(
                condition=models.Q(quorum__gte=1), name="committee_quorum_positive"
            ),
        ]

    def __str__(self):
        return self.name


class CommitteeMembership(models.Model):
    committee = models.ForeignKey(Committee, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    seat = models.CharField(max_length=32, choices=Seat.choices, default=Seat.MEMBER)

    history = HistoricalRecords()

    class Meta:
        ordering = ["committee", "seat", "user"]
        constraints = [
            models.UniqueConstraint(fields=["committee", "user"], name="membership_unique_member"),
            models.UniqueConstraint(
                fields=["committee"],
                condition=models.Q(seat="chair"),
                name="membership_one_chair",
                violation_error_message="A committee has one chair.",
            ),
        ]

    def __str__(self):
        return f"{self.user} ({self.get_seat_display()}, {self.committee.slug})"


class Purpose(models.Model):
    """Why data is used, with the benefit it must bring to learners."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=32, choices=PurposeCategory.choices)
    expected_benefit = BoundedTextField(max_length=limits.TEXT)
    legal_basis = models.CharField(max_length=32, choices=LegalBasis.choices)
    consent_text = BoundedTextField(max_length=limits.DOCUMENT, blank=True)
    consent_version = models.PositiveIntegerField(
        default=0, help_text="Raised each time the consent text changes."
    )
    committee = models.ForeignKey(
        Committee,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="purposes",
        help_text="Reviews requests for this purpose; empty means the default committee.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_purposes",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(legal_basis="consent") | ~models.Q(consent_text=""),
                name="purpose_consent_basis_needs_text",
                violation_error_message="A purpose based on consent needs a consent text.",
            )
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("purpose-detail", args=[self.slug])


class Tag(models.Model):
    name = models.SlugField(max_length=50, unique=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class RuleSeverity(models.TextChoices):
    BLOCK = "block", "Block (no vote can override)"
    WARN = "warn", "Warn (the committee must see it)"


class RuleKind(models.TextChoices):
    """Each kind is a check implemented in analytics.rules; rows choose severity and limits."""

    LEARNING_FIREWALL = "learning_firewall", "Learning data never serves performance decisions"
    EXCLUDED_FIELDS = "excluded_fields", "Excluded fields may not be requested"
    FIELD_PURPOSE = "field_purpose", "A field serves only its dataset's purposes"
    SPECIAL_IDENTIFIED = "special_identified", "Special-category fields, identified, need consent"
    SPECIAL_CATEGORY = "special_category", "Special-category fields are flagged"
    HUMAN_REVIEWER = "human_reviewer", "Decisions about individuals need a human reviewer"
    MODEL_FAIRNESS = "model_fairness", "Models need a fairness audit before approval"
    MINIMISATION = "minimisation", "Many or all fields need a minimisation justification"
    PRIVACY_BUDGET = "privacy_budget", "Aggregates are released under differential privacy"
    SSO_SIGNUP = "sso_signup", "Single sign-on may create data-subject logins"


class Rule(models.Model):
    """A machine-checked rule, maintained by the data protection officer."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=RuleKind.choices)
    severity = models.CharField(max_length=8, choices=RuleSeverity.choices)
    description = BoundedTextField(max_length=limits.TEXT, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name


class Notification(models.Model):
    """An in-app message, also e-mailed once. ``key`` makes each event notify once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    key = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    body = BoundedTextField(max_length=limits.DOCUMENT, blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    emailed_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="notification_once_per_event")
        ]

    def __str__(self):
        return self.subject


class DatasetStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class Dataset(models.Model):
    """A registered collection of records about people."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = BoundedTextField(max_length=limits.TEXT, blank=True)
    source_system = models.CharField(max_length=200, blank=True)
    lawful_basis = models.CharField(max_length=32, choices=LegalBasis.choices)
    retention_days = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    status = models.CharField(
        max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.DRAFT
    )
    person_column = models.CharField(
        max_length=100,
        default="external_id",
        help_text="The CSV column that holds each person's external id.",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="datasets")
    stewards = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="stewarded_datasets"
    )
    purposes = models.ManyToManyField(Purpose, blank=True, related_name="datasets")
    record_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords(m2m_fields=["tags", "stewards", "purposes"])

    class Meta:
        ordering = ["name"]
        permissions = [("steward_dataset", "Is a steward of the dataset")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(retention_days__gte=1),
                name="dataset_retention_positive",
                violation_error_message="Retention must be at least one day.",
            )
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("dataset-detail", args=[self.slug])


class FieldType(models.TextChoices):
    STRING = "string", "String"
    INTEGER = "integer", "Integer"
    DECIMAL = "decimal", "Decimal"
    BOOLEAN = "boolean", "Boolean"
    DATE = "date", "Date"
    DATETIME = "datetime", "Date and time"
    CATEGORY = "category", "Category"


class Field(models.Model):
    """A column of a dataset, with the sensitivity of its values."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="fields")
    name = models.SlugField(
        max_length=100, allow_unicode=False, help_text="The column name in loaded files."
    )
    label = models.CharField(max_length=200, blank=True)
    description = BoundedTextField(max_length=limits.TEXT, blank=True)
    type = models.CharField(max_length=16, choices=FieldType.choices)
    values = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_category_values],
        help_text="Allowed values of a category; empty accepts any value.",
    )
    sensitivity = models.CharField(max_length=16, choices=Sensitivity.choices)
    is_identifier = models.BooleanField(default=False)
    is_protected_attribute = models.BooleanField(
        default=False, help_text="Usable for fairness audits only."
    )
    excluded = models.BooleanField(
        default=False, help_text="The organisation does not intend to use it for analytics."
    )
    minimum = models.FloatField(
        null=True, blank=True, help_text="The smallest value a numeric field can take."
    )
    maximum = models.FloatField(
        null=True, blank=True, help_text="The largest value a numeric field can take."
    )
    bins = models.JSONField(
        default=list,
        blank=True,
        help_text="Where the groups of a numeric field start, ascending: [0, 1, 3] groups "
        "values as 0, 1 to 2, and 3 or more. Aggregates group only by declared values.",
    )
    position = models.PositiveIntegerField(default=0)

    history = HistoricalRecords()

    class Meta:
        ordering = ["dataset", "position", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "name"],
                name="field_unique_name_per_dataset",
                violation_error_message="This dataset already has a field with that name.",
            ),
            models.CheckConstraint(
                condition=models.Q(type="category") | models.Q(values=[]),
                name="field_values_only_for_category",
                violation_error_message="Only a category field may list allowed values.",
            ),
            models.CheckConstraint(
                condition=models.Q(minimum__isnull=True)
                | models.Q(maximum__isnull=True)
                | models.Q(minimum__lte=models.F("maximum")),
                name="field_minimum_not_above_maximum",
                violation_error_message="The minimum must not be above the maximum.",
            ),
        ]

    def __str__(self):
        return f"{self.dataset.slug}.{self.name}"

    @property
    def display_label(self):
        return self.label or self.name.replace("_", " ").capitalize()

    def clean(self):
        from django.core.exceptions import ValidationError

        if not isinstance(self.values, list) or not all(isinstance(v, str) for v in self.values):
            raise ValidationError({"values": "Allowed values must be a list of strings."})
        if len(set(self.values)) != len(self.values):
            raise ValidationError({"values": "Allowed values must not repeat."})
        if self.values and self.type != FieldType.CATEGORY:
            raise ValidationError({"values": "Only a category field may list allowed values."})
        numeric = self.type in (FieldType.INTEGER, FieldType.DECIMAL)
        if not numeric and (self.minimum is not None or self.maximum is not None or self.bins):
            raise ValidationError(
                {"type": "Only a numeric field may declare a minimum, a maximum or groups."}
            )
        if not isinstance(self.bins, list) or not all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in self.bins
        ):
            raise ValidationError({"bins": "Groups must be a list of numbers."})
        if any(a >= b for a, b in zip(self.bins, self.bins[1:], strict=False)):
            raise ValidationError({"bins": "Group starts must rise: each above the one before."})
        if self.type == FieldType.INTEGER and any(b != int(b) for b in self.bins):
            raise ValidationError({"bins": "An integer field's groups start at whole numbers."})
        if self.bins and (
            (self.minimum is not None and self.bins[0] < self.minimum)
            or (self.maximum is not None and self.bins[-1] > self.maximum)
        ):
            raise ValidationError({"bins": "Groups must start within the minimum and maximum."})
        if self.dataset_id and self.name == self.dataset.person_column:
            raise ValidationError(
                {"name": "This name is the dataset's person column, which holds people's ids."}
            )


class LoadMode(models.TextChoices):
    ADD = "add", "Added"
    REPLACE = "replace", "Replaced"


class LoadStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Replaced by a later upload"


class RecordLoad(Job):
    """One load of a CSV file into a dataset: who, when, which file, what happened.

    A job (governance/jobs.py): its task claims it, and a later upload of the same file
    to the same dataset supersedes it while it has not succeeded."""

    job_what = "importing this file"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="loads")
    file_name = models.CharField(max_length=255)
    file = models.FileField(upload_to="uploads/%Y/%m/", blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the file.")
    mode = models.CharField(max_length=16, choices=LoadMode.choices, default=LoadMode.ADD)
    status = models.CharField(max_length=16, choices=LoadStatus.choices, default=LoadStatus.QUEUED)
    rows = models.PositiveIntegerField(default=0)
    people_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="record_loads"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords(excluded_fields=["heartbeat_at"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.file_name} → {self.dataset.slug}"

    def job_actor(self):
        return self.created_by

    def job_failed(self, reason: str) -> list[str]:
        fields = super().job_failed(reason)
        self.errors = [{"row": 0, "column": None, "message": reason}]
        return [*fields, "errors"]

    def get_absolute_url(self):
        return reverse("load-detail", args=[self.pk])

    @property
    def is_finished(self):
        return self.status in (LoadStatus.SUCCEEDED, LoadStatus.FAILED, LoadStatus.SUPERSEDED)


class Record(models.Model):
    """One row of a dataset about one person. Data, not a governance object: no history.

    Records are bulk-loaded by the millions, so the table carries one secondary index,
    (dataset, person), and no database-level foreign keys: a per-row constraint check
    would cost more than the insert itself. Integrity is kept by the only writer, the
    import service, which creates people in the same transaction and locks the dataset;
    deletes still cascade through Django. See docs/records-storage.md.
    """

    dataset = models.ForeignKey(
        Dataset,
        on_delete=models.CASCADE,
        related_name="records",
        db_constraint=False,
        db_index=False,
    )
    person = models.ForeignKey(
        Person,
        on_delete=models.CASCADE,
        related_name="records",
        db_constraint=False,
        db_index=False,
    )
    load = models.ForeignKey(
        RecordLoad,
        on_delete=models.DO_NOTHING,
        null=True,
        related_name="records",
        db_constraint=False,
        db_index=False,
    )
    values = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["dataset", "person"], name="record_dataset_person")]

    def __str__(self):
        return f"record {self.pk} of {self.dataset_id}"


class Policy(models.Model):
    """A governance document with an owner and a review schedule."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    body = BoundedTextField(max_length=limits.DOCUMENT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_policies"
    )
    version = models.CharField(max_length=20, default="1.0")
    approval_date = models.DateField(null=True, blank=True)
    review_interval_months = models.PositiveSmallIntegerField(
        default=12, validators=[MinValueValidator(1)]
    )
    next_review_date = models.DateField(null=True, blank=True, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(review_interval_months__gte=1),
                name="policy_review_interval_positive",
            )
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("policy-detail", args=[self.slug])

    def clean(self):
        # The next review date is derived, never typed: keep it in step with its inputs
        # wherever the policy is validated (services, forms, admin).
        self.next_review_date = (
            add_months(self.approval_date, self.review_interval_months)
            if self.approval_date and self.review_interval_months
            else None
        )

    @property
    def is_overdue(self) -> bool:
        return self.next_review_date is not None and self.next_review_date < timezone.localdate()


class VerificationTrigger(models.TextChoices):
    COMMAND = "command", "Command line"
    BEAT = "beat", "Nightly (Celery beat)"
    WEB = "web", "Web"


class VerificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"


class AuditVerification(Job):
    """One run of the hash-chain verification (``verify_audit``): what was checked, the
    chain heads and table watermarks it saw, and what it found broken.

    The nightly run is a job (governance/jobs.py), keyed by its Celery message so a
    redelivered message runs it once; the command writes a complete row in one go. A
    finished run is fixed: on PostgreSQL a trigger refuses to change a verification that
    succeeded or failed, to delete one, or to truncate the table (migration 0012), so
    its watermarks cannot be edited away."""

    job_what = "verifying the audit chains"

    status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.SUCCEEDED
    )
    task_key = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="The Celery message that asked for this run, if one did.",
    )

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    entries = models.PositiveBigIntegerField(default=0, help_text="How many entries were checked.")
    heads = models.JSONField(default=dict, blank=True, help_text='{chain: {"seq": n, "hash": h}}')
    watermarks = models.JSONField(
        default=dict,
        blank=True,
        help_text='Each protected table as seen: {table: {"rows": n, "max_id": m}}; the next '
        "verification fails if a table holds fewer of these rows.",
    )
    problems = models.JSONField(default=list, blank=True)
    triggered_by = models.CharField(max_length=16, choices=VerificationTrigger.choices)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = ["started_at", "id"]

    def __str__(self):
        return f"verification {self.pk}: {'intact' if self.ok else 'BROKEN'}"


class AccountEventKind(models.TextChoices):
    SIGNED_IN = "signed_in", "Signed in"
    SSO_REFUSED = "sso_refused", "Single sign-on refused"
    LOCKED_OUT = "locked_out", "Sign-in locked after failed attempts"
    UNLOCKED = "unlocked", "Sign-in unlocked by an administrator"


class SignInMethod(models.TextChoices):
    PASSWORD = "password", "Password"
    SSO = "sso", "Single sign-on"
    OTHER = "other", "Other"


class AccountEvent(Chained):
    """A sign-in, a refused single sign-on, a lockout or an unlock. Append-only and
    hash-chained like the access log; history-tracked so the auditor's timeline shows it.

    ``user`` is the login the event is about (none for an unknown address), ``actor``
    who caused it (the person signing in, the administrator unlocking; none for a
    lockout, whose cause is whoever typed the wrong passwords)."""

    chain_name = "account"

    event = models.CharField(max_length=16, choices=AccountEventKind.choices)
    at = models.DateTimeField(default=timezone.now, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="account_events",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    email = models.EmailField("e-mail address", max_length=254, blank=True)
    ip_address = models.GenericIPAddressField("network address", null=True, blank=True)
    method = models.CharField(max_length=16, choices=SignInMethod.choices, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["event", "-at"], name="account_event_kind_at")]

    def __str__(self):
        return f"{self.get_event_display()}: {self.email}"
