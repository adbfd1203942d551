"""Input shapes for the governance pages. Rules live in models and services."""

from __future__ import annotations

import re

from django import forms
from django.core.validators import MinValueValidator
from django.forms.fields import InvalidJSONInput

from . import jsonsafe, limits
from .models import (
    API_TOKEN_DEFAULT_DAYS,
    API_TOKEN_MAX_DAYS,
    ApiTokenScope,
    Dataset,
    DatasetStatus,
    Field,
    FieldType,
    LegalBasis,
    Person,
    Policy,
    Purpose,
    PurposeCategory,
    Sensitivity,
    User,
)
from .selectors import steward_candidates
from .widgets import IsoDateInput

_SLUG_HELP = "Lower-case letters, digits and hyphens; used in URLs and in YAML files."


def split_list(text: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,\n]", text or "") if item.strip()]


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, help_text=_SLUG_HELP)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=limits.TEXT
    )
    source_system = forms.CharField(max_length=200, required=False)
    lawful_basis = forms.ChoiceField(choices=LegalBasis.choices)
    retention_days = forms.IntegerField(
        validators=[MinValueValidator(1)], help_text="How long records are kept, in days."
    )
    status = forms.ChoiceField(choices=DatasetStatus.choices, initial=DatasetStatus.DRAFT)
    person_column = forms.CharField(
        max_length=100,
        initial="external_id",
        help_text="The column of loaded files that holds each person's external id.",
    )
    tags = forms.CharField(
        required=False, max_length=1000, help_text="Comma-separated, e.g. learning, hr."
    )
    stewards = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave empty to be the only steward.",
    )
    purposes = forms.ModelMultipleChoiceField(
        queryset=Purpose.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The purposes this dataset may serve.",
    )

    def __init__(self, *args, instance: Dataset | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "slug": instance.slug,
                "description": instance.description,
                "source_system": instance.source_system,
                "lawful_basis": instance.lawful_basis,
                "retention_days": instance.retention_days,
                "status": instance.status,
                "person_column": instance.person_column,
                "tags": ", ".join(t.name for t in instance.tags.all()),
                "stewards": list(instance.stewards.all()),
                "purposes": list(instance.purposes.all()),
            }
        super().__init__(*args, **kwargs)
        candidates = steward_candidates()
        if instance is not None:
            candidates = (candidates | instance.stewards.all()).distinct()
        self.fields["stewards"].queryset = candidates
        self.fields["purposes"].queryset = Purpose.objects.order_by("name")
        if instance is not None:
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = "The slug cannot change once the dataset exists."
            self.fields["stewards"].help_text = "At least one steward."

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        others = Dataset.objects.filter(slug=slug)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("A dataset with this slug already exists.")
        return slug

    def clean_tags(self):
        tags = split_list(self.cleaned_data["tags"])
        for tag in tags:
            if not re.fullmatch(r"[-a-z0-9_]+", tag):
                raise forms.ValidationError(
                    f"{tag!r}: tags are lower-case letters, digits, hyphens or underscores."
                )
        return tags

    def clean_stewards(self):
        stewards = list(self.cleaned_data["stewards"])
        if self.instance is not None and not stewards:
            raise forms.ValidationError("A dataset needs at least one steward.")
        return stewards


class FieldForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="The column name in loaded files.")
    label = forms.CharField(max_length=200, required=False)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=limits.TEXT
    )
    type = forms.ChoiceField(choices=FieldType.choices)
    values = forms.CharField(
        required=False,
        max_length=limits.DOCUMENT,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Allowed values",
        help_text="For a category: one per line or comma-separated. Empty accepts any value.",
    )
    sensitivity = forms.ChoiceField(choices=Sensitivity.choices)
    is_identifier = forms.BooleanField(required=False, label="Identifier")
    is_protected_attribute = forms.BooleanField(
        required=False, label="Protected attribute (fairness audits only)"
    )
    excluded = forms.BooleanField(required=False, label="Excluded (not intended for analytics)")

    def __init__(self, *args, dataset: Dataset, instance: Field | None = None, **kwargs):
        self.dataset, self.instance = dataset, instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "label": instance.label,
                "description": instance.description,
                "type": instance.type,
                "values": "\n".join(instance.values),
                "sensitivity": instance.sensitivity,
                "is_identifier": instance.is_identifier,
                "is_protected_attribute": instance.is_protected_attribute,
                "excluded": instance.excluded,
            }
        super().__init__(*args, **kwargs)
        if instance is not None:
            self.fields["name"].disabled = True

    def clean_name(self):
        name = self.cleaned_data["name"]
        others = self.dataset.fields.filter(name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("This dataset already has a field with that name.")
        if name == self.dataset.person_column:
            raise forms.ValidationError("That is the dataset's person column.")
        return name

    def clean(self):
        cleaned = super().clean()
        values = split_list(cleaned.get("values", ""))
        if values and cleaned.get("type") != FieldType.CATEGORY:
            self.add_error("values", "Only a category field may list allowed values.")
        if len(set(values)) != len(values):
            self.add_error("values", "Allowed values must not repeat.")
        cleaned["values"] = values
        return cleaned


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8, with a header row.")
    replace = forms.BooleanField(
        required=False,
        label="Replace the dataset's records with this file",
        help_text="Otherwise the rows are added.",
    )


class PurposeForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, help_text=_SLUG_HELP)
    category = forms.ChoiceField(choices=PurposeCategory.choices)
    expected_benefit = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=limits.TEXT,
        help_text="The benefit to learners.",
    )
    legal_basis = forms.ChoiceField(choices=LegalBasis.choices)
    consent_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=limits.DOCUMENT,
        help_text="Required when the legal basis is consent. A change makes a new version.",
    )

    def __init__(self, *args, instance: Purpose | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                f: getattr(instance, f)
                for f in ("name", "slug", "category", "expected_benefit", "legal_basis")
            } | {"consent_text": instance.consent_text}
        super().__init__(*args, **kwargs)
        if instance is not None:
            self.fields["slug"].disabled = True

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        others = Purpose.objects.filter(slug=slug)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("A purpose with this slug already exists.")
        return slug

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("legal_basis") == LegalBasis.CONSENT
            and not cleaned.get("consent_text", "").strip()
        ):
            self.add_error("consent_text", "A purpose based on consent needs a consent text.")
        return cleaned


class PolicyForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, help_text=_SLUG_HELP)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), max_length=limits.DOCUMENT)
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True))
    version = forms.CharField(max_length=20, initial="1.0")
    approval_date = forms.DateField(required=False, widget=IsoDateInput)
    review_interval_months = forms.IntegerField(
        min_value=1, max_value=120, initial=12, label="Review every (months)"
    )

    def __init__(self, *args, instance: Policy | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                f: getattr(instance, f)
                for f in (
                    "title",
                    "slug",
                    "body",
                    "owner",
                    "version",
                    "approval_date",
                    "review_interval_months",
                )
            }
        super().__init__(*args, **kwargs)
        if instance is not None:
            self.fields["slug"].disabled = True

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        others = Policy.objects.filter(slug=slug)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("A policy with this slug already exists.")
        return slug


class PeopleImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file", help_text="Columns: external_id, name, email, org_unit."
    )


class PersonLinkForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True), required=False, label="Login"
    )

    def __init__(self, *args, person: Person, **kwargs):
        self.person = person
        super().__init__(*args, initial={"user": person.user}, **kwargs)

    def clean_user(self):
        user = self.cleaned_data["user"]
        if (
            user is not None
            and Person.objects.filter(user=user).exclude(pk=self.person.pk).exists()
        ):
            raise forms.ValidationError("That login is already linked to another person.")
        return user


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop'.")
    scope = forms.ChoiceField(
        label="Allows",
        choices=ApiTokenScope.choices,
        initial=ApiTokenScope.READ,
        help_text="A read-only token cannot change anything through the API.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=API_TOKEN_MAX_DAYS,
        initial=API_TOKEN_DEFAULT_DAYS,
        help_text=f"From 1 to {API_TOKEN_MAX_DAYS} days; the token stops working then.",
    )


class LockoutLiftForm(forms.Form):
    """Which lock to lift: a login (its e-mail address) or a network address."""

    account = forms.CharField(required=False, max_length=254)
    address = forms.GenericIPAddressField(required=False)

    def clean(self):
        data = super().clean()
        if bool(data.get("account")) == bool(data.get("address")):
            raise forms.ValidationError("Name either a login or a network address to unlock.")
        return data


class BoundedJSONField(forms.JSONField):
    """A JSON text box that refuses deep nesting and NUL characters with a form error."""

    def to_python(self, value):
        if self.disabled or value in self.empty_values or not isinstance(value, str):
            return super().to_python(value)
        try:
            jsonsafe.loads(value)
        except jsonsafe.NotJSON:
            pass  # the JSONField's own message says so
        except jsonsafe.UnsafeJSON as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        # Shown again as typed when it is refused (Django would parse it, and recurse).
        if isinstance(data, str) and not self.disabled:
            try:
                jsonsafe.loads(data)
            except jsonsafe.UnsafeJSON:
                return InvalidJSONInput(data)
        return super().bound_data(data, initial)
