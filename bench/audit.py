"""Benchmark: the auditor's timeline over 1,000,000 history entries and 1,000,000 access
events, against a trivial Django page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/audit.py

It creates a scratch database (custos_bench_audit), gets one approved grant through
``analytics.services`` (bench/extract.py's ``approved_grant``, which also registers the
OULAD datasets with ``apply``) and creates through the services 54 more users (stewards,
analysts, committee members) and the measuring auditor (with a login). Then it writes,
into the real tables, a year of history (1,000,000 entries in six history tables):

* 400 datasets, 100 versions each (40,000 historical datasets);
* 4,000 fields (ten per dataset), 25 versions each (100,000 historical fields);
* 200 purposes, 50 versions each (10,000 historical purposes);
* 85,000 requests, 6 versions each: drafted, edited, submitted, in review, round one,
  decided (510,000 historical requests);
* 255,000 votes, three per request (255,000 historical votes);
* 85,000 decisions, one per request (85,000 historical decisions);

and 1,000,000 access events through the grant over the same year. The objects and
their history are written set-based with ``generate_series``; votes, decisions and
access events are hash-chained (``governance.audit.chain``), so they are computed in
Python with the same ``entry_hash`` the application uses, continuing the chains the
services started, and written with COPY (their history rows then set-based from
them). The history tables are append-only (a trigger refuses UPDATE and DELETE), so the
database is dropped and recreated on every run (``--reuse`` measures an already seeded
one again). ``--scale`` seeds that share of everything, for a quick try.

Then, as bench/mydata.py does, it serves the project's WSGI application in a child
process (DJANGO_DEBUG=false, behind a proxy that says https; ROOT_URLCONF
bench/mydata_urls.py, the project's URLs plus a trivial page), signs in as the auditor
through the login form, finds page 1,000's cursor by following the timeline's "next"
cursor 999 times through the API, and requests, one at a time over a fresh TCP
connection each, ``--runs`` times each (interleaved, after five warm-up requests each):

* the trivial page (a tiny HttpResponse, no session, no database): the baseline;
* a signed-in page (one line in base.html: session, user, navigation), for comparison;
* the timeline's first page (``audit-timeline``);
* its page 1,000 (by cursor);
* a filtered view: one committee member's votes (``kind=vote&actor=<email>``);
* the same three through the API (``api-audit-events``), for comparison.

It prints each page's median and 95th percentile latency (the whole HTTP round trip),
its ratio to the trivial page's median, its size and the SQL queries the server ran for
it (counted in the server on every request). ``--explain`` adds EXPLAIN ANALYZE of the
two slowest SQL statements of each timeline page, as the server ran them (captured in
a second server, one request each).

Bar (issue 6): every timeline page's median within 5x the trivial page's; the query
count fixed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import COMMITTEE, GRANTED, ROOT, approved_grant, database_url  # noqa: E402
from mydata import SIGNED_IN, TRIVIAL, Browser, free_port  # noqa: E402

BENCH_DB = "custos_bench_audit"
AUDITOR_EMAIL = "auditor@example.org"
AUDITOR_PASSWORD = "bench-" + "auditor-password"
WARM_UP = 5
BAR = 5
PAGE = 1_000
YEAR = datetime.timedelta(days=365)

# table: (objects, versions each)
DATASETS, FIELDS_PER_DATASET, PURPOSES, REQUESTS = 400, 10, 200, 85_000
VERSIONS = {"dataset": 100, "field": 25, "purpose": 50, "request": 6}
VOTES_PER_REQUEST = 3
ACCESS_EVENTS = 1_000_000

EXTRA_USERS = {"steward": 10, "analyst": 30, "member": 14}


# --- setting up -------------------------------------------------------------------------


def create_database(url: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def _django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def people():
    """The registry, one approved grant, more users and the auditor, all through the
    services. Returns (grant, {"steward"|"analyst"|"member"|"chair": [user ids]})."""
    from governance.models import Clearance, Role, User
    from governance.services.accounts import user_create

    grant = approved_grant()
    roles = {"steward": Role.STEWARD, "analyst": Role.ANALYST, "member": Role.COMMITTEE}
    for group, count in EXTRA_USERS.items():
        for n in range(1, count + 1):
            user_create(
                actor=None,
                email=f"{group}{n:02d}@example.org",
                full_name=f"{group.title()} {n:02d}",
                password=None,
                roles=[roles[group]],
                clearance=Clearance.PERSONAL,
            )
    user_create(
        actor=None,
        email=AUDITOR_EMAIL,
        full_name="Avery Auditor",
        password=AUDITOR_PASSWORD,
        roles=[Role.AUDITOR],
        clearance=Clearance.SPECIAL,
    )

    def ids(emails):
        return list(
            User.objects.filter(email__in=emails).order_by("id").values_list("id", flat=True)
        )

    def extra(group):
        return [f"{group}{n:02d}@example.org" for n in range(1, EXTRA_USERS[group] + 1)]

    users = {
        "steward": ids(["steward@example.org", *extra("steward")]),
        "analyst": ids(["analyst@example.org", *extra("analyst")]),
        "member": ids([f"{n}@example.org" for n in COMMITTEE] + extra("member")),
        "chair": ids(["chair@example.org"]),
    }
    return grant, users


# --- history, set-based -----------------------------------------------------------------


def _array(values) -> str:
    return "ARRAY[" + ", ".join(str(int(v)) for v in values) + "]::bigint[]"


def _pick_text(values: list[str], n: str) -> str:
    array = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"(ARRAY[{array}])[1 + (({n}) %% {len(values)})::int]"


def _contiguous(cursor, table: str, where: str, count: int) -> int:
    cursor.execute(f"SELECT min(id), max(id), count(*) FROM {table} WHERE {where}")  # noqa: S608
    first, last, n = cursor.fetchone()
    assert n == count and last - first + 1 == count, (table, first, last, n)
    return first


def _with_history(
    cursor,
    *,
    table: str,
    history: str,
    objects: int,
    versions: int,
    columns: dict[str, str],
    created: str | None,
    who: str,
    where: str,
    t0: datetime.datetime,
) -> int:
    """``objects`` rows of ``table`` as their last version stands, and ``versions``
    history rows each, spread evenly over the year (version v of object o at slot
    v * objects + o). ``columns`` are SQL of ``o`` (the object, from 0) and ``v`` (the
    version, from 0); ``created`` the column holding the creation time; ``who`` SQL of
    o and v giving the acting user. Returns the first object's id."""
    total = objects * versions
    step = YEAR.total_seconds() / total
    at = "%(t0)s::timestamptz + ((v * %(objects)s + o) * %(step)s) * interval '1 second'"
    created_at = "%(t0)s::timestamptz + (o * %(step)s) * interval '1 second'"
    names = list(columns)
    base_values = [columns[n] for n in names]
    if created:
        names_base, base_values = [*names, created], [*base_values, created_at]
    else:
        names_base = names
    params = {"t0": t0, "objects": objects, "step": step, "last": versions - 1}
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(names_base)})"  # noqa: S608
        f" SELECT {', '.join(base_values)}"
        " FROM (SELECT o, %(last)s AS v FROM generate_series(0, %(objects)s - 1) AS o) AS s",
        params,
    )
    first = _contiguous(cursor, table, where, objects)
    history_names = ["id", *names_base, "history_date", "history_type", "history_user_id"]
    history_values = [
        f"{first} + o",
        *base_values,
        at,
        "CASE WHEN v = 0 THEN '+' ELSE '~' END",
        who,
    ]
    cursor.execute(
        f"INSERT INTO {history} ({', '.join(history_names)})"  # noqa: S608
        f" SELECT {', '.join(history_values)}"
        " FROM (SELECT g %% %(objects)s AS o, g / %(objects)s AS v"
        "       FROM generate_series(0, %(total)s - 1) AS g) AS s ORDER BY v, o",
        params | {"total": total},
    )
    return first


