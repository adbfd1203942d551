"""The kinds of object an auditor looks up, found through the app registry.

A kind is a history-tracked model by its lower-case model name (``dataset``, ``vote``,
``person``…), except that ``analytics.AnalyticsRequest`` is ``request``; ``access`` is the
access log. Governance never imports consent or analytics: their models are looked up
by name at run time, so this module works whichever apps are installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property, lru_cache

from django.apps import apps
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

from governance.models import Sensitivity

ACCESS = "access"
# Kinds spelled differently from their model name.
RENAMED = {("analytics", "analyticsrequest"): "request"}
# The kinds the issue lists for object history and as-of (every other kind works too).
PRIMARY = (
    "dataset",
    "field",
    "purpose",
    "policy",
    "rule",
    "committee",
    "request",
    "grant",
    "consent",
)
# The columns that name an object, in order of preference; a kind may override.
_LABEL_PREFERENCE = (
    "title",
    "name",
    "email",
    "external_id",
    "slug",
    "choice",
    "outcome",
    "state",
    "seat",
    "status",
    "number",
)
_LABELS = {
    "person": ("external_id", "name"),
    "vote": ("choice",),
    "decision": ("outcome",),
    "grant": ("status", "output_level"),
    "consent": ("state",),
    "correction": ("status",),
    "objection": ("kind", "status"),
    "recordload": ("file_name", "status"),
    "accountevent": ("event", "email"),
}
# "Belongs to": the foreign key shown next to an object (a vote with its request), in
# order of preference.
_CONTEXT_PREFERENCE = ("request", "grant", "decision", "dataset", "committee", "purpose", "person")

# Values only a viewer of at least this clearance sees, by kind and field name, as on
# live pages (the people list and a person's page are for personal clearance).
PERSONAL_FIELDS = {"person": ("name", "email", "org_unit")}
REDACTED = "redacted"


@dataclass(frozen=True)
class Kind:
    name: str
    model: type  # the tracked model (AccessEvent for "access")
    history: type | None  # its historical model (None for "access")
    label_fields: tuple[str, ...]
    context_field: str | None  # a foreign key to another kind, shown alongside

    @cached_property
    def verbose_name(self) -> str:
        if self.name == ACCESS:
            return "access"
        if self.name == "request":
            return "request"
        return str(self.model._meta.verbose_name)

    def url(self, pk) -> str:
        """This kind's object page for ``pk``: ``audit-object`` reversed once per kind
        (and URL configuration and script prefix), the id filled in."""
        prefix, suffix = _object_url_parts(
            self.name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix()
        )
        return f"{prefix}{int(pk)}{suffix}"

    @cached_property
    def context_kind(self) -> Kind | None:
        if self.context_field is None:
            return None
        target = self.model._meta.get_field(self.context_field).remote_field.model
        return kind_of_model(target)


_PK_PLACEHOLDER = 987654321


@lru_cache(maxsize=256)
def _object_url_parts(name: str, urlconf, script_prefix: str) -> tuple[str, str]:
    """``audit-object``'s URL for kind ``name`` split around the object id."""
    url = reverse("audit-object", args=[name, _PK_PLACEHOLDER], urlconf=urlconf)
    prefix, _, suffix = url.rpartition(str(_PK_PLACEHOLDER))
    return prefix, suffix


def _kind_name(model) -> str:
    return RENAMED.get((model._meta.app_label, model._meta.model_name), model._meta.model_name)


def _tracked_models():
    for model in apps.get_models():
        attribute = getattr(model._meta, "simple_history_manager_attribute", None)
        if attribute:
            yield model, getattr(model, attribute).model


def _history_columns(history) -> set[str]:
    return {f.name for f in history._meta.fields}


def _labels_for(name, model, columns) -> tuple[str, ...]:
    if name in _LABELS:
        return tuple(f for f in _LABELS[name] if f in columns)
    for candidate in _LABEL_PREFERENCE:
        if candidate in columns:
            return (candidate,)
    return ()


def _context_for(model, columns) -> str | None:
    for candidate in _CONTEXT_PREFERENCE:
        if candidate in columns:
            field = model._meta.get_field(candidate)
            if field.is_relation and (field.many_to_one or field.one_to_one):
                return candidate
    return None


@cache
def kinds() -> dict[str, Kind]:
    """Every kind by name: each history-tracked model, and the access log."""
    found = {}
    for model, history in _tracked_models():
        name = _kind_name(model)
        columns = _history_columns(history)
        found[name] = Kind(
            name=name,
            model=model,
            history=history,
            label_fields=_labels_for(name, model, columns),
            context_field=_context_for(model, columns),
        )
    if apps.is_installed("analytics"):
        event = apps.get_model("analytics", "AccessEvent")
        found[ACCESS] = Kind(
            name=ACCESS,
            model=event,
            history=None,
            label_fields=("kind", "people"),
            context_field="dataset",
        )
    return dict(sorted(found.items()))


def kind_of_model(model) -> Kind | None:
    return kinds().get(_kind_name(model))


def get_kind(name: str) -> Kind | None:
    return kinds().get((name or "").strip().lower())


def tracked_kinds() -> list[Kind]:
    """Kinds with a history of their own (object pages, as-of)."""
    return [k for k in kinds().values() if k.history is not None]


def choice_label(kind: Kind, field_name: str, value) -> str:
    """A stored value as people read it: a choice by its label."""
    if value is None:
        return ""
    choices = _choices(kind.model, field_name)
    if choices is not None:
        return str(choices.get(value, value))
    return str(value)


@cache
def _choices(model, field_name: str) -> dict | None:
    field = model._meta.get_field(field_name)
    return dict(field.flatchoices) if field.choices else None


def redacted_fields(kind: Kind, viewer, *, field_ids=()) -> set[str]:
    """Names of ``kind``'s fields whose values ``viewer`` may not see.

    Person name, e-mail and unit need personal clearance; a correction's current and
    proposed values need the clearance of the field corrected (``field_ids``: the
    corrected fields' ids, any of them above the viewer's clearance redacts both).
    """
    hidden = set()
    if not viewer.may_see(Sensitivity.PERSONAL):
        hidden |= set(PERSONAL_FIELDS.get(kind.name, ()))
    if kind.name == "correction" and field_ids:
        field_model = apps.get_model("governance", "Field")
        sensitivities = set(
            field_model.objects.filter(pk__in=set(field_ids)).values_list("sensitivity", flat=True)
        )
        if any(not viewer.may_see(s) for s in sensitivities):
            hidden |= {"current_value", "proposed_value"}
    return hidden


def person_fields(kind: Kind) -> list[str]:
    """Foreign keys of ``kind`` to a person: history shows a person by name or e-mail."""
    person = apps.get_model("governance", "Person")
    return [
        f.name
        for f in kind.model._meta.concrete_fields
        if f.is_relation and f.remote_field.model is person
    ]
