"""Tamper evidence: decisions, votes, consent changes and access events each form a hash
chain, and ``verify`` recomputes every chain.

Every entry stores its place in its chain (``chain_seq``, 1, 2, …), the hash of the
entry before it (``chain_prev``; 64 zeros for the first) and its own hash::

    chain_hash = sha256(chain_prev + canonical JSON of the row's content)

where the content is every concrete field of the row except the chain fields (its own
id, related rows by id, datetimes in UTC ISO 8601, JSON as stored). Changing a row,
deleting one or moving one breaks the chain at that entry, and ``verify`` names it.

Appending happens in the model's ``save()`` on insert, inside the caller's
transaction: on PostgreSQL a transaction-level advisory lock keyed by the chain name
is taken before the last entry is read, so concurrent appends queue and the chain
never forks; SQLite serialises writes anyway. The lock is released when the caller's
transaction commits, so the next writer always sees the entry before it.

A rewrite that recomputes every hash (a database superuser's) is caught by comparing
the heads with copies kept elsewhere: ``verify_audit --heads`` prints them for
publishing, ``verify_audit --expect FILE`` checks published heads are still in the
chains, and every run checks the heads of the last intact verification.

Governance sits below consent and analytics: the chained models are found through
the app registry (every concrete subclass of ``Chained``), never imported.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from django.apps import apps
from django.db import connections, models, router, transaction
from django.utils import timezone

GENESIS = "0" * 64
CHAIN_FIELDS = frozenset({"chain_seq", "chain_prev", "chain_hash"})


# --- the hash ------------------------------------------------------------------------


def _plain(model_field, value):
    """A field's value as hashed: the same before the insert and after a read back."""
    if value is None:
        return None
    if model_field.is_relation:
        model_field = model_field.target_field
    if isinstance(model_field, models.JSONField):
        return json.loads(json.dumps(value, cls=model_field.encoder))
    value = model_field.to_python(value)
    if isinstance(value, datetime.datetime):
        if timezone.is_naive(value):  # as Django stores it with USE_TZ
            value = timezone.make_aware(value, timezone.get_default_timezone())
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def content_of(instance) -> dict:
    """The row's own content, keyed by column: every concrete field but the chain's.
    Works on migration-state models too (the backfills use it)."""
    return {
        f.attname: _plain(f, getattr(instance, f.attname))
        for f in instance._meta.concrete_fields
        if f.name not in CHAIN_FIELDS
    }


def canonical_json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev: str, content: dict) -> str:
    return hashlib.sha256(prev.encode() + canonical_json(content)).hexdigest()


def lock_key(chain_name: str) -> int:
    """The advisory lock of a chain: a signed 64-bit number stable across processes."""
    digest = hashlib.sha256(f"custos-chain:{chain_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --- appending -----------------------------------------------------------------------


class ChainedRowImmutable(Exception):
    """A chained row was saved again: entries are written once and never changed."""


class Chained(models.Model):
    """An append-only, hash-chained model. Subclasses set ``chain_name``."""

    chain_name: ClassVar[str] = ""

    chain_seq = models.PositiveBigIntegerField(
        null=True, blank=True, unique=True, editable=False, help_text="Place in the chain."
    )
    chain_prev = models.CharField(max_length=64, blank=True, default="", editable=False)
    chain_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ChainedRowImmutable(
                f"{self._meta.verbose_name} {self.pk} is part of the {self.chain_name} "
                "audit chain and cannot be changed."
            )
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        kwargs["force_insert"] = True
        with transaction.atomic(using=using, savepoint=False):
            _link(self, using)
            super().save(*args, **kwargs)

    save.alters_data = True

    def chain_content(self) -> dict:
        """What the entry's hash covers (override to narrow or widen it)."""
        return content_of(self)


def _link(entry: Chained, using: str) -> None:
    """Give ``entry`` its id, place and hashes, holding the chain's lock."""
    connection = connections[using]
    model = entry._meta.concrete_model
    table = connection.ops.quote_name(model._meta.db_table)
    pk_column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(entry.chain_name)])
            next_id = (
                f"nextval(pg_get_serial_sequence('{model._meta.db_table}', '{pk_column}'))"
                if entry.pk is None
                else "NULL"
            )
        else:
            next_id = (
                f"(SELECT COALESCE(MAX({connection.ops.quote_name(pk_column)}), 0) + 1 "  # noqa: S608
                f"FROM {table})"
                if entry.pk is None
                else "NULL"
            )
        last = f"FROM {table} WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1"
        cursor.execute(
            f"SELECT (SELECT chain_seq {last}), (SELECT chain_hash {last}), {next_id}"  # noqa: S608
        )
        seq, prev, new_id = cursor.fetchone()
    if entry.pk is None:
        entry.pk = new_id
    entry.chain_seq = (seq or 0) + 1
    entry.chain_prev = prev or GENESIS
    entry.chain_hash = entry_hash(entry.chain_prev, entry.chain_content())


