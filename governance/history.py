"""Attribution of changes and readable timelines over django-simple-history."""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.apps import apps
from django.utils import timezone
from simple_history.models import HistoricalRecords

# A save that only sets many-to-many lists, by the same person this soon after the
# previous save of the object, belongs to that change (a create, then its tags).
MERGE_WINDOW = datetime.timedelta(seconds=5)
KIND_LABELS = {"+": "created", "~": "changed", "-": "deleted"}
HIDDEN_FIELDS = {"id", "created_at", "updated_at", "password", "last_login", "position"}


@contextlib.contextmanager
def acting_as(actor):
    """Attribute every history record written inside the block to ``actor``.

    Web requests are attributed by simple-history's middleware; services called from
    commands, tasks and the API wrap their writes in this so history always has a user.
    """
    context = HistoricalRecords.context
    had_request = hasattr(context, "request")
    previous = getattr(context, "request", None)
    context.request = SimpleNamespace(user=actor)
    try:
        yield
    finally:
        if had_request:
            context.request = previous
        else:
            del context.request


@dataclass
class Change:
    field: str
    old: object
    new: object


@dataclass
class TimelineEntry:
    when: datetime.datetime
    who: object
    kind: str
    subject: str
    changes: list[Change] = field(default_factory=list)


def _display(record, model_field):
    """A value as the timeline shows it: choices by label, people by e-mail, lists joined."""
    value = getattr(record, model_field.attname)
    if value is None:
        return None
    if model_field.choices:
        return str(dict(model_field.flatchoices).get(value, value))
    if model_field.is_relation:
        related = getattr(record, model_field.name, None)
        if related is None:
            return f"#{value} (deleted)"
        return getattr(related, "email", None) or str(related)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return str(value)


def _m2m_snapshots(history_model, m2m_names, history_ids):
    """{m2m field name: {history_id: sorted labels}} in one query per field."""
    snapshots = {}
    for name in m2m_names:
        m2m_model = apps.get_model(
            history_model._meta.app_label, f"{history_model.__name__}_{name}"
        )
        target = history_model.instance_type._meta.get_field(name).remote_field.model
        target_field = next(
            f.name
            for f in m2m_model._meta.fields
            if f.is_relation and f.remote_field.model is target
        )
        label = "email" if target._meta.model_name == "user" else "name"
        rows = m2m_model.objects.filter(history_id__in=history_ids).values_list(
            "history_id", f"{target_field}__{label}"
        )
        per_record: dict[int, list[str]] = {}
        for history_id, value in rows:
            per_record.setdefault(history_id, []).append(value)
        snapshots[name] = {k: sorted(v) for k, v in per_record.items()}
    return snapshots


def timeline(history_queryset, *, subject=str, limit=200) -> list[TimelineEntry]:
    """Who changed what and when, old → new, newest first, in a fixed number of queries.

    ``history_queryset`` may span several objects of one model (a dataset's fields, say);
    each entry compares a record with the previous record of the same object.
    """
    history_model = history_queryset.model
    fk_names = [
        f.name
        for f in history_model.instance_type._meta.concrete_fields
        if f.is_relation and f.name in {g.name for g in history_model._meta.fields}
    ]
    records = list(
        history_queryset.select_related("history_user", *fk_names).order_by(
            "history_date", "history_id"
        )
    )
    tracked = [
        f
        for f in history_model.instance_type._meta.concrete_fields
        if f.name not in HIDDEN_FIELDS and f.name in {g.name for g in history_model._meta.fields}
    ]
    m2m_names = [f.name for f in getattr(history_model, "_history_m2m_fields", [])]
    snapshots = _m2m_snapshots(history_model, m2m_names, [r.history_id for r in records])

    def state(record):
        values = {f.verbose_name: _display(record, f) for f in tracked}
        for name in m2m_names:
            values[name] = ", ".join(snapshots[name].get(record.history_id, [])) or "—"
        return values

    entries: list[TimelineEntry] = []
    previous_state: dict[object, dict] = {}
    open_entry: dict[object, tuple[TimelineEntry, dict | None]] = {}
    pk_name = history_model.instance_type._meta.pk.attname
    for record in records:
        key = getattr(record, pk_name)
        current = state(record)
        before = previous_state.get(key)
        last = open_entry.get(key)
        changed_names = (
            set(current) if before is None else {n for n in current if before.get(n) != current[n]}
        )
        if (
            last is not None
            and last[0].who == record.history_user
            and record.history_date - last[0].when <= MERGE_WINDOW
            and record.history_type == "~"
            and changed_names <= set(m2m_names)
        ):
            # Setting tags, stewards or purposes saves once per list: one change, shown once.
            entry, base = last
        else:
            entry = TimelineEntry(
                when=record.history_date,
                who=record.history_user,
                kind=KIND_LABELS[record.history_type],
                subject=subject(record),
            )
            base = before
            entries.append(entry)
        if entry.kind != "deleted":
            entry.changes = [
                Change(name, None if base is None else base.get(name), value)
                for name, value in current.items()
                if base is None or base.get(name) != value
            ]
            if base is None:
                entry.changes = [c for c in entry.changes if c.new not in (None, "", "—")]
        open_entry[key] = (entry, base)
        previous_state[key] = current
    visible = [e for e in entries if e.kind != "changed" or e.changes]
    visible.sort(key=lambda e: e.when, reverse=True)
    return visible[:limit]
