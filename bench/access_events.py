"""Benchmark: "which reads included person P" over 10,000,000 access-event subjects.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/access_events.py

It creates a scratch database (custos_bench_access), gets one grant through
``analytics.services`` (as bench/extract.py does), then writes, set-based with
``generate_series`` into the real tables: 100,001 people, 20,000 access events and
10,000,000 AccessEventSubject rows (500 per event). One person is in 500 of the
events, spread over the whole log. The tables are append-only (a trigger refuses
UPDATE and DELETE), so the database is dropped and recreated on every run.

It then evaluates ``analytics.selectors.access_events_for_person`` (``list()`` and
every related object a page shows) 30 times and prints the number of queries, the
median and 95th percentile time, and the plan line showing the index used.

Bar (issue 4): under 50 ms, a fixed number of queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import ROOT, approved_grant, database_url  # noqa: E402

BENCH_DB = "custos_bench_access"
OTHERS = 100_000


def create_database(url: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def fill(grant, *, events: int, per_event: int, target_events: int) -> int:
    """People, events and subjects, set-based. Returns the target person's id."""
    from django.db import connection, transaction

    step = events // target_events
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO governance_person (external_id, name, email, org_unit, created_at)"
            " SELECT 'p' || n, '', '', '', now() FROM generate_series(0, %s) AS n",
            [OTHERS],
        )
        cursor.execute("SELECT id FROM governance_person WHERE external_id = 'p0'")
        target = cursor.fetchone()[0]
        cursor.execute("SELECT min(id) FROM governance_person WHERE external_id <> 'p0'")
        first_other = cursor.fetchone()[0]
        # Events spread over a year, oldest first (ids and times both ascending).
        cursor.execute(
            "INSERT INTO analytics_accessevent (grant_id, user_id, kind, at, dataset_id,"
            " field_names, output_level, people, rows, detail)"
            " SELECT %s, %s, 'extract', now() - (%s - n) * interval '26 minutes', %s,"
            " '[\"code_module\"]', 'pseudonymised', %s, %s, '{}'"
            " FROM generate_series(1, %s) AS n",
            [
                grant.pk,
                grant.grantee_id,
                events,
                grant.fields.first().dataset_id,
                per_event,
                per_event,
                events,
            ],
        )
        # The subjects' index is the migration's own, rebuilt once after the load
        # rather than maintained row by row (the same definition, read back).
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'access_subject_person_event'"
        )
        index = cursor.fetchone()[0]
        cursor.execute("DROP INDEX access_subject_person_event")
        # Foreign keys are right by construction: skip their per-row checks.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO analytics_accesseventsubject (event_id, person_id)"
            " SELECT e.id, CASE WHEN i = 0 AND e.n %% %s = 0 THEN %s"
            "  ELSE %s + ((e.n * %s + i) %% %s) END"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n"
            "       FROM analytics_accessevent) AS e,"
            " generate_series(0, %s - 1) AS i"
            " ORDER BY e.id, i",
            [step, target, first_other, per_event, OTHERS, per_event],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute(index)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return target


def measure(person_id: int, runs: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from analytics.models import AccessEvent, AccessEventSubject
    from analytics.selectors import access_events_for_person

    subjects = AccessEventSubject.objects.count()
    print(
        f"{AccessEvent.objects.count():,} access events, {subjects:,} subject rows; "
        f"person {person_id} is in "
        f"{AccessEventSubject.objects.filter(person_id=person_id).count()} of them\n"
    )
    times, counts = [], set()
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            events = list(access_events_for_person(person_id=person_id))
            # What a page shows of each event: no query more.
            for e in events:
                _ = (e.grant.request.purpose.name, e.grant.decision.round, e.user.email)
                _ = e.dataset.name
            times.append(time.perf_counter() - started)
        counts.add(len(queries.captured_queries))
        assert len(events) == 500, len(events)
    times_ms = sorted(t * 1000 for t in times)
    p95 = times_ms[max(0, round(0.95 * len(times_ms)) - 1)]
    plan = access_events_for_person(person_id=person_id).explain(analyze=True)
    index_lines = [line.strip() for line in plan.splitlines() if "access_subject" in line]
    print(
        f"access_events_for_person, {runs} runs, {len(events)} events each:\n"
        f"  queries per call: {sorted(counts)}\n"
        f"  median {statistics.median(times_ms):.1f} ms, 95th percentile {p95:.1f} ms,"
        f" max {times_ms[-1]:.1f} ms   (bar: < 50 ms)\n"
        f"  index used: {index_lines[0] if index_lines else 'NONE'}\n\n"
        f"EXPLAIN ANALYZE:\n{plan}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-event", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    url = database_url(BENCH_DB)
    create_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    grant = approved_grant()
    started = time.perf_counter()
    target = fill(grant, events=args.events, per_event=args.per_event, target_events=500)
    print(f"wrote the log in {time.perf_counter() - started:.1f} s")
    measure(target, args.runs)


if __name__ == "__main__":
    main()
