"""The auditor's reads: one chronological stream over every history table and the access
log, an object's history with differences, and objects and grants as of a moment.

The stream is keyset-paginated. A page is ONE SQL statement: a UNION ALL of one
subquery per source (each historical table, and the access events), each taking at most
a page of its newest rows before the cursor by its own ``history_date`` index, then
ordered and cut to a page. Page 1,000 costs what page 1 does. Actor e-mails and object
labels come in two more queries, whatever the page holds.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
from dataclasses import dataclass, field
from functools import cache, cached_property

from django.apps import apps
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from governance import history
from governance.models import Role, Sensitivity, User
from governance.permissions import has_role

from .kinds import ACCESS, REDACTED, Kind, choice_label, get_kind, kinds, person_fields
from .kinds import redacted_fields as _redacted_fields

PAGE_SIZE = 50
ACTIONS = {"created": "+", "changed": "~", "deleted": "-", "accessed": "a"}
ACTION_LABELS = {code: name for name, code in ACTIONS.items()}
FILTER_NAMES = ("kind", "object", "actor", "action", "since", "until")


def may_audit(user) -> bool:
    """Only auditors and administrators see the audit workspace."""
    return bool(getattr(user, "is_authenticated", False)) and has_role(
        user, Role.AUDITOR, Role.ADMINISTRATOR
    )


class BadFilter(ValueError):
    """A filter or cursor the timeline cannot use; the message says why, for people."""

    @property
    def message(self) -> str:
        return str(self.args[0])


# --- filters and cursor ---------------------------------------------------------------


def _aware(value: datetime.datetime) -> datetime.datetime:
    if timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


def parse_moment(raw: str, *, name: str, end_of_day: bool = False) -> datetime.datetime | None:
    """A date (``2025-03-01``) or date and time (``2025-03-01T14:30``, optional zone).

    A date alone means the start of that day, or with ``end_of_day`` the start of the
    next (for "until", which is exclusive then)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    problem = BadFilter(
        f"“{raw}” is not a valid {name}: use a date like 2025-03-01 or a date and "
        "time like 2025-03-01T14:30."
    )
    try:
        day = parse_date(raw)
        moment = None if day else parse_datetime(raw.replace(" ", "T", 1))
    except ValueError:
        raise problem from None
    if day is not None:
        start = datetime.datetime.combine(day, datetime.time())
        if end_of_day:
            start += datetime.timedelta(days=1)
        return _aware(start)
    if moment is None:
        raise problem
    moment = _aware(moment)
    return moment + datetime.timedelta(microseconds=1) if end_of_day else moment


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's (date, source, id)."""

    when: datetime.datetime
    source: str
    id: int

    def encode(self) -> str:
        raw = f"{self.when.isoformat()}|{self.source}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        problem = BadFilter("This page link is not valid (bad cursor): start from the first page.")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            when, source, pk = raw.split("|")
            cursor = cls(datetime.datetime.fromisoformat(when), source, int(pk))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise problem from None
        if source not in _sources() or timezone.is_naive(cursor.when):
            raise problem
        return cursor


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    object: int | None = None
    actor: str = ""
    actor_id: int | None = None
    action: str = ""
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None  # exclusive
    cursor: Cursor | None = None
    raw: dict = field(default_factory=dict)  # as typed, for links and export headers

    def query(self, **extra) -> dict[str, str]:
        """The filters as GET parameters (without the cursor), plus ``extra``."""
        return {k: v for k, v in {**self.raw, **extra}.items() if v}


