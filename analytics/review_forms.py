"""Input shapes for the reviewers' pages. The rules live in analytics.services."""

from __future__ import annotations

from django import forms
from django.core.validators import MinValueValidator

from governance import limits
from governance.forms import BoundedJSONField
from governance.models import Rule, RuleSeverity, User
from governance.widgets import IsoDateInput

from .models import Outcome, VoteChoice
from .services import ObligationInput

_TEXTAREA = forms.Textarea(attrs={"rows": 3})


class SignoffForm(forms.Form):
    """One dataset's sign-off; ``datasets`` are those of the request the steward stewards."""

    dataset = forms.ChoiceField(label="Dataset")
    approve = forms.TypedChoiceField(
        label="Your decision",
        choices=[
            ("yes", "Sign off: the request may use this dataset"),
            ("no", "Decline: return the request to the analyst"),
        ],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        widget=_TEXTAREA,
        max_length=limits.NOTE,
        help_text="Required; the analyst and the committee see it.",
    )

    def __init__(self, *args, datasets, **kwargs):
        super().__init__(*args, **kwargs)
        self.datasets = {d.slug: d for d in datasets}
        self.fields["dataset"].choices = [(d.slug, d.name) for d in datasets]
        if len(datasets) == 1:
            self.fields["dataset"].initial = datasets[0].slug

    def clean_dataset(self):
        return self.datasets[self.cleaned_data["dataset"]]


class VoteForm(forms.Form):
    choice = forms.ChoiceField(
        label="Your vote", choices=VoteChoice.choices, widget=forms.RadioSelect
    )
    rationale = forms.CharField(
        widget=_TEXTAREA,
        max_length=limits.NOTE,
        help_text="Required. A declared conflict recuses you from this request.",
    )


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(choices=Outcome.choices, widget=forms.RadioSelect)
    rationale = forms.CharField(widget=_TEXTAREA, max_length=limits.TEXT)
    aggregate_only = forms.BooleanField(
        required=False, label="Aggregate only", help_text="Results only as aggregates."
    )
    min_cohort = forms.IntegerField(
        label="Minimum cohort k",
        initial=10,
        validators=[MinValueValidator(2)],
        help_text="No group smaller than k people is ever shown.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=IsoDateInput,
        help_text="Empty: the grant ends when the request's period ends.",
    )
    epsilon = forms.FloatField(
        required=False,
        label="Privacy budget (ε)",
        min_value=0.0,
        help_text="How much the analyst's aggregates may reveal in all: each aggregate spends "
        "part of it, and figures carry random noise so no one person can be singled out. "
        "Smaller is more private. Empty: the data protection officer's default (in a "
        "correction, the corrected decision's budget).",
    )


class ObligationForm(forms.Form):
    """One obligation row; a row left blank is ignored (the formset skips it)."""

    text = forms.CharField(
        label="Obligation", widget=forms.Textarea(attrs={"rows": 2}), max_length=limits.NOTE
    )
    owner = forms.EmailField(label="Owner's e-mail")
    due_on = forms.DateField(label="Due on", widget=IsoDateInput)

    def clean_owner(self):
        email = self.cleaned_data["owner"].strip().lower()
        owner = User.objects.filter(email__iexact=email, is_active=True).first()
        if owner is None:
            raise forms.ValidationError(f"No active user has the e-mail address {email}.")
        return owner


class BaseObligationFormSet(forms.BaseFormSet):
    def obligations(self) -> list[ObligationInput]:
        return [
            ObligationInput(text=data["text"], owner=data["owner"], due_on=data["due_on"])
            for data in self.cleaned_data
            if data
        ]


ObligationFormSet = forms.formset_factory(
    ObligationForm, formset=BaseObligationFormSet, extra=3, max_num=20, validate_max=True
)
OBLIGATIONS_PREFIX = "obligations"


class GrantRevokeForm(forms.Form):
    reason = forms.CharField(
        widget=_TEXTAREA,
        max_length=limits.NOTE,
        help_text="Required; the grantee sees it. The next access is refused.",
    )


class RuleForm(forms.Form):
    severity = forms.ChoiceField(choices=RuleSeverity.choices)
    enabled = forms.BooleanField(required=False)
    description = forms.CharField(widget=_TEXTAREA, required=False, max_length=limits.TEXT)
    parameters = BoundedJSONField(
        required=False,
        max_length=limits.NOTE,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='A JSON object, for example {"max_fields": 20}; {} for none.',
    )

    def __init__(self, *args, instance: Rule, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "severity": instance.severity,
                "enabled": instance.enabled,
                "description": instance.description,
                "parameters": instance.parameters,
            },
        )
        super().__init__(*args, **kwargs)

    def clean_parameters(self):
        parameters = self.cleaned_data["parameters"]
        if parameters in (None, ""):
            return {}
        if not isinstance(parameters, dict):
            raise forms.ValidationError('Parameters must be a JSON object, such as {"key": 1}.')
        return parameters
