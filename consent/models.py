"""Consent per person and purpose. (The "my data" portal builds on this in its own issue.)"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from governance.models import Person, Purpose


class ConsentState(models.TextChoices):
    GIVEN = "given", "Given"
    WITHDRAWN = "withdrawn", "Withdrawn"
    REFUSED = "refused", "Refused"


class Consent(models.Model):
    """A person's current answer for one purpose, with the consent text version answered."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="consents")
    purpose = models.ForeignKey(Purpose, on_delete=models.CASCADE, related_name="consents")
    state = models.CharField(max_length=16, choices=ConsentState.choices)
    text_version = models.PositiveIntegerField(default=0)
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
