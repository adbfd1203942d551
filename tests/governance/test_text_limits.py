"""Every text Custos takes has a maximum length: in the model, the form and the API.

A 40 MB justification was stored and a 100 kB category value accepted (issue 11).
These tests walk every model, form and API input shape, so a new unbounded text fails
here rather than in production.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
from django import forms
from django.apps import apps
from django.db import models
from rest_framework import serializers

from governance.limits import BoundedTextField

APPS = ("governance", "analytics", "consent")
FORM_MODULES = ["governance.forms", "analytics.forms", "analytics.review_forms", "consent.forms"]
API_MODULES = [
    "governance.api",
    "governance.audit.api",
    "analytics.api",
    "analytics.data_api",
    "consent.api",
]


def _text_fields():
    for app in APPS:
        for model in apps.get_app_config(app).get_models():
            tracked = getattr(model, "instance_type", None)  # a simple-history table
            for field in model._meta.get_fields():
                if not isinstance(field, models.TextField):
                    continue
                if tracked and isinstance(tracked._meta.get_field(field.name), models.FileField):
                    continue  # history keeps a file's name as text
                yield f"{model._meta.label}.{field.name}", field


@pytest.mark.parametrize(("name", "field"), list(_text_fields()), ids=lambda v: str(v))
def test_every_model_text_is_bounded_and_validated(name, field):
    assert isinstance(field, BoundedTextField), f"{name}: use governance.limits.BoundedTextField"
    with pytest.raises(Exception, match="at most"):
        field.run_validators("x" * (field.max_length + 1))


def _form_char_fields():
    for module_name in FORM_MODULES:
        module = importlib.import_module(module_name)
        for name, form in inspect.getmembers(module, inspect.isclass):
            if issubclass(form, forms.BaseForm) and form.__module__ == module_name:
                for field_name, field in form.base_fields.items():
                    if isinstance(field, forms.CharField):
                        yield f"{module_name}.{name}.{field_name}", field


@pytest.mark.parametrize(("name", "field"), list(_form_char_fields()), ids=lambda v: str(v))
def test_every_form_text_has_a_max_length(name, field):
    assert field.max_length is not None, name


def _input_char_fields():
    """CharFields of the API's input shapes (serializers named ``...In``), nested too."""

    def walk(prefix, field):
        if isinstance(field, serializers.CharField):
            yield prefix, field
        child = getattr(field, "child", None)
        if child is not None:
            yield from walk(f"{prefix}[]", child)
        if isinstance(field, serializers.Serializer):
            for name, sub in field.fields.items():
                yield from walk(f"{prefix}.{name}", sub)

    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name, serializer in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(serializer, serializers.Serializer)
                and name.endswith("In")
                and serializer.__module__ == module_name
            ):
                yield from walk(f"{module_name}.{name}", serializer())


INPUTS = list(_input_char_fields())


def test_the_walk_finds_the_api_inputs():
    names = {name for name, _ in INPUTS}
    assert "analytics.api.RequestCreateIn.justification" in names
    assert "analytics.api.DecisionIn.conditions.obligations[].text" in names


@pytest.mark.parametrize(("name", "field"), INPUTS, ids=lambda v: str(v))
def test_every_api_text_input_has_a_max_length(name, field):
    assert field.max_length is not None, name
