"""Loading records into a dataset from CSV: validated whole, written all or nothing."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from .. import jobs
from ..csvio import (
    MAX_CATEGORY_CHARS,
    MAX_ERRORS,
    MAX_TEXT_CHARS,
    ImportRejected,
    RowError,
    drain,
    open_csv,
    read_header,
    row_problem,
    value_parser,
)
from ..history import acting_as
from ..models import (
    Dataset,
    DatasetStatus,
    FieldType,
    LoadMode,
    LoadStatus,
    Person,
    Record,
    RecordLoad,
)

ProgressCallback = Callable[[int], None]


def _file_sha256(file) -> str:
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


@transaction.atomic
def record_load_create(
    *, actor, dataset: Dataset, file_name: str, mode: str = LoadMode.ADD, file=None
) -> RecordLoad:
    """Register a load before it runs, so it can be queued and watched.

    Rules: a retired dataset takes no new records. An uploaded file supersedes every
    earlier load of the same file (same SHA-256) into the same dataset that has not
    succeeded: whatever became of those (stuck, failed, or a message the broker still
    holds), only the new one can write, so uploading again never doubles the dataset.
    """
    if dataset.status == DatasetStatus.RETIRED:
        raise ValidationError("A retired dataset takes no new records.")
    # The name comes from the client (an upload, an X-File-Name header): keep it printable.
    file_name = "".join(c for c in file_name if c.isprintable())[:255] or "upload.csv"
    load = RecordLoad(dataset=dataset, file_name=file_name, mode=mode, created_by=actor, file=file)
    if file is not None:
        load.checksum = _file_sha256(file)
    load.full_clean(exclude=["file"] if file is None else None)
    with acting_as(actor):
        load.save()
        if file is not None:
            earlier = (
                RecordLoad.objects.select_for_update()
                .filter(dataset=dataset, checksum=load.checksum)
                .filter(status__in=[LoadStatus.QUEUED, LoadStatus.RUNNING, LoadStatus.FAILED])
                .exclude(pk=load.pk)
            )
            for old in earlier:  # one by one, each with its history row
                old.status = LoadStatus.SUPERSEDED
                old.superseded_by = load
                old.claim_token = None
                old.finished_at = timezone.now()
                old.save(update_fields=["status", "superseded_by", "claim_token", "finished_at"])
    return load


def record_load_run(
    *, load: RecordLoad, stream, progress: ProgressCallback | None = None
) -> RecordLoad:
    """Validate every row of ``stream`` against the dataset's fields and load it.

    ``load`` is claimed (governance/jobs.py); its result is written only while the
    claim is still its own, in the transaction that writes the records.

    Rule: a file with any bad row writes nothing (one transaction); the load is then
    kept as failed with the first errors. ``replace`` swaps the dataset's records in the
    same transaction, so readers see either the old records or the new ones.
    """
    try:
        _load(load=load, stream=stream, progress=progress)
    except ImportRejected as rejected:
        _fail(load, rejected.errors)
        raise
    except Exception:
        # Whatever broke, the load must not stay "running"; the cause goes to the log.
        # (A worker that dies raises nothing here: the sweeper finds its load.)
        _fail(load, [RowError(0, None, "the load stopped on an unexpected error; try again")])
        raise
    load.refresh_from_db()
    return load


def _fail(load: RecordLoad, errors: list[RowError]) -> None:
    """Keep the load as failed with ``errors``, while its claim is still its own."""
    with transaction.atomic(), acting_as(load.created_by):
        jobs.job_hold(load)
        load.status = LoadStatus.FAILED
        load.errors = [e.as_dict() for e in errors]
        load.rows = 0
        load.finished_at = timezone.now()
        load.save()


def records_import(
    *, actor, dataset: Dataset, stream, file_name: str, mode: str = LoadMode.ADD
) -> RecordLoad:
    """Load a CSV stream now (command line, API). Raises ImportRejected on bad input."""
    load = record_load_create(actor=actor, dataset=dataset, file_name=file_name, mode=mode)
    load = jobs.job_claim(RecordLoad, load.pk)
    return record_load_run(load=load, stream=stream)


def record_load_retry(*, actor, load: RecordLoad) -> bool:
    """Queue a load whose worker stopped again. Rule: only a load that stopped (not one
    whose file was refused, nor one superseded) and still has its file is retried; the
    import is all or nothing, so the retry starts from an empty slate."""
    if not load.file:
        return False
    return jobs.job_retry(load)


def _load(*, load: RecordLoad, stream, progress):
    dataset = load.dataset
    actor = load.created_by
    hashing, rows, line_number = open_csv(stream)
    header = read_header(rows)
    fields = {f.name: f for f in dataset.fields.all()}
    header_errors = []
    if dataset.person_column not in header:
        header_errors.append(
            RowError(0, dataset.person_column, "the person column is missing from the header")
        )
    for name in header:
        if name != dataset.person_column and name not in fields:
            header_errors.append(RowError(0, name, "unknown column: the dataset has no such field"))
    if header_errors:
        raise ImportRejected(header_errors)

    parser = _RowParser(
        header=header,
        person_index=header.index(dataset.person_column),
        fields=[fields.get(name) for name in header],
        line_number=line_number,
    )
    people = _PeopleCache()
    writer = _copy_writer if connection.vendor == "postgresql" else _executemany_writer
    people_created = 0
    with transaction.atomic(), acting_as(actor):
        # One load at a time per dataset, so a replace never interleaves with an add.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        if load.mode == LoadMode.REPLACE:
            Record.objects.filter(dataset=dataset).delete()
        for batch in _batches(parser, rows, settings.CUSTOS_IMPORT_BATCH_SIZE):
            people_created += _write_batch(
                dataset=dataset, load=load, batch=batch, actor=actor, writer=writer, people=people
            )
            if progress:
                progress(parser.rows)
        if parser.errors:
            raise ImportRejected(parser.errors[:MAX_ERRORS])
        if parser.rows == 0:
            raise ImportRejected([RowError(0, None, "the file has a header but no data rows")])
        drain(hashing)
        # The claim is checked last, under the load's row lock, in this transaction: a
        # worker given up for dead, or a load superseded meanwhile, commits nothing.
        jobs.job_hold(load)
        dataset.record_count = Record.objects.filter(dataset=dataset).count()
        dataset.save(update_fields=["record_count"])
        load.rows = parser.rows
        load.people_created = people_created
        load.checksum = hashing.sha256.hexdigest()
        load.status = LoadStatus.SUCCEEDED
        load.finished_at = timezone.now()
        load.errors = []
        load.save()


class _RowParser:
    """Turns CSV rows into (external_id, JSON text) pairs, collecting errors by row.

    Empty cells are left out of the JSON: a missing key reads as a missing value.
    This runs once per row of files with millions of rows, so text and category
    columns are checked inline; other types go through their parser.
    """

    def __init__(self, *, header, person_index, fields, line_number):
        self.width = len(header)
        self.person_index = person_index
        self.person_column = header[person_index]
        self.line_number = line_number
        self.text_columns = []  # (index, name)
        self.limits = []  # (index, name, longest text a cell may hold)
        self.shortest_limit = MAX_TEXT_CHARS
        self.id_limit = Person._meta.get_field("external_id").max_length
        self.category_columns = []  # (index, name, allowed values, parser for the error)
        self.typed_columns = []  # (index, name, parser)
        for index, (name, field) in enumerate(zip(header, fields, strict=True)):
            if index == person_index:
                continue
            parse = value_parser(field.type, field.values)
            limit = MAX_CATEGORY_CHARS if field.type == FieldType.CATEGORY else MAX_TEXT_CHARS
            self.shortest_limit = min(self.shortest_limit, limit)
            self.limits.append((index, name, limit))
            if parse is None:
                self.text_columns.append((index, name))
            elif field.type == FieldType.CATEGORY:
                self.category_columns.append((index, name, frozenset(field.values), parse))
            else:
                self.typed_columns.append((index, name, parse))
        self.errors: list[RowError] = []
        self.rows = 0
        self._dumps = json.JSONEncoder(separators=(",", ":")).encode

    def _error(self, column, message):
        self.errors.append(RowError(self.rows, column, message, self.line_number()))

    def parse(self, row):
        self.rows += 1
        if len(row) != self.width:
            self._error(None, f"expected {self.width} columns, found {len(row)}")
            return None
        problem = row_problem(row)
        if problem:
            self._error(None, problem)
            return None
        external_id = row[self.person_index].strip()
        if not external_id:
            self._error(self.person_column, "the person column is empty")
            return None
        if len(external_id) > self.id_limit:
            self._error(self.person_column, f"longer than {self.id_limit} characters")
            return None
        # Only a row longer than the shortest limit can hold an overlong cell.
        if sum(map(len, row)) > self.shortest_limit and not self._within_limits(row):
            return None
        values = {name: row[index] for index, name in self.text_columns if row[index]}
        ok = True
        for index, name, allowed, parse in self.category_columns:
            value = row[index]
            if value in allowed:
                values[name] = value
            elif value:
                ok = self._reject(name, parse, value) and ok
        for index, name, parse in self.typed_columns:
            try:
                value = parse(row[index])
            except ValueError as exc:
                self._error(name, str(exc))
                ok = False
                continue
            if value is not None:
                values[name] = value
        return (external_id, self._dumps(values)) if ok else None

    def _within_limits(self, row) -> bool:
        ok = True
        for index, name, limit in self.limits:
            if len(row[index]) > limit:
                self._error(name, f"longer than {limit} characters")
                ok = False
        return ok

    def _reject(self, name, parse, value) -> bool:
        try:
            parse(value)
        except ValueError as exc:
            self._error(name, str(exc))
        return False


def _batches(parser: _RowParser, rows, size: int):
    """Valid rows in lists of ``size``. After the first error nothing more is yielded:
    the rest of the file is read only to report up to MAX_ERRORS errors."""
    batch = []
    try:
        for row in rows:
            parsed = parser.parse(row)
            if parser.errors:
                if len(parser.errors) >= MAX_ERRORS:
                    return
                continue
            batch.append(parsed)
            if len(batch) >= size:
                yield batch
                batch = []
    except csv.Error as exc:
        parser.errors.append(
            RowError(parser.rows + 1, None, f"malformed CSV: {exc}", parser.line_number())
        )
        return
    if batch and not parser.errors:
        yield batch


class _PeopleCache(dict):
    """external_id -> person id for this import, so each person is looked up once.

    Bounded: past the limit it is cleared and refilled, trading queries for memory.
    """

    limit = 1_000_000

    def remember(self, pairs):
        if len(self) > self.limit:
            self.clear()
        self.update(pairs)


def _write_batch(*, dataset, load, batch, actor, writer, people: _PeopleCache) -> int:
    """Match or create each batch's people, then write its records. Returns people made."""
    unknown = list({external_id for external_id, _ in batch if external_id not in people})
    created = 0
    if unknown:
        found = _people_by_external_id(unknown)
        missing = [e for e in unknown if e not in found]
        if missing:
            if connection.vendor == "postgresql":
                found.update(_create_people_postgresql(missing, actor))
            else:
                made = bulk_create_with_history(
                    [Person(external_id=e) for e in missing], Person, default_user=actor
                )
                found.update((p.external_id, p.pk) for p in made)
            created = len(missing)
        people.remember(found)
    writer(dataset.pk, load.pk, [(people[e], values) for e, values in batch])
    return created