def fill_history(cursor, users, *, t0, scale: float) -> dict:
    """Datasets, fields, purposes and requests with their history. Returns the first
    request's id and how many of each were written."""
    stewards, analysts = _array(users["steward"]), _array(users["analyst"])
    chair = users["chair"][0]
    n_stewards, n_analysts = len(users["steward"]), len(users["analyst"])
    datasets = max(1, int(DATASETS * scale))
    purposes = max(1, int(PURPOSES * scale))
    requests = max(1, int(REQUESTS * scale))
    counts = {}

    started = time.perf_counter()
    first_dataset = _with_history(
        cursor,
        table="governance_dataset",
        history="governance_historicaldataset",
        objects=datasets,
        versions=VERSIONS["dataset"],
        columns={
            "slug": "'bench-dataset-' || (o + 1)",
            "name": "'Bench dataset ' || (o + 1)",
            "description": "'Records of learning activity, revision ' || (v + 1)",
            "source_system": _pick_text(["VLE", "Student records", "Library", "Timetabling"], "o"),
            "lawful_basis": _pick_text(
                ["legitimate_interest", "contract", "public_task", "consent"], "o + v / 30"
            ),
            "retention_days": "365 + (v %% 10) * 30",
            "status": "CASE WHEN v = 0 THEN 'draft' WHEN v > 95 AND o %% 7 = 0"
            " THEN 'retired' ELSE 'active' END",
            "person_column": "'id_student'",
            "record_count": "v * 1000",
        },
        created="created_at",
        who=f"({stewards})[1 + ((o + v) %% {n_stewards})]",
        where="slug LIKE 'bench-dataset-%%'",
        t0=t0,
    )
    counts["dataset"] = datasets * VERSIONS["dataset"]
    fields = datasets * FIELDS_PER_DATASET
    _with_history(
        cursor,
        table="governance_field",
        history="governance_historicalfield",
        objects=fields,
        versions=VERSIONS["field"],
        columns={
            "dataset_id": f"{first_dataset} + o / {FIELDS_PER_DATASET}",
            "name": f"'column_' || (o %% {FIELDS_PER_DATASET})",
            "label": f"'Column ' || (o %% {FIELDS_PER_DATASET}) || ' (rev ' || (v + 1) || ')'",
            "description": "'What the column holds, as of revision ' || (v + 1)",
            "type": _pick_text(["integer", "category", "string", "date", "decimal"], "o"),
            "values": "'[]'::jsonb",
            "sensitivity": _pick_text(["internal", "personal", "internal", "special"], "o + v / 8"),
            "is_identifier": f"o %% {FIELDS_PER_DATASET} = 0",
            "is_protected_attribute": "o %% 17 = 3",
            "excluded": "v > 20 AND o %% 11 = 5",
            "position": f"o %% {FIELDS_PER_DATASET}",
        },
        created=None,
        who=f"({stewards})[1 + ((o / {FIELDS_PER_DATASET} + v) %% {n_stewards})]",
        where=f"dataset_id >= {first_dataset}",
        t0=t0,
    )
    counts["field"] = fields * VERSIONS["field"]
    first_purpose = _with_history(
        cursor,
        table="governance_purpose",
        history="governance_historicalpurpose",
        objects=purposes,
        versions=VERSIONS["purpose"],
        columns={
            "slug": "'bench-purpose-' || (o + 1)",
            "name": "'Bench purpose ' || (o + 1)",
            "category": _pick_text(
                ["learning_support", "course_improvement", "strategic_planning", "research"], "o"
            ),
            "expected_benefit": "'Better support for learners, revision ' || (v + 1)",
            "legal_basis": _pick_text(["legitimate_interest", "public_task", "consent"], "o"),
            "consent_text": "'We use your data to improve courses (version '"
            " || (1 + v / 10) || ').'",
            "consent_version": "1 + v / 10",
            "created_by_id": f"({stewards})[1 + (o %% {n_stewards})]",
            "committee_id": "NULL",
        },
        created="created_at",
        who=f"({stewards})[1 + ((o + v) %% {n_stewards})]",
        where="slug LIKE 'bench-purpose-%%'",
        t0=t0,
    )
    counts["purpose"] = purposes * VERSIONS["purpose"]
    print(
        f"  {datasets:,} datasets, {fields:,} fields, {purposes:,} purposes and their history"
        f" in {time.perf_counter() - started:.1f} s"
    )

    started = time.perf_counter()
    cursor.execute("SELECT id FROM governance_committee WHERE is_default")
    committee = cursor.fetchone()[0]
    # Drafted, edited, submitted, in review, round one, decided (as the decision).
    status = (
        "CASE WHEN v < 2 THEN 'draft' WHEN v = 2 THEN 'submitted' WHEN v < 5 THEN 'in_review'"
        " WHEN o %% 10 < 7 THEN 'approved' WHEN o %% 10 < 9 THEN 'changes_requested'"
        " ELSE 'rejected' END"
    )
    who = (
        f"CASE WHEN v < 3 THEN ({analysts})[1 + (o %% {n_analysts})]"
        f" WHEN v < 5 THEN ({stewards})[1 + (o %% {n_stewards})] ELSE {chair} END"
    )
    first_request = _with_history(
        cursor,
        table="analytics_analyticsrequest",
        history="analytics_historicalanalyticsrequest",
        objects=requests,
        versions=VERSIONS["request"],
        columns={
            "title": "'Study ' || (o + 1) || ': '"
            f" || {_pick_text(['retention by module', 'assessment timing', 'VLE use and results', 'support uptake', 'timetable clashes'], 'o')}",  # noqa: E501
            "justification": "'Why the study needs these fields (draft ' || (v + 1) || ').'",
            "expected_benefit": "'Earlier support for students who fall behind.'",
            "cohort": "'{}'::jsonb",
            "output_level": _pick_text(["pseudonymised", "aggregate", "aggregate"], "o"),
            "involves_model": "o %% 9 = 0",
            "automated_decision": "false",
            "minimisation_justification": "CASE WHEN v > 0"
            " THEN 'Only the fields named.' ELSE '' END",
            "retention_days": "365",
            "starts_on": "(%(t0)s::timestamptz + (o * %(step)s) * interval '1 second')::date + 30",
            "ends_on": "(%(t0)s::timestamptz + (o * %(step)s) * interval '1 second')::date + 120",
            "status": status,
            "round": "CASE WHEN v < 3 THEN 0 ELSE 1 END",
            "committee_id": f"CASE WHEN v < 3 THEN NULL ELSE {committee} END",
            "human_reviewer_id": "NULL",
            "purpose_id": f"{first_purpose} + o %% {purposes}",
            "requester_id": f"({analysts})[1 + (o %% {n_analysts})]",
        },
        created="created_at",
        who=who,
        where="title LIKE 'Study %%'",
        t0=t0,
    )
    counts["request"] = requests * VERSIONS["request"]
    print(f"  {requests:,} requests and their history in {time.perf_counter() - started:.1f} s")
    return {"first_request": first_request, "requests": requests, "counts": counts}


