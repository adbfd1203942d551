"""Input shapes for the analytics pages. Rules live in the services and rules."""

from __future__ import annotations

import datetime
import re

from django import forms
from django.core.validators import MinValueValidator
from django.utils import timezone

from governance import limits
from governance.models import Field, Purpose, User
from governance.widgets import IsoDateInput

from .models import AnalyticsRequest, OutputLevel

_COHORT_LINE = re.compile(r"^(?P<key>[-\w]+\.[-\w]+)\s*=\s*(?P<value>.*?)$")


def cohort_as_text(cohort: dict | None) -> str:
    return "\n".join(f"{key}={value}" for key, value in (cohort or {}).items())


class PurposeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, purpose):
        return f"{purpose.name} ({purpose.get_category_display().lower()})"


class RequestForm(forms.Form):
    """A request's content. ``datasets`` are the requestable datasets (with ``.requestable``
    fields, excluded ones left out): the field picker offers only those fields."""

    title = forms.CharField(max_length=200)
    purpose = PurposeChoiceField(queryset=Purpose.objects.none(), empty_label="Choose a purpose")
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=limits.TEXT,
        help_text="Why the analysis needs this data.",
    )
    expected_benefit = forms.CharField(
        label="Expected benefit to learners",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=limits.TEXT,
    )
    fields = forms.ModelMultipleChoiceField(
        queryset=Field.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Name at least one field."},
    )
    cohort = forms.CharField(
        required=False,
        max_length=limits.NOTE,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "dataset.field=value"}),
        label="Cohort",
        help_text="Empty for everyone; otherwise one filter per line, written "
        "dataset.field=value (for example oulad-student-info.code_module=AAA). A field that "
        "selects people is a field used: tick it among the fields too.",
    )
    output_level = forms.ChoiceField(choices=OutputLevel.choices, initial=OutputLevel.AGGREGATE)
    involves_model = forms.BooleanField(required=False, label="A predictive model is involved")
    automated_decision = forms.BooleanField(
        required=False, label="Results drive decisions about individuals"
    )
    human_reviewer = forms.EmailField(
        required=False,
        label="Human reviewer",
        help_text="The e-mail of the login who reviews each decision about a person.",
    )
    minimisation_justification = forms.CharField(
        required=False,
        max_length=limits.TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Needed when you ask for many fields or every field of a dataset.",
    )
    retention_days = forms.IntegerField(
        validators=[MinValueValidator(1)],
        initial=365,
        help_text="How long you keep the results, in days.",
    )
    starts_on = forms.DateField(
        label="Wanted from",
        widget=IsoDateInput,
        initial=timezone.localdate,
    )
    ends_on = forms.DateField(label="Wanted until", widget=IsoDateInput)

    def __init__(self, *args, datasets, instance: AnalyticsRequest | None = None, **kwargs):
        self.datasets = list(datasets)
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "title": instance.title,
                "purpose": instance.purpose_id,
                "justification": instance.justification,
                "expected_benefit": instance.expected_benefit,
                "fields": [f.pk for f in instance.fields.all()],
                "cohort": cohort_as_text(instance.cohort),
                "output_level": instance.output_level,
                "involves_model": instance.involves_model,
                "automated_decision": instance.automated_decision,
                "human_reviewer": instance.human_reviewer.email if instance.human_reviewer else "",
                "minimisation_justification": instance.minimisation_justification,
                "retention_days": instance.retention_days,
                "starts_on": instance.starts_on,
                "ends_on": instance.ends_on,
            }
        super().__init__(*args, **kwargs)
        self.fields["purpose"].queryset = Purpose.objects.order_by("name")
        self.fields["fields"].queryset = Field.objects.filter(
            pk__in=[f.pk for d in self.datasets for f in d.requestable]
        ).select_related("dataset")

    @property
    def selected_field_ids(self) -> set[int]:
        """The fields ticked in the picker (as posted, or as saved)."""
        value = self["fields"].value() or []
        ids = set()
        for item in value:
            try:
                ids.add(int(getattr(item, "pk", item)))
            except (TypeError, ValueError):
                continue
        return ids

    def clean_cohort(self) -> dict | None:
        cohort = {}
        problems = []
        for number, line in enumerate(self.cleaned_data["cohort"].splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            match = _COHORT_LINE.match(line)
            if match is None or not match["value"]:
                problems.append(f"Line {number}: “{line}” is not written dataset.field=value.")
                continue
            if match["key"] in cohort:
                problems.append(f"Line {number}: {match['key']} is already filtered.")
                continue
            cohort[match["key"]] = match["value"]
        if problems:
            raise forms.ValidationError(problems)
        return cohort or None

    def clean_human_reviewer(self) -> User | None:
        email = self.cleaned_data["human_reviewer"]
        if not email:
            return None
        reviewer = User.objects.filter(email__iexact=email, is_active=True).first()
        if reviewer is None:
            raise forms.ValidationError("No active login has this e-mail.")
        return reviewer

    def clean(self):
        data = super().clean()
        starts_on, ends_on = data.get("starts_on"), data.get("ends_on")
        if isinstance(starts_on, datetime.date) and isinstance(ends_on, datetime.date):
            if ends_on < starts_on:
                self.add_error("ends_on", "The end date must not be before the start date.")
        return data


class WithdrawForm(forms.Form):
    confirm = forms.BooleanField(
        label="Yes, withdraw this request",
        error_messages={"required": "Tick the box to confirm the withdrawal."},
    )