def parse_filters(params) -> Filters:
    """Filters from GET parameters; BadFilter with a readable message if any is wrong."""
    raw = {name: (params.get(name) or "").strip() for name in FILTER_NAMES}
    kind_name = raw["kind"].lower()
    if kind_name and get_kind(kind_name) is None:
        raise BadFilter(f"Unknown kind “{raw['kind']}”. Known kinds: {', '.join(sorted(kinds()))}.")
    object_id = None
    if raw["object"]:
        if not kind_name:
            raise BadFilter("Choose a kind to filter by object (kind=request&object=12).")
        if not raw["object"].isdigit():
            raise BadFilter(f"“{raw['object']}” is not an object id: use a number.")
        object_id = int(raw["object"])
    action = raw["action"].lower()
    if action and action not in ACTIONS:
        raise BadFilter(
            f"Unknown action “{raw['action']}”: use created, changed, deleted or accessed."
        )
    actor_id = None
    if raw["actor"]:
        actor_id = (
            User.objects.filter(email__iexact=raw["actor"]).values_list("pk", flat=True).first()
        )
        if actor_id is None:
            raise BadFilter(f"No user has the e-mail “{raw['actor']}”.")
    since = parse_moment(raw["since"], name="“since” date")
    until = parse_moment(raw["until"], name="“until” date", end_of_day=True)
    if since and until and until <= since:
        raise BadFilter("“Until” must be after “since”.")
    cursor_text = (params.get("cursor") or "").strip()
    cursor = Cursor.decode(cursor_text) if cursor_text else None
    return Filters(
        kind=kind_name,
        object=object_id,
        actor=raw["actor"],
        actor_id=actor_id,
        action=action,
        since=since,
        until=until,
        cursor=cursor,
        raw=raw | {"kind": kind_name, "action": action},
    )


# --- sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One table the timeline reads, with the columns it needs."""

    kind: Kind
    index: int  # its place in the (date, source, id) order
    table: str
    date: str
    id: str
    object: str
    actor: str
    action: str | None  # None: every row is an access
    foreign_keys: dict  # {target model: [column, ...]}
    columns: dict  # {model field name: column}


def _source(kind: Kind, index: int) -> Source:
    if kind.history is None:  # the access log
        model = kind.model
        table, date, id_, object_, actor, action = (
            model._meta.db_table,
            model._meta.get_field("at").column,
            model._meta.pk.column,
            model._meta.get_field("grant").column,
            model._meta.get_field("user").column,
            None,
        )
        instance_fields = model._meta.concrete_fields
        fields_by_name = {f.name: f for f in instance_fields}
    else:
        model = kind.history
        table, date, id_, actor, action = (
            model._meta.db_table,
            model._meta.get_field("history_date").column,
            model._meta.get_field("history_id").column,
            model._meta.get_field("history_user").column,
            model._meta.get_field("history_type").column,
        )
        object_ = model._meta.get_field(kind.model._meta.pk.attname).column
        names = {f.name for f in kind.model._meta.concrete_fields}
        fields_by_name = {f.name: f for f in model._meta.fields if f.name in names}
    foreign_keys: dict = {}
    for f in fields_by_name.values():
        if f.is_relation and (f.many_to_one or f.one_to_one):
            foreign_keys.setdefault(f.remote_field.model, []).append(f.column)
    return Source(
        kind=kind,
        index=index,
        table=table,
        date=date,
        id=id_,
        object=object_,
        actor=actor,
        action=action,
        foreign_keys=foreign_keys,
        columns={name: f.column for name, f in fields_by_name.items()},
    )


@cache
def _sources() -> dict[str, Source]:
    return {kind.name: _source(kind, i) for i, kind in enumerate(kinds().values())}


def _by_index() -> dict[int, Source]:
    return {s.index: s for s in _sources().values()}


def _object_condition(source: Source, filters: Filters, qn) -> tuple[str, list] | None:
    """Rows of ``source`` about the filtered object: the object itself, and rows of
    other kinds that point to it (a request's votes, decisions, grants and the reads
    through those grants)."""
    target = get_kind(filters.kind)
    pk = filters.object
    if target.name == ACCESS:  # the access log's object is the grant read through
        return (f"{qn(source.object)} = %s", [pk]) if source.kind.name == ACCESS else None
    if source.kind.name == target.name:
        return f"{qn(source.object)} = %s", [pk]
    parts, params = [], []
    for column in source.foreign_keys.get(target.model, []):
        parts.append(f"{qn(column)} = %s")
        params.append(pk)
    if source.kind.name == ACCESS and target.name == "request":
        grant = source.kind.model._meta.get_field("grant").remote_field.model
        request_column = qn(grant._meta.get_field("request").column)
        parts.append(
            f"{qn(source.object)} IN (SELECT {qn(grant._meta.pk.column)}"  # noqa: S608
            f" FROM {qn(grant._meta.db_table)} WHERE {request_column} = %s)"
        )
        params.append(pk)
    if not parts:
        return None
    return "(" + " OR ".join(parts) + ")", params