# --- chained entries: computed in Python, written with COPY ----------------------------


def _chain_start(cursor, table: str) -> tuple[int, str, int]:
    from governance.audit.chain import GENESIS

    cursor.execute(
        f"SELECT chain_seq, chain_hash FROM {table}"  # noqa: S608
        " WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1"
    )
    row = cursor.fetchone()
    seq, prev = row if row else (0, GENESIS)
    cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {table}")  # noqa: S608
    return seq, prev, cursor.fetchone()[0]


def _copy_chained(cursor, model, rows) -> int:
    """Link each of ``rows`` (dicts of attname -> value, oldest first) into ``model``'s
    chain with the application's hash, and COPY them in. Returns how many."""
    from governance.audit.chain import entry_hash

    table = model._meta.db_table
    seq, prev, last_id = _chain_start(cursor, table)
    columns = [f.attname for f in model._meta.concrete_fields]
    quoted = ", ".join(f'"{c}"' for c in columns)
    json_columns = {
        f.attname for f in model._meta.concrete_fields if f.get_internal_type() == "JSONField"
    }
    n = 0
    with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        for values in rows:
            n += 1
            seq += 1
            entry = model(id=last_id + n, **values)
            entry.chain_seq, entry.chain_prev = seq, prev
            entry.chain_hash = prev = entry_hash(prev, entry.chain_content())
            copy.write_row(
                [
                    json.dumps(getattr(entry, c)) if c in json_columns else getattr(entry, c)
                    for c in columns
                ]
            )
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
    )
    return n


