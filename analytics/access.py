"""The governed access layer: the only way record values leave Custos.

Every read goes through ``grant_scope``, which decides at query time what the grant
still allows this user to see (usable grant, granted and approved fields, clearance,
exclusions, cohort, consent), and every read writes an append-only access event with
the people it included.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.http import Http404
from django.utils import timezone

from consent.selectors import consent_filter
from governance import csvsafe
from governance.models import Dataset, Field, Record

from .models import AccessEvent, AccessKind, ExtractFile, Grant, GrantStatus, OutputLevel

PREVIEW_ROWS = 50
_LEVELS = [OutputLevel.AGGREGATE, OutputLevel.PSEUDONYMISED, OutputLevel.IDENTIFIED]


class AccessDenied(Exception):
    """The grant exists and is the caller's, but allows no access now (shown as 403)."""


class NotGranted(ValueError):
    """A field asked for is not one the grant lets this user read (shown as 400)."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"{name!r} is not a field this grant lets you read.")


@dataclass
class Scope:
    """What one user may read through one grant from one dataset, right now."""

    grant: Grant
    user: object
    dataset: Dataset
    fields: list[Field]
    output_level: str
    k: int
    # The approved cohort, {"dataset.field": value}, and its fields: every read applies it.
    cohort: dict | None = None
    cohort_fields: list[Field] | None = None

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def cohort_filters(self) -> list[tuple[Field, object]]:
        """(field, value) for each filter of the cohort, for pages to name by label."""
        return list(zip(self.cohort_fields or [], (self.cohort or {}).values(), strict=True))

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise NotGranted(name)

    @property
    def extract_fields(self) -> list[Field]:
        """Identifier fields never leave in a pseudonymised extract."""
        if self.output_level == OutputLevel.IDENTIFIED:
            return self.fields
        return [f for f in self.fields if not f.is_identifier]


def grant_for_user(*, user, pk: int) -> Grant:
    """The caller's own grant (404 for anyone else's, or a missing one)."""
    grant = (
        Grant.objects.select_related("request__purpose", "decision", "grantee")
        .filter(pk=pk, grantee=user)
        .first()
    )
    if grant is None or not getattr(user, "is_authenticated", False):
        raise Http404("No such grant.")
    return grant


def _approved_version(grant: Grant):
    """The request version the committee approved, if recorded."""
    return grant.request.versions.filter(number=grant.decision.round).first()


def _qualified(field: Field) -> str:
    return f"{field.dataset.slug}.{field.name}"


def _withheld(user, field: Field, approved: set[str] | None) -> str | None:
    """Why ``user`` may not use a granted field now, or None: one rule for a field whose
    values leave and for a field that selects the people."""
    if approved is not None and _qualified(field) not in approved:
        return "is not in the request the committee approved"
    if field.excluded:
        return "is excluded from analytics in the registry"
    if not user.may_see(field.sensitivity):
        return f"is {field.get_sensitivity_display().lower()} data, above your clearance"
    return None


def _cohort(
    user, grant: Grant, version, granted: list[Field], approved
) -> tuple[dict | None, list[Field]]:
    """The cohort the committee approved and its fields, each usable now; else AccessDenied.
    A cohort field is never dropped: that would widen the cohort."""
    cohort = grant.request.cohort
    if version is not None:
        cohort = version.content.get("cohort", cohort)
    by_name = {_qualified(f): f for f in granted}
    fields = []
    for key, value in (cohort or {}).items():
        field = by_name.get(key)
        if field is None:
            used, reason = f"{key} = {value}", "is not one of the fields the committee approved"
        else:
            used, reason = (
                f"{field.display_label} ({key} = {value})",
                _withheld(user, field, approved),
            )
        if reason:
            raise AccessDenied(
                f"This grant's cohort selects people by {used}, which {reason}. "
                "Nothing is read: leaving the filter out would widen the cohort."
            )
        fields.append(field)
    return cohort or None, fields


def grant_scope(*, user, grant: Grant, dataset_slug: str | None = None) -> Scope:
    """What the grant lets ``user`` read now. Rules, checked on every access:
    the grant is active and within its window; only fields both granted and in the
    approved request (so a grant edited by hand gives nothing more), not excluded,
    and within the user's clearance (``_withheld``); the approved cohort, each of whose
    fields passes that same test or the read is refused (``_cohort``); the most
    restrictive of the grant's and the decision's output levels; k at least the
    decision's."""
    if grant.grantee_id != user.pk:
        raise Http404("No such grant.")
    today = timezone.localdate()
    if grant.status != GrantStatus.ACTIVE:
        raise AccessDenied(f"This grant is {grant.get_status_display().lower()}.")
    if today < grant.valid_from:
        raise AccessDenied(f"This grant is valid from {grant.valid_from:%d %b %Y}.")
    if today > grant.valid_until:
        raise AccessDenied(f"This grant ended on {grant.valid_until:%d %b %Y}.")
    version = _approved_version(grant)
    approved = set(version.content.get("fields", [])) if version else None
    granted = list(grant.fields.select_related("dataset").order_by("dataset__slug", "position"))
    fields = [f for f in granted if _withheld(user, f, approved) is None]
    cohort, cohort_fields = _cohort(user, grant, version, granted, approved)
    datasets = {f.dataset.slug: f.dataset for f in fields}
    if dataset_slug is None:
        if len(datasets) > 1:
            raise NotGranted("dataset (this grant spans several: name one)")
        dataset_slug = next(iter(datasets), None)
    if dataset_slug not in datasets:
        raise AccessDenied("This grant gives you no field of that dataset.")
    levels = [grant.output_level, grant.request.output_level]
    if grant.decision.aggregate_only:
        levels.append(OutputLevel.AGGREGATE)
    return Scope(
        grant=grant,
        user=user,
        dataset=datasets[dataset_slug],
        fields=[f for f in fields if f.dataset.slug == dataset_slug],
        output_level=min(levels, key=_LEVELS.index),
        k=max(grant.k, grant.decision.min_cohort),
        cohort=cohort,
        cohort_fields=cohort_fields,
    )