def _source_sql(source: Source, filters: Filters, limit: int) -> tuple[str, list] | None:
    qn = connection.ops.quote_name
    adapt = connection.ops.adapt_datetimefield_value
    where, params = [], []
    if filters.kind:
        if filters.object is None:
            if source.kind.name != filters.kind:
                return None
        else:
            condition = _object_condition(source, filters, qn)
            if condition is None:
                return None
            where.append(condition[0])
            params += condition[1]
    if filters.action:
        if (filters.action == "accessed") != (source.action is None):
            return None
        if source.action is not None:
            where.append(f"{qn(source.action)} = %s")
            params.append(ACTIONS[filters.action])
    if filters.actor_id is not None:
        where.append(f"{qn(source.actor)} = %s")
        params.append(filters.actor_id)
    date, id_ = qn(source.date), qn(source.id)
    if filters.since:
        where.append(f"{date} >= %s")
        params.append(adapt(filters.since))
    if filters.until:
        where.append(f"{date} < %s")
        params.append(adapt(filters.until))
    cursor = filters.cursor
    if cursor:
        cursor_index = _sources()[cursor.source].index
        when = adapt(cursor.when)
        if source.index == cursor_index:
            where.append(f"({date}, {id_}) < (%s, %s)")
            params += [when, cursor.id]
        elif source.index < cursor_index:
            where.append(f"{date} <= %s")
            params.append(when)
        else:
            where.append(f"{date} < %s")
            params.append(when)
    action = qn(source.action) if source.action else "'a'"
    sql = (
        f"SELECT * FROM (SELECT {date} AS d, {source.index} AS s, {id_} AS i,"  # noqa: S608
        f" {action} AS a, {qn(source.object)} AS o, {qn(source.actor)} AS u"
        f" FROM {qn(source.table)}"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {date} DESC, {id_} DESC LIMIT {int(limit)}) AS q{source.index}"
    )
    return sql, params


def page_sql(filters: Filters, limit: int) -> tuple[str, list] | None:
    """The one statement a page costs, or None when no source can match."""
    parts, params = [], []
    for source in _sources().values():
        built = _source_sql(source, filters, limit)
        if built:
            parts.append(built[0])
            params += built[1]
    if not parts:
        return None
    union = " UNION ALL ".join(parts)
    sql = f"SELECT d, s, i, a, o, u FROM ({union}) AS page ORDER BY d DESC, s DESC, i DESC LIMIT {int(limit)}"  # noqa: E501, S608
    return sql, params


# --- events ---------------------------------------------------------------------------