def _request_at(o: int, v: int, *, requests: int, t0) -> datetime.datetime:
    """When version v of request o was written (as ``_with_history`` spreads them)."""
    step = YEAR.total_seconds() / (requests * VERSIONS["request"])
    return t0 + datetime.timedelta(seconds=(v * requests + o) * step)


def fill_votes_and_decisions(cursor, users, history: dict, *, t0) -> dict:
    from django.apps import apps

    Vote = apps.get_model("analytics", "Vote")
    Decision = apps.get_model("analytics", "Decision")
    requests, first = history["requests"], history["first_request"]
    members, chair = users["member"], users["chair"][0]
    choices = ["approve"] * 6 + ["approve_with_conditions", "request_changes", "reject", "conflict"]
    outcome = {
        **dict.fromkeys(range(7), "approved"),
        7: "changes_requested",
        8: "changes_requested",
    }

    def votes():
        for v in range(VOTES_PER_REQUEST):  # round one, member by member: oldest first
            for o in range(requests):
                at = _request_at(o, 4, requests=requests, t0=t0) + datetime.timedelta(minutes=v + 1)
                yield {
                    "request_id": first + o,
                    "round": 1,
                    "member_id": members[(o + v) % len(members)],
                    "choice": choices[(o * 7 + v) % len(choices)],
                    "rationale": f"Reviewed the fields and the benefit (member {v + 1}).",
                    "created_at": at.replace(microsecond=0),
                }

    def decisions():
        for o in range(requests):
            at = _request_at(o, 5, requests=requests, t0=t0)
            yield {
                "request_id": first + o,
                "round": 1,
                "outcome": outcome.get(o % 10, "rejected"),
                "rationale": "The benefit to learners outweighs the intrusion.",
                "aggregate_only": o % 5 == 0,
                "min_cohort": 10,
                "expires_on": (at + datetime.timedelta(days=180)).date(),
                "decided_by_id": chair,
                "decided_at": at.replace(microsecond=0),
                "supersedes_id": None,
            }

    started = time.perf_counter()
    # Votes are ordered by round slot, not by time across requests; the chain follows
    # insertion order, as it does in the application.
    rows = sorted(votes(), key=lambda r: r["created_at"])
    n_votes = _copy_chained(cursor, Vote, rows)
    n_decisions = _copy_chained(cursor, Decision, decisions())
    # Their history: one "created" entry each, as the application writes it.
    for table, history_table, at, who in [
        ("analytics_vote", "analytics_historicalvote", "created_at", "member_id"),
        ("analytics_decision", "analytics_historicaldecision", "decided_at", "decided_by_id"),
    ]:
        cursor.execute(
            "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns"
            " WHERE table_name = %s",
            [table],
        )
        cols = cursor.fetchone()[0]
        cursor.execute(
            f"INSERT INTO {history_table} ({cols}, history_date, history_type, history_user_id)"  # noqa: S608
            f" SELECT {cols}, {at}, '+', {who} FROM {table} WHERE request_id >= %s"
            f" ORDER BY {at}, id",
            [first],
        )
    print(
        f"  {n_votes:,} votes and {n_decisions:,} decisions (chained) and their history in"
        f" {time.perf_counter() - started:.1f} s"
    )
    return {"vote": n_votes, "decision": n_decisions}


