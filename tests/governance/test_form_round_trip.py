"""A date, time or number a form shows comes back unchanged when the form is posted.

The policy form showed its approval date as ``01/09/2026`` (en-gb), which an
``<input type="date">`` cannot display, so saving the untouched form erased the date.
These tests walk every form of every app, so a new form cannot bring the bug back.
"""

from __future__ import annotations

import datetime
import importlib
import inspect

import pytest
from django import forms
from django.utils import translation

from governance.widgets import IsoDateInput, IsoDateTimeInput, IsoTimeInput

FORM_MODULES = [
    "governance.forms",
    "analytics.forms",
    "analytics.review_forms",
    "consent.forms",
]
SAMPLES = {
    forms.DateField: (IsoDateInput, datetime.date(2026, 9, 1)),
    forms.DateTimeField: (
        IsoDateTimeInput,
        datetime.datetime(2026, 9, 1, 14, 30, tzinfo=datetime.UTC),
    ),
    forms.TimeField: (IsoTimeInput, datetime.time(14, 30)),
}


def every_form_field():
    for module_name in FORM_MODULES:
        module = importlib.import_module(module_name)
        for name, form in inspect.getmembers(module, inspect.isclass):
            if issubclass(form, forms.BaseForm) and form.__module__ == module_name:
                for field_name, field in form.base_fields.items():
                    yield f"{module_name}.{name}.{field_name}", field


FIELDS = list(every_form_field())


def test_the_walk_finds_the_forms_with_dates():
    names = {name for name, _ in FIELDS}
    assert "governance.forms.PolicyForm.approval_date" in names
    assert "analytics.review_forms.ObligationForm.due_on" in names


@pytest.mark.parametrize(
    ("name", "field"),
    [(n, f) for n, f in FIELDS if isinstance(f, tuple(SAMPLES))],
    ids=lambda value: value if isinstance(value, str) else "",
)
@pytest.mark.parametrize("language", ["en-gb", "en-us", "de"])
def test_every_date_and_time_input_round_trips(name, field, language):
    widget_class, value = next(s for t, s in SAMPLES.items() if isinstance(field, t))
    assert isinstance(field.widget, widget_class), f"{name} must use {widget_class.__name__}"
    with translation.override(language):
        shown = field.widget.format_value(value)
        assert field.clean(shown) == value, f"{name} showed {shown!r}"


@pytest.mark.parametrize(
    ("name", "field"),
    [(n, f) for n, f in FIELDS if isinstance(f, forms.IntegerField | forms.FloatField)],
    ids=lambda value: value if isinstance(value, str) else "",
)
@pytest.mark.parametrize("language", ["en-gb", "de"])
def test_every_number_input_round_trips(name, field, language):
    value = 0.00001 if isinstance(field, forms.FloatField) else 12
    if field.min_value is not None:
        value = max(value, field.min_value)
    with translation.override(language):
        shown = field.widget.format_value(field.prepare_value(value))
        assert field.clean(shown) == value, f"{name} showed {shown!r}"