@dataclass
class Event:
    """One row of the timeline. What a row shows (URLs, labels, dates) is computed once
    per row, on first use, and kept."""

    when: datetime.datetime
    kind: Kind
    id: int  # the history row (or access event) id
    action: str  # created, changed, deleted, accessed
    object_id: int
    actor_id: int | None
    actor: str = ""
    object_label: str = ""
    context_kind: Kind | None = None
    context_id: int | None = None
    context_label: str = ""

    @cached_property
    def cursor(self) -> str:
        return Cursor(self.when, self.kind.name, self.id).encode()

    @cached_property
    def is_access(self) -> bool:
        return self.kind.name == ACCESS

    @cached_property
    def object_kind(self) -> Kind:
        return get_kind("grant") if self.is_access else self.kind

    @cached_property
    def kind_label(self) -> str:
        return self.kind.verbose_name

    @cached_property
    def object_url(self) -> str:
        return self.object_kind.url(self.object_id)

    @cached_property
    def context_kind_label(self) -> str:
        return self.context_kind.verbose_name if self.context_kind else ""

    @cached_property
    def context_url(self) -> str:
        if self.context_kind is None or self.context_id is None:
            return ""
        return self.context_kind.url(self.context_id)

    @cached_property
    def _local(self) -> datetime.datetime:
        """``when`` in the current time zone, as templates show dates."""
        return timezone.localtime(self.when)

    @cached_property
    def when_iso(self) -> str:
        """What ``{{ when|date:"c" }}`` shows."""
        return self._local.isoformat()

    @cached_property
    def when_text(self) -> str:
        """What ``{{ when|date:"Y-m-d H:i:s" }}`` shows."""
        d = self._local
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"

    def as_dict(self) -> dict:
        return {
            "at": self.when.isoformat(),
            "action": self.action,
            "kind": self.kind.name,
            "object_kind": self.object_kind.name,
            "object_id": self.object_id,
            "object": self.object_label,
            "context_kind": self.context_kind.name if self.context_kind else None,
            "context_id": self.context_id,
            "context": self.context_label or None,
            "actor": self.actor or None,
            "cursor": self.cursor,
        }


def _moment(value) -> datetime.datetime:
    if isinstance(value, str):  # SQLite returns a UNION's dates as text (UTC)
        value = datetime.datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=datetime.UTC)
    return value


def _label_sql(source: Source, history_ids: list[int]) -> tuple[str, list]:
    qn = connection.ops.quote_name
    kind = source.kind
    labels = [f"CAST(h.{qn(source.columns[name])} AS TEXT)" for name in kind.label_fields]
    labels += ["CAST(NULL AS TEXT)"] * (2 - len(labels))
    context, join = "CAST(NULL AS BIGINT)", ""
    context_label = "CAST(NULL AS TEXT)"
    target = kind.context_kind
    if target is not None and target.label_fields:
        column = source.columns[kind.context_field]
        context = f"h.{qn(column)}"
        model = target.model
        join = (
            f" LEFT JOIN {qn(model._meta.db_table)} p"
            f" ON p.{qn(model._meta.pk.column)} = h.{qn(column)}"
        )
        label_column = model._meta.get_field(target.label_fields[0]).column
        context_label = f"CAST(p.{qn(label_column)} AS TEXT)"
    marks = ", ".join(["%s"] * len(history_ids))
    sql = (
        f"SELECT {source.index}, h.{qn(source.id)}, {labels[0]}, {labels[1]},"  # noqa: S608
        f" {context}, {context_label} FROM {qn(source.table)} h{join}"
        f" WHERE h.{qn(source.id)} IN ({marks})"
    )
    return sql, list(history_ids)


def _label(kind: Kind, values, hidden: set[str]) -> str:
    shown = []
    for name, value in zip(kind.label_fields, values, strict=False):
        if value in (None, ""):
            continue
        shown.append(REDACTED if name in hidden else choice_label(kind, name, value))
    if kind.name == ACCESS and len(shown) == 2:
        return f"{shown[0]} · {shown[1]} people"
    return " · ".join(shown)


def _annotate(events: list[Event], viewer) -> None:
    """Actor e-mails (one query) and object and context labels (one query)."""
    if not events:
        return
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    emails = dict(User.objects.filter(pk__in=actor_ids).values_list("pk", "email"))
    wanted: dict[str, list[int]] = {}
    for e in events:
        wanted.setdefault(e.kind.name, []).append(e.id)
    sources = _sources()
    parts, params = [], []
    for name, ids in wanted.items():
        sql, p = _label_sql(sources[name], ids)
        parts.append(sql)
        params += p
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        found = {(row[0], row[1]): row[2:] for row in cursor.fetchall()}
    hidden = {name: _redacted_fields(get_kind(name), viewer) for name in wanted}
    for e in events:
        e.actor = emails.get(e.actor_id, "")
        row = found.get((sources[e.kind.name].index, e.id))
        if row is None:
            continue
        first, second, context_id, context_label = row
        e.object_label = _label(e.kind, (first, second), hidden[e.kind.name])
        if context_id is not None:
            e.context_kind = e.kind.context_kind
            e.context_id = int(context_id)
            e.context_label = context_label or f"#{context_id}"