def fill_access_events(cursor, grant, *, t0, events: int) -> int:
    from django.apps import apps
    from django.utils import timezone

    AccessEvent = apps.get_model("analytics", "AccessEvent")
    cursor.execute("SELECT id, slug FROM governance_dataset WHERE slug = ANY(%s)", [list(GRANTED)])
    datasets = {slug: pk for pk, slug in cursor.fetchall()}
    slugs = sorted(datasets)
    kinds = ["extract", "preview", "aggregate", "download"]
    step = (timezone.now() - datetime.timedelta(hours=1) - t0).total_seconds() / events

    def rows():
        for n in range(events):
            slug = slugs[n % 3 == 0]
            kind = kinds[n % 4]
            yield {
                "grant_id": grant.pk,
                "user_id": grant.grantee_id,
                "kind": kind,
                "at": (t0 + datetime.timedelta(seconds=n * step)).replace(microsecond=0),
                "dataset_id": datasets[slug],
                "field_names": GRANTED[slug],
                "output_level": "aggregate" if kind == "aggregate" else "pseudonymised",
                "people": 50 + n % 500,
                "rows": 50 + n % 500,
                "detail": {"group_by": ["code_module"]} if kind == "aggregate" else {},
            }

    started = time.perf_counter()
    n = _copy_chained(cursor, AccessEvent, rows())
    print(f"  {n:,} access events (chained) in {time.perf_counter() - started:.1f} s")
    return n