def records_for(scope: Scope) -> QuerySet[Record]:
    """The records the scope covers: its dataset, the approved cohort, consent at read time."""
    records = Record.objects.filter(dataset=scope.dataset).filter(
        consent_filter(purpose=scope.grant.request.purpose)
    )
    for key, value in (scope.cohort or {}).items():
        slug, _, name = key.partition(".")
        if slug == scope.dataset.slug:
            records = records.filter(**{f"values__{name}": value})
        else:
            others = Record.objects.filter(dataset__slug=slug, **{f"values__{name}": value})
            records = records.filter(person_id__in=others.values("person_id"))
    return records


# --- pseudonyms ---------------------------------------------------------------------


def pseudonym(key: bytes, external_id: str) -> str:
    return hmac.new(bytes(key), external_id.encode(), hashlib.sha256).hexdigest()


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's outer and inner keys, so PostgreSQL can compute the same HMAC-SHA256 as
    ``pseudonym`` with its built-in sha256 (no extension): sha256(okey || sha256(ikey || m))."""
    block = bytes(key).ljust(64, b"\0")
    return bytes(b ^ 0x5C for b in block), bytes(b ^ 0x36 for b in block)


# --- extracts -----------------------------------------------------------------------


def extract_header(scope: Scope) -> list[str]:
    person = "external_id" if scope.output_level == OutputLevel.IDENTIFIED else "pseudonym"
    return [person] + [f.name for f in scope.extract_fields]


def _require_extract(scope: Scope) -> None:
    if scope.output_level == OutputLevel.AGGREGATE:
        raise AccessDenied("This grant allows aggregates only.")


def extract_rows(scope: Scope, records: QuerySet, limit: int | None = None) -> Iterator[list]:
    """Rows of the extract (header excluded), streamed from the database."""
    names = [f.name for f in scope.extract_fields]
    identified = scope.output_level == OutputLevel.IDENTIFIED
    key = bytes(scope.grant.pseudonym_key)
    rows = records.order_by("id").values_list("person__external_id", "values")
    if limit is not None:
        rows = rows[:limit]
    for external_id, values in rows.iterator(chunk_size=2000):
        person = external_id if identified else pseudonym(key, external_id)
        yield [person] + [values.get(n) for n in names]


def _log(
    scope: Scope, kind: str, subjects: QuerySet, rows: int, detail=None, released=None
) -> AccessEvent:
    """Write the access event, naming the fields that left, and, set-based, one subject
    row per person it included. Nothing is ever updated afterwards (append-only)."""
    people = subjects.values("person_id").distinct()
    event = _event_create(
        scope, kind, people=people.count(), rows=rows, detail=detail, released=released
    )
    sql, params = people.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_accesseventsubject (event_id, person_id) "  # noqa: S608
            f"SELECT %s, s.person_id FROM ({sql}) AS s",
            [event.pk, *params],
        )
    return event


def _log_in_one_pass(scope: Scope, kind: str, records: QuerySet) -> AccessEvent:
    """``_log`` for a whole extract on PostgreSQL, in one pass over the rows: the
    event's id is taken from its sequence first, so the subjects, the people count and
    the row count come from a single grouped scan, and the event row is then written
    once, complete (it can never be updated)."""
    sql, params = records.values("person_id").query.sql_with_params()
    table = AccessEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")
        event_id = cursor.fetchone()[0]
        cursor.execute(
            f"WITH s AS (SELECT person_id, count(*) AS n FROM ({sql}) AS r GROUP BY person_id),"  # noqa: S608
            " inserted AS (INSERT INTO analytics_accesseventsubject (event_id, person_id)"
            " SELECT %s, person_id FROM s)"
            " SELECT count(*), coalesce(sum(n), 0) FROM s",
            [*params, event_id],
        )
        people, rows = cursor.fetchone()
    return _event_create(scope, kind, people=people, rows=rows, pk=event_id)


def _event_create(
    scope: Scope, kind: str, *, people: int, rows: int, detail=None, released=None, pk=None
) -> AccessEvent:
    """The event row, written once and complete: the table refuses later updates.
    ``released`` names the fields that left (by default the extract's columns);
    ``detail["cohort"]`` is the cohort that chose the people ({"dataset.field": value}),
    on every event of a grant that has one."""
    if released is None:
        released = [f.name for f in scope.extract_fields]
    detail = dict(detail or {})
    if scope.cohort:
        detail["cohort"] = scope.cohort
    return AccessEvent.objects.create(
        pk=pk,
        grant=scope.grant,
        user=scope.user,
        kind=kind,
        dataset=scope.dataset,
        field_names=released,
        output_level=scope.output_level,
        people=people,
        rows=rows,
        detail=detail,
    )


@transaction.atomic
def preview(scope: Scope) -> tuple[list[str], list[list]]:
    """The first rows of the extract, logged with the people they show."""
    _require_extract(scope)
    records = records_for(scope)
    rows = list(extract_rows(scope, records, limit=PREVIEW_ROWS))
    shown = records.filter(
        pk__in=list(records.order_by("id").values_list("pk", flat=True)[:PREVIEW_ROWS])
    )
    _log(scope, AccessKind.PREVIEW, shown, len(rows))
    return extract_header(scope), rows


def extract_csv(scope: Scope, kind: str = AccessKind.EXTRACT, *, extract=None) -> Iterator[bytes]:
    """The whole extract as CSV, streamed. The access event (with every person the
    extract includes) is written before the first byte leaves.

    With ``extract`` (a prepared ExtractFile) the event is written once per file: under
    the file's row lock, a file whose read was logged already (a task run again after
    its worker died) is not logged a second time."""
    _require_extract(scope)
    records = records_for(scope)
    with transaction.atomic():
        if extract is None or not _logged_already(extract):
            if connection.vendor == "postgresql":
                event = _log_in_one_pass(scope, kind, records)
            else:
                event = _log(scope, kind, records, records.count())
            if extract is not None:
                ExtractFile.objects.filter(pk=extract.pk).update(access_event=event)
    if connection.vendor == "postgresql":
        return _copy_stream(scope, records)
    return _python_stream(scope, records)


def _logged_already(extract) -> bool:
    """Lock the extract file's row (until the caller's transaction ends) and say whether
    its read has an event already."""
    locked = ExtractFile.objects.select_for_update().filter(pk=extract.pk).first()
    return locked is not None and locked.access_event_id is not None


def _python_stream(scope: Scope, records: QuerySet) -> Iterator[bytes]:
    """The CSV built in Python, every text cell neutralised (docs/csv.md): record for
    record what ``_copy_stream`` writes."""
    lines = csvsafe.CsvLines()
    chunk = [lines.line(extract_header(scope))]
    for n, row in enumerate(extract_rows(scope, records), start=1):
        chunk.append(lines.line(row))
        if n % 1000 == 0:
            yield "".join(chunk).encode()
            chunk = []
    yield "".join(chunk).encode()


def _copy_stream(scope: Scope, records: QuerySet) -> Iterator[bytes]:
    """PostgreSQL builds the CSV itself (COPY ... TO STDOUT): filtering, pseudonyms,
    neutralising text cells (docs/csv.md) and formatting all happen in the database;
    Python only passes the bytes on."""
    identified = scope.output_level == OutputLevel.IDENTIFIED
    okey, ikey = _pads(scope.grant.pseudonym_key)
    select_sql, select_params = (
        records.order_by()
        .annotate(_external_id=F("person__external_id"))
        .values("_external_id", "values")
        .query.sql_with_params()
    )
    person = (
        "s._external_id"
        if identified
        else "encode(sha256(%s::bytea || sha256(%s::bytea || convert_to(s._external_id, 'UTF8'))),"
        " 'hex')"
    )
    person_params = [] if identified else [okey, ikey]
    names = [f.name for f in scope.extract_fields]
    values = "".join(f', s."values" ->> %s AS c{i}' for i in range(len(names)))
    # Every column goes through the rule: a number's text (-5, 3.25) never changes, and
    # a field whose type was changed after loading may still hold text.
    quote_name = connection.ops.quote_name
    columns = ", ".join(
        f"{csvsafe.sql_neutralise(column)} AS {quote_name(name)}"
        for column, name in zip(
            ["t.p", *(f"t.c{i}" for i in range(len(names)))],
            csvsafe.safe_row(extract_header(scope)),
            strict=True,
        )
    )
    # OFFSET 0 keeps PostgreSQL from folding the inner select into the outer one, which
    # would compute each value (and each pseudonym) once per mention in the rule.
    query = (
        f"COPY (SELECT {columns} FROM (SELECT {person} AS p{values} "  # noqa: S608
        f"FROM ({select_sql}) AS s OFFSET 0) AS t) TO STDOUT WITH (FORMAT csv, HEADER)"
    )
    params = [*person_params, *names, *select_params]

    def stream():
        with connection.cursor() as cursor:
            with cursor.cursor.copy(query, params) as copy:
                yield from (bytes(chunk) for chunk in copy)

    return stream()