def chained_models() -> list[type[Chained]]:
    """Every chained model, by chain name."""
    found = [m for m in apps.get_models() if issubclass(m, Chained)]
    return sorted(found, key=lambda m: m.chain_name)


# --- verifying -----------------------------------------------------------------------


@dataclass
class ChainCheck:
    name: str
    entries: int = 0
    head: dict = field(default_factory=lambda: {"seq": 0, "hash": GENESIS})
    problem: str | None = None


def check_chain(model: type[Chained], *, expected: list[tuple[str, dict]] = ()) -> ChainCheck:
    """Walk one chain in order and report its first broken entry, if any.

    ``expected`` lists heads seen earlier ((where from, {"seq", "hash"})): each must
    still be in the chain, unchanged, or the chain was cut short or rewritten."""
    name = model.chain_name
    check = ChainCheck(name)
    wanted = {int(head["seq"]): None for _, head in expected if int(head.get("seq", 0)) > 0}
    prev, seq = GENESIS, 1
    rows = model._default_manager.filter(chain_seq__isnull=False).order_by("chain_seq")
    for row in rows.iterator(chunk_size=2000):
        check.entries += 1
        where = f"{name} chain, entry {row.chain_seq} (row {row.pk})"
        if row.chain_seq != seq:
            missing = (
                f"entry {seq}" if row.chain_seq == seq + 1 else f"entries {seq}–{row.chain_seq - 1}"
            )
            check.problem = f"{where}: {missing} before it is missing (deleted)"
        elif row.chain_prev != prev:
            check.problem = (
                f"{where}: does not follow entry {seq - 1} (the previous hash differs): "
                "an entry was changed, removed or moved"
            )
        elif entry_hash(row.chain_prev, row.chain_content()) != row.chain_hash:
            check.problem = f"{where}: its content was changed after it was recorded"
        if check.problem:
            break
        if seq in wanted:
            wanted[seq] = row.chain_hash
        prev, seq = row.chain_hash, seq + 1
    if check.problem is None:
        check.head = {"seq": seq - 1, "hash": prev}
        for source, head in expected:
            at = int(head.get("seq", 0))
            if at <= 0:
                continue
            if at >= seq:
                check.problem = (
                    f"{name} chain, entry {at}: missing, though it was the head {source} "
                    "(entries were deleted from the end)"
                )
            elif wanted[at] != head.get("hash"):
                check.problem = (
                    f"{name} chain, entry {at}: differs from the head {source} "
                    "(the chain was rewritten)"
                )
            if check.problem:
                break
    else:
        last = rows.reverse().values("chain_seq", "chain_hash").first()
        check.head = {"seq": last["chain_seq"], "hash": last["chain_hash"]}
    if check.problem is None:
        outside = model._default_manager.filter(chain_seq__isnull=True).order_by("pk").first()
        if outside is not None:
            check.problem = (
                f"{name} chain, row {outside.pk}: not in the chain "
                "(written directly to the database)"
            )
    return check


def _verification_model():
    return apps.get_model("governance", "AuditVerification")


def latest_verification():
    """The newest finished verification, or None if the chains were never verified."""
    return (
        _verification_model()
        .objects.filter(status="succeeded")
        .order_by("-started_at", "-id")
        .first()
    )