@dataclass
class Page:
    events: list[Event]
    next: str | None  # the cursor of the next page, None on the last


def timeline_page(*, viewer, filters: Filters, size: int = PAGE_SIZE) -> Page:
    """One page of the timeline, newest first: one query, plus two for labels."""
    built = page_sql(filters, size + 1)
    if built is None:
        return Page([], None)
    by_index = _by_index()
    with connection.cursor() as cursor:
        cursor.execute(*built)
        rows = cursor.fetchall()
    events = [
        Event(
            when=_moment(d),
            kind=by_index[s].kind,
            id=int(i),
            action=ACTION_LABELS.get(a, a),
            object_id=int(o),
            actor_id=u,
        )
        for d, s, i, a, o, u in rows[:size]
    ]
    _annotate(events, viewer)
    has_more = len(rows) > size
    return Page(events, events[-1].cursor if has_more and events else None)


def timeline_iter(*, viewer, filters: Filters, batch: int = 500):
    """Every event the filters select, newest first, a keyset page at a time."""
    while True:
        page = timeline_page(viewer=viewer, filters=filters, size=batch)
        yield from page.events
        if page.next is None:
            return
        filters = dataclasses.replace(filters, cursor=Cursor.decode(page.next))


# --- one object: history, as of -------------------------------------------------------


def _history_records(kind: Kind, pk: int):
    return kind.history.objects.filter(**{kind.model._meta.pk.attname: pk})


def _person_display_map(kind: Kind, records, viewer) -> dict[str, str]:
    """How history shows the people an object points to (name or e-mail), mapped to
    their external id, for a viewer who may not see names."""
    names = person_fields(kind)
    if not names or viewer.may_see(Sensitivity.PERSONAL):
        return {}
    person = apps.get_model("governance", "Person")
    ids = set()
    for row in records.values_list(*[f"{n}_id" for n in names]):
        ids |= {v for v in row if v is not None}
    mapping = {}
    for p in person.objects.filter(pk__in=ids):
        shown = getattr(p, "email", None) or str(p)
        mapping[shown] = f"{p.external_id} (name {REDACTED})"
    return mapping


def _hidden_for(kind: Kind, records, viewer) -> set[str]:
    field_ids = ()
    if kind.name == "correction":
        field_ids = list(records.values_list("field_id", flat=True))
    return _redacted_fields(kind, viewer, field_ids=field_ids)


def _verbose(kind: Kind, names) -> set[str]:
    return {str(kind.model._meta.get_field(n).verbose_name) for n in names}


def object_history(*, viewer, kind: Kind, pk: int, limit: int = 1000) -> list:
    """Every version of one object, newest first, with old → new per field and who made
    each change; values above the viewer's clearance are redacted. None if the object
    has no history (it never existed)."""
    records = _history_records(kind, pk)
    entries = history.timeline(records, subject=lambda r: kind.verbose_name, limit=limit)
    if not entries:
        return None
    hidden = _verbose(kind, _hidden_for(kind, records, viewer))
    people = _person_display_map(kind, records, viewer)
    person_labels = _verbose(kind, person_fields(kind))
    for entry in entries:
        for change in entry.changes:
            if change.field in hidden:
                change.old = REDACTED if change.old not in (None, "") else change.old
                change.new = REDACTED if change.new not in (None, "") else change.new
            elif change.field in person_labels:
                change.old = people.get(change.old, change.old)
                change.new = people.get(change.new, change.new)
    return entries


@dataclass
class AsOf:
    kind: Kind
    pk: int
    at: datetime.datetime
    exists: bool
    message: str = ""
    version_at: datetime.datetime | None = None
    version_by: str = ""
    fields: list[tuple[str, str, object]] = field(default_factory=list)  # (name, label, value)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind.name,
            "id": self.pk,
            "at": self.at.isoformat(),
            "exists": self.exists,
            "message": self.message or None,
            "version_at": self.version_at.isoformat() if self.version_at else None,
            "version_by": self.version_by or None,
            "fields": {name: value for name, _, value in self.fields},
        }