def _people_by_external_id(external_ids: list[str]) -> dict[str, int]:
    """{external_id: id} of the people who exist, in one query with one parameter."""
    table = Person._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT external_id, id FROM {table} WHERE external_id = ANY(%s)",  # noqa: S608
                [external_ids],
            )
        else:
            cursor.execute(
                f"SELECT external_id, id FROM {table} WHERE external_id IN"  # noqa: S608
                " (SELECT value FROM json_each(%s))",
                [json.dumps(external_ids)],
            )
        return dict(cursor.fetchall())


def _create_people_postgresql(external_ids: list[str], actor) -> list[tuple[str, int]]:
    """Create people and their '+' history rows in two statements, set-based.

    The same rows bulk_create_with_history would write, without building a model
    instance per person: an import may bring hundreds of thousands of new people.
    """
    person_table = Person._meta.db_table
    history_table = Person.history.model._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {person_table} (external_id, name, email, org_unit, created_at)"  # noqa: S608
            " SELECT e, '', '', '', %s FROM unnest(%s::text[]) AS e"
            " RETURNING external_id, id",
            [now, external_ids],
        )
        created = cursor.fetchall()
        cursor.execute(
            f"INSERT INTO {history_table} (id, external_id, name, email, org_unit, user_id,"  # noqa: S608
            " created_at, history_date, history_change_reason, history_type, history_user_id)"
            " SELECT id, external_id, name, email, org_unit, user_id, created_at,"
            f" %s, NULL, '+', %s FROM {person_table} WHERE id = ANY(%s)",
            [now, actor.pk, [pk for _, pk in created]],
        )
    return created


def _record_insert_sql() -> str:
    table = Record._meta.db_table
    values = connection.ops.quote_name("values")
    return f"INSERT INTO {table} (dataset_id, load_id, person_id, {values}) VALUES (%s, %s, %s, %s)"  # noqa: S608


def _executemany_writer(dataset_id, load_id, rows):
    with connection.cursor() as cursor:
        cursor.executemany(
            _record_insert_sql(), [(dataset_id, load_id, p, values) for p, values in rows]
        )


def _copy_writer(dataset_id, load_id, rows):
    """PostgreSQL COPY in text format: the fastest way rows reach the table."""
    prefix = f"{dataset_id}\t{load_id}\t"
    # COPY's text format treats backslash as an escape; JSON escapes tabs and newlines.
    payload = "".join(
        f"{prefix}{person_id}\t{values.replace(chr(92), chr(92) * 2)}\n"
        for person_id, values in rows
    )
    table = Record._meta.db_table
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {table} (dataset_id, load_id, person_id, {connection.ops.quote_name('values')})"  # noqa: S608
            " FROM STDIN"
        ) as copy:
            copy.write(payload.encode("utf-8"))