def watermarks(connection, previous: dict, *, since: str) -> tuple[dict, list[str]]:
    """Each protected table's row count and highest id now, and the tables that lost
    rows against ``previous`` (a verification's watermarks, taken ``since``).

    Ids only grow, so every row held at that verification has an id up to the highest
    then: fewer of them now means rows were deleted (or the table truncated), whether
    or not new rows came since. A table the triggers guard loses rows only past them."""
    marks, problems = {}, []
    qn = connection.ops.quote_name
    tables = protected_tables(connection)
    counters = {
        m._meta.db_table: m._meta.pk.column
        for m in apps.get_models(include_auto_created=True)
        if isinstance(m._meta.pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
    }
    with connection.cursor() as cursor:
        for table in tables:
            before = previous.get(table) or {"rows": 0, "max_id": None}
            if table in counters:
                pk = qn(counters[table])
                cursor.execute(
                    f"SELECT COUNT(*), MAX({pk}),"  # noqa: S608
                    f" SUM(CASE WHEN {pk} <= %s THEN 1 ELSE 0 END) FROM {qn(table)}",
                    [before["max_id"]],
                )
                rows, max_id, kept = cursor.fetchone()
            else:  # ids that do not grow (UUIDs): the count alone
                cursor.execute(f"SELECT COUNT(*) FROM {qn(table)}")  # noqa: S608
                rows, max_id = cursor.fetchone()[0], None
                kept = rows
            marks[table] = {"rows": rows, "max_id": max_id}
            lost = before["rows"] - (kept or 0)
            if lost > 0:
                problems.append(
                    f"{table} lost {lost} rows since the verification of {since} "
                    f"(it held {before['rows']} rows then, {kept or 0} of them are left)"
                )
    for table in sorted(set(previous) - set(tables)):
        problems.append(
            f"{table} is missing: it held {previous[table]['rows']} rows at the verification "
            f"of {since}"
        )
    return marks, problems


def verify(*, triggered_by: str, expected: dict | None = None, into=None):
    """Recompute every chain, count every protected table, and record the result (an
    ``AuditVerification``; given ``into``, a verification job, its fields are filled in
    and the caller saves it).

    Besides the chains themselves, the heads of the last intact verification, and
    ``expected`` heads ({chain: {"seq", "hash"}}, e.g. published ones), must still be
    in their chains; and no protected table may hold fewer of the rows it held at the
    last intact verification (see ``watermarks``). Comparing with the last *intact*
    run keeps a loss reported until someone deals with it."""
    Verification = _verification_model()
    started_at = timezone.now()
    last_ok = (
        Verification.objects.filter(ok=True, status="succeeded")
        .order_by("-started_at", "-id")
        .first()
    )
    when = last_ok and timezone.localtime(last_ok.started_at).strftime("%Y-%m-%d %H:%M")
    checks = []
    for model in chained_models():
        heads = []
        if last_ok is not None and model.chain_name in last_ok.heads:
            heads.append((f"verified on {when}", last_ok.heads[model.chain_name]))
        if expected and model.chain_name in expected:
            heads.append(("expected", expected[model.chain_name]))
        checks.append(check_chain(model, expected=heads))
    marks, lost = watermarks(
        connections[router.db_for_write(Verification)],
        last_ok.watermarks if last_ok is not None else {},
        since=when,
    )
    problems = [c.problem for c in checks if c.problem] + lost
    result = {
        "started_at": started_at,
        "finished_at": timezone.now(),
        "ok": not problems,
        "entries": sum(c.entries for c in checks),
        "heads": {c.name: c.head for c in checks},
        "watermarks": marks,
        "problems": problems,
        "triggered_by": triggered_by,
    }
    if into is None:
        return Verification.objects.create(**result)
    for name, value in result.items():
        setattr(into, name, value)
    return into


def backfill(model, *, order_by: tuple[str, ...] = ("pk",), batch_size: int = 1000) -> int:
    """Chain the rows a table held before it was chained, in ``order_by`` order (the
    migrations that add the chain fields run this; ``model`` is the migration state's)."""
    prev, seq, batch = GENESIS, 0, []
    rows = model._default_manager.filter(chain_seq__isnull=True).order_by(*order_by)
    for row in rows.iterator(chunk_size=batch_size):
        seq += 1
        row.chain_seq, row.chain_prev = seq, prev
        row.chain_hash = prev = entry_hash(prev, content_of(row))
        batch.append(row)
        if len(batch) >= batch_size:
            model._default_manager.bulk_update(batch, list(CHAIN_FIELDS))
            batch = []
    if batch:
        model._default_manager.bulk_update(batch, list(CHAIN_FIELDS))
    return seq


# --- PostgreSQL triggers (used by each app's append-only migration) ------------------

REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION custos_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
"""


def history_tables(connection, app_label: str) -> list[str]:
    """The app's django-simple-history tables (records and their many-to-many rows)."""
    with connection.cursor() as cursor:
        names = connection.introspection.table_names(cursor)
    return sorted(n for n in names if n.startswith(f"{app_label}_historical"))


def _trigger(table: str, suffix: str) -> str:
    return f"{table[:48]}_{suffix}"


def refuse_changes(schema_editor, tables: list[str]) -> None:
    """On PostgreSQL, triggers per table refusing UPDATE and DELETE (per row) and
    TRUNCATE (per statement): rows are only ever added. Elsewhere nothing.

    A trigger does not stop the table's owner or a superuser, who can switch it off:
    the application connects as a role that is neither (governance/dbroles.py)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(REFUSE_FUNCTION)  # no parameters: the '%' belong to plpgsql
        for table in tables:
            cursor.execute(
                f"CREATE TRIGGER {_trigger(table, 'append_only')} BEFORE UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION custos_append_only()"
            )
    refuse_truncate(schema_editor, tables)


def refuse_truncate(schema_editor, tables: list[str]) -> None:
    """On PostgreSQL, a statement trigger per table refusing TRUNCATE (which fires no
    row trigger), also when a TRUNCATE … CASCADE of another table reaches it."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(REFUSE_FUNCTION)
        for table in tables:
            cursor.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, 'no_truncate')} ON {table}")
            cursor.execute(
                f"CREATE TRIGGER {_trigger(table, 'no_truncate')} BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION custos_append_only()"
            )