def object_as_of(*, viewer, kind: Kind, pk: int, at: datetime.datetime) -> AsOf | None:
    """The object as it stood at ``at`` (what ``history.as_of(at)`` returns, read from
    the historical record so a deleted object can be shown too). None if it never
    existed."""
    records = _history_records(kind, pk)
    model = kind.history
    tracked = [
        f
        for f in kind.model._meta.concrete_fields
        if f.name not in history.HIDDEN_FIELDS and f.name in {g.name for g in model._meta.fields}
    ]
    fk_names = [f.name for f in tracked if f.is_relation]
    record = (
        records.filter(history_date__lte=at)
        .select_related("history_user", *fk_names)
        .order_by("-history_date", "-history_id")
        .first()
    )
    if record is None:
        if not records.exists():
            return None
        return AsOf(kind, pk, at, False, f"This {kind.verbose_name} did not exist yet then.")
    result = AsOf(
        kind,
        pk,
        at,
        record.history_type != "-",
        version_at=record.history_date,
        version_by=getattr(record.history_user, "email", ""),
    )
    if not result.exists:
        result.message = f"This {kind.verbose_name} had been deleted by then."
        return result
    hidden = _redacted_fields(
        kind,
        viewer,
        field_ids=[record.field_id] if kind.name == "correction" else (),
    )
    person_names = set(person_fields(kind))
    for f in tracked:
        value = history._display(record, f)
        if f.name in hidden and value not in (None, ""):
            value = REDACTED
        elif f.name in person_names and not viewer.may_see(Sensitivity.PERSONAL):
            person = getattr(record, f.name, None)
            value = f"{person.external_id} (name {REDACTED})" if person else value
        result.fields.append((f.name, str(f.verbose_name), value))
    m2m = [f.name for f in getattr(model, "_history_m2m_fields", [])]
    snapshots = history._m2m_snapshots(model, m2m, [record.history_id])
    for name in m2m:
        label = str(kind.model._meta.get_field(name).verbose_name)
        result.fields.append((name, label, ", ".join(snapshots[name].get(record.history_id, []))))
    return result


@dataclass
class GrantAsOf:
    id: int
    request_id: int
    request: str
    grantee: str
    output_level: str
    k: int
    valid_from: datetime.date
    valid_until: datetime.date
    fields: list[str]

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "request": self.request,
            "grantee": self.grantee,
            "output_level": self.output_level,
            "k": self.k,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "fields": self.fields,
        }


def grants_as_of(*, at: datetime.datetime) -> list[GrantAsOf]:
    """Grants active at ``at``: their state then (status active, and the day within
    their validity window), in three queries."""
    grant = apps.get_model("analytics", "Grant")
    day = timezone.localdate(at)
    # What Grant.history.as_of(at) selects (each grant's last version by then, unless
    # a deletion), kept as historical records so request and grantee come along.
    records = list(
        grant.history.filter(history_date__lte=at)
        .latest_of_each()
        .exclude(history_type="-")
        .filter(status="active", valid_from__lte=day, valid_until__gte=day)
        .select_related("request", "grantee")
        .order_by("-valid_from", "-id")
    )
    kind = get_kind("grant")
    snapshots = history._m2m_snapshots(kind.history, ["fields"], [r.history_id for r in records])
    return [
        GrantAsOf(
            id=r.id,
            request_id=r.request_id,
            request=r.request.title if r.request else f"#{r.request_id}",
            grantee=getattr(r.grantee, "email", ""),
            output_level=choice_label(kind, "output_level", r.output_level),
            k=r.k,
            valid_from=r.valid_from,
            valid_until=r.valid_until,
            fields=snapshots["fields"].get(r.history_id, []),
        )
        for r in records
    ]


def object_history_exists(*, kind: Kind, pk: int) -> bool:
    return _history_records(kind, pk).exists()