def seed(*, scale: float) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    started = time.perf_counter()
    grant, users = people()
    print(
        f"registry, grant {grant.pk} and {sum(len(u) for u in users.values())} users through"
        f" the services: {time.perf_counter() - started:.1f} s"
    )
    t0 = (timezone.now() - YEAR - datetime.timedelta(days=2)).replace(microsecond=0)
    with transaction.atomic(), connection.cursor() as cursor:
        # Foreign keys are right by construction: skip their per-row checks.
        cursor.execute("SET LOCAL session_replication_role = replica")
        history = fill_history(cursor, users, t0=t0, scale=scale)
        chained = fill_votes_and_decisions(cursor, users, history, t0=t0)
        fill_access_events(cursor, grant, t0=t0, events=max(1, int(ACCESS_EVENTS * scale)))
        cursor.execute("SET LOCAL session_replication_role = origin")
    total = sum(history["counts"].values()) + sum(chained.values())
    print(f"  {total:,} history entries written")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")


HISTORY_TABLES = [
    "governance_historicaldataset",
    "governance_historicalfield",
    "governance_historicalpurpose",
    "analytics_historicalanalyticsrequest",
    "analytics_historicalvote",
    "analytics_historicaldecision",
]


def describe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in HISTORY_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE relname LIKE '%%historical%%'"
        )
        every = cursor.fetchone()[0]
        cursor.execute("SELECT count(*), min(at), max(at) FROM analytics_accessevent")
        events, first_at, last_at = cursor.fetchone()
    print(
        f"{sum(counts.values()):,} history entries in the six seeded tables ("
        + ", ".join(f"{t.split('_', 1)[1]} {n:,}" for t, n in counts.items())
        + f"); about {every:,} in every history table\n"
        f"{events:,} access events, {first_at:%Y-%m-%d} to {last_at:%Y-%m-%d}\n"
    )


def verify_chains() -> None:
    """Recompute every chain with the application's own check (slow: every row)."""
    from governance.audit.chain import chained_models, check_chain

    for model in chained_models():
        started = time.perf_counter()
        check = check_chain(model)
        print(
            f"  {check.name}: {check.entries:,} entries,"
            f" {check.problem or 'intact'} ({time.perf_counter() - started:.1f} s)"
        )
        assert check.problem is None, check.problem


# --- the server (a child process) -----------------------------------------------------