FINISHED_FUNCTION = """
CREATE OR REPLACE FUNCTION custos_fixed_once_finished() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status NOT IN ('succeeded', 'failed') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% keeps finished rows: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
"""


def refuse_changes_once_finished(schema_editor, table: str) -> None:
    """On PostgreSQL, for a job table whose finished rows are a record (the
    verifications): a row may change while it is queued or running, never once it
    succeeded or failed; no row is deleted and the table is never truncated."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FINISHED_FUNCTION)
        cursor.execute(
            f"CREATE TRIGGER {_trigger(table, 'fixed')} BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION custos_fixed_once_finished()"
        )
        cursor.execute(
            f"CREATE TRIGGER {_trigger(table, 'no_truncate')} BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION custos_fixed_once_finished()"
        )


def allow_changes_once_finished(schema_editor, table: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, 'fixed')} ON {table}")
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, 'no_truncate')} ON {table}")


def allow_truncate(schema_editor, tables: list[str]) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in tables:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, 'no_truncate')} ON {table}")


def allow_changes(schema_editor, tables: list[str]) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in tables:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, 'append_only')} ON {table}")
    allow_truncate(schema_editor, tables)


# The functions the append-only triggers run (analytics 0003 has its own).
REFUSING_FUNCTIONS = ("custos_append_only", "custos_refuse_change")


TRIGGERED_TABLES_SQL = (
    "SELECT DISTINCT c.relname FROM pg_trigger t"
    " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid"
    " WHERE NOT t.tgisinternal AND p.proname = ANY(%s)"
    " AND c.relnamespace = current_schema()::regnamespace"
)


def protected_tables(connection) -> list[str]:
    """Every table of the audit trail, which is only ever added to: the chained tables,
    every history table, the verifications, and on PostgreSQL every table a migration
    gave an append-only trigger (the access log's subjects, aggregate releases)."""
    with connection.cursor() as cursor:
        existing = connection.introspection.table_names(cursor)
        triggered = []
        if connection.vendor == "postgresql":
            cursor.execute(TRIGGERED_TABLES_SQL, [list(REFUSING_FUNCTIONS)])
            triggered = [row[0] for row in cursor.fetchall()]
    return protected_among(existing, triggered)


def protected_among(existing, triggered=()) -> list[str]:
    """The protected tables among ``existing`` table names, ``triggered`` being those
    with an append-only trigger (for a caller with its own connection: ``db_roles``)."""
    existing = set(existing)
    # The verifications are jobs, changed while they run (refuse_changes_once_finished).
    names = {m._meta.db_table for m in chained_models()} | set(triggered)
    for app_config in apps.get_app_configs():
        names.update(n for n in existing if n.startswith(f"{app_config.label}_historical"))
    return sorted(names & existing)