def serve(port: int) -> None:
    """bench/mydata.py's server (wsgiref, the query count in X-Bench-Queries), and with
    BENCH_AUDIT_SQL set, each request's SQL in a file for --explain."""
    import mydata

    target = os.environ.get("BENCH_AUDIT_SQL")
    if target:
        from django.db import connection

        captured = []

        def log(execute, sql, params, many, context):
            captured.append((sql, params))
            return execute(sql, params, many, context)

        connection.execute_wrappers.append(log)
        from django.core.signals import request_started

        def reset(**kwargs):
            if captured:
                with open(target, "a") as out:
                    out.write(json.dumps([[s, list(p or ())] for s, p in captured], default=str))
                    out.write("\n")
            captured.clear()

        request_started.connect(reset, weak=False)
    mydata.serve(port)


# --- measuring -------------------------------------------------------------------------


def _next_cursor(browser: Browser, api: str, params: dict) -> str | None:
    response, body, _ = browser.request("GET", api + "?" + urlencode(params))
    assert response.status == 200, (response.status, body[:300])
    return json.loads(body).get("next")


def page_cursor(browser: Browser, api: str, page: int) -> str:
    """The cursor of the timeline's page ``page``: follow "next" page - 1 times."""
    started = time.perf_counter()
    cursor = None
    for _ in range(page - 1):
        cursor = _next_cursor(browser, api, {"cursor": cursor} if cursor else {})
        assert cursor, "the timeline ended before page 1,000"
    print(f"followed the cursor {page - 1} times in {time.perf_counter() - started:.1f} s")
    return cursor


def pages_to_measure(browser: Browser) -> dict[str, str]:
    from django.urls import reverse

    timeline, api = reverse("audit-timeline"), reverse("api-audit-events")
    cursor = page_cursor(browser, api, PAGE)
    member = "hr@example.org"
    filtered = urlencode({"kind": "vote", "actor": member})
    return {
        "trivial page": TRIVIAL,
        "signed-in page": SIGNED_IN,
        "timeline p1": timeline,
        f"timeline p{PAGE:,}": timeline + "?" + urlencode({"cursor": cursor}),
        "filtered": timeline + "?" + filtered,
        "API p1": api,
        f"API p{PAGE:,}": api + "?" + urlencode({"cursor": cursor}),
        "API filtered": api + "?" + filtered,
    }


def check_pages(browser: Browser, pages: dict[str, str]) -> None:
    """What the pages must show, once: the newest entries first, page 1,000 older
    ones, and only the member's votes in the filtered view."""
    _r, first, _ = browser.request("GET", pages["API p1"])
    _r, deep, _ = browser.request("GET", pages[f"API p{PAGE:,}"])
    _r, votes, _ = browser.request("GET", pages["API filtered"])
    first, deep, votes = (json.loads(b)["results"] for b in (first, deep, votes))
    assert first and deep and votes, "empty timeline"
    print(
        f"page 1 holds {len(first)} entries; page {PAGE:,} starts at"
        f" {json.dumps(deep[0], default=str)[:200]}\nfiltered: {len(votes)} entries,"
        f" e.g. {json.dumps(votes[0], default=str)[:200]}\n"
    )


def measure(url: str, runs: int, explain: bool) -> None:
    with tempfile.TemporaryDirectory() as static_root:
        env = {
            key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
        } | {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_STATIC_ROOT": static_root,
            "PYTHONPATH": str(Path(__file__).resolve().parent),
            "DATABASE_URL": url,
        }
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout.readline().strip() == "ready"
            browser = Browser(port)
            browser.sign_in(AUDITOR_EMAIL, AUDITOR_PASSWORD)
            pages = pages_to_measure(browser)
            check_pages(browser, pages)
            run_pages(browser, pages, runs)
        finally:
            server.terminate()
            server.wait(timeout=30)
        if explain:
            explain_pages(url, env, pages)


def run_pages(browser: Browser, pages: dict[str, str], runs: int) -> None:
    times: dict[str, list[float]] = {label: [] for label in pages}
    queries: dict[str, set[int]] = {label: set() for label in pages}
    sizes: dict[str, int] = {}
    for round_ in range(WARM_UP + runs):
        for label, path in pages.items():
            response, content, elapsed = browser.request("GET", path)
            assert response.status == 200, (label, response.status, content[:300])
            if round_ < WARM_UP:
                continue
            times[label].append(elapsed * 1000)
            queries[label].add(int(response.headers["X-Bench-Queries"]))
            sizes[label] = len(content)
    trivial = statistics.median(times["trivial page"])
    print(
        f"{runs} requests each, one at a time, interleaved, after {WARM_UP} warm-up requests"
        " each; latency as the client sees it (the whole HTTP round trip)\n"
    )
    print(f"{'page':<16} {'median':>8} {'p95':>8} {'x trivial':>10} {'queries':>8} {'size':>7}")
    over = []
    for label, path in pages.items():
        ms = sorted(times[label])
        p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
        median = statistics.median(ms)
        counts = ",".join(str(c) for c in sorted(queries[label]))
        print(
            f"{label:<16} {median:6.1f}ms {p95:6.1f}ms {median / trivial:9.1f}x"
            f" {counts:>8} {sizes[label] / 1024:5.0f}kB  {path[:90]}"
        )
        if label.startswith(("timeline", "filtered")) and median / trivial > BAR:
            over.append(label)
    verdict = "within the bar" if not over else "OVER THE BAR: " + ", ".join(over)
    print(f"\ntimeline pages / trivial page (bar: every one <= {BAR}x) -- {verdict}\n")


def explain_pages(url: str, env: dict, pages: dict[str, str]) -> None:
    """EXPLAIN ANALYZE each timeline page's slowest SQL statements, as the server ran
    them (captured over one request each in a fresh server)."""
    import psycopg

    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as log:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)],
            cwd=ROOT,
            env=env | {"BENCH_AUDIT_SQL": log.name},
            stdout=subprocess.PIPE,
            text=True,
        )
        labels = [label for label in pages if label.startswith(("timeline", "filtered"))]
        try:
            assert server.stdout.readline().strip() == "ready"
            browser = Browser(port)
            browser.sign_in(AUDITOR_EMAIL, AUDITOR_PASSWORD)
            for label in labels:
                browser.request("GET", pages[label])
            browser.request("GET", TRIVIAL)  # flushes the last page's SQL
        finally:
            server.terminate()
            server.wait(timeout=30)
        requests = [json.loads(line) for line in log.read().splitlines() if line.strip()]
    # The sign-in's requests come first; the pages' are the last len(labels).
    with psycopg.connect(url) as conn:
        for label, statements in zip(labels, requests[-len(labels) :], strict=True):
            print(f"=== {label}: {len(statements)} queries")
            timed = []
            for sql, params in statements:
                if not sql.lstrip().upper().startswith("SELECT"):
                    continue
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params or None).fetchall()
                lines = [row[0] for row in plan]
                ms = float(re.search(r"Execution Time: ([\d.]+)", lines[-1]).group(1))
                timed.append((ms, sql, lines))
            timed.sort(key=lambda t: -t[0])
            for ms, sql, lines in timed[:2]:
                print(f"--- {ms:.1f} ms: {sql[:600]}")
                print("\n".join(lines))
            print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--scale", type=float, default=1.0, help="seed this share of everything")
    parser.add_argument(
        "--reuse", action="store_true", help="measure an already seeded database again"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed, do not measure")
    parser.add_argument(
        "--verify", action="store_true", help="recompute every hash chain after seeding"
    )
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the timeline pages' SQL"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
        sys.path.insert(0, str(ROOT))
        serve(args.serve)
        return
    url = database_url(BENCH_DB)
    if not args.reuse:
        create_database(url)
    _django(url)
    if not args.reuse:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        seed(scale=args.scale)
        print(f"seeded in {time.perf_counter() - started:.1f} s\n")
    describe()
    if args.verify:
        verify_chains()
    if not args.seed_only:
        measure(url, args.runs, args.explain)


if __name__ == "__main__":
    main()
