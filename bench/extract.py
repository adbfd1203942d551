"""Benchmark: a pseudonymised extract, against PostgreSQL's own COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/extract.py

It creates a scratch database (custos_bench), registers the OULAD datasets with
``apply``, loads OULAD's studentAssessment.csv (its ``score`` column holds '?' for
unknown scores: a temporary copy with '?' turned into an empty cell is loaded into
``oulad-assessments``, whose score is a decimal) and a generated 2,000,000-row
studentInfo-shaped file (``oulad-student-info``) with ``records_import``, and
takes one pseudonymised request through sign-off, votes and the chair's decision
to get a grant. Then for each dataset, in the same run:

* COPY: ``COPY (SELECT external_id, "values" ->> field, ... FROM governance_record
  JOIN governance_person ... WHERE dataset_id = ...) TO STDOUT (FORMAT csv, HEADER)``,
  the same rows and columns, consumed through psycopg and discarded;
* Custos: ``analytics.access.extract_csv`` (grant checked, consent filter, access
  event and one subject row per person written, HMAC pseudonyms computed in SQL),
  consumed fully and discarded, in a child process whose peak resident memory is
  reported.

Bar (issue 4): Custos at least 0.5 of COPY's rows per second; memory flat (the same
for 174k and 2M rows).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
_import_bench = importlib.import_module("import")  # bench/import.py: shared helpers
COLUMNS, OULAD, ROOT = _import_bench.COLUMNS, _import_bench.OULAD, _import_bench.ROOT
database_url, generate = _import_bench.database_url, _import_bench.generate

BENCH_DB = "custos_bench"
ASSESSMENTS = "oulad-assessments"
STUDENT_INFO = "oulad-student-info"
# Granted (and approved) fields: nothing excluded, protected or special category,
# so the request needs no further justification and every field is extracted.
GRANTED = {
    STUDENT_INFO: [
        "code_module",
        "code_presentation",
        "region",
        "highest_education",
        "num_of_prev_attempts",
        "studied_credits",
        "final_result",
    ],
    ASSESSMENTS: ["id_assessment", "date_submitted", "is_banked", "score"],
}
COMMITTEE = ["chair", "hr", "legal", "dpo", "rep", "committee"]


def _django():
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    django.setup()


def approved_grant(load=None):
    """Users, the OULAD registry (``apply``), ``load(steward)`` if given, then one
    pseudonymised request taken through sign-off, three approvals and the chair's
    decision, all through the services. Returns the grant."""
    import datetime

    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from analytics import services
    from governance.models import Clearance, Dataset, Field, Purpose, Role, User
    from governance.services.accounts import user_create

    def user(email, role, clearance=Clearance.SPECIAL):
        return user_create(
            actor=None, email=email, password=None, roles=[role], clearance=clearance
        )

    # The notifications the flow sends are not part of the benchmark's output.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    steward = user("steward@example.org", Role.STEWARD)
    for name in COMMITTEE:
        user(f"{name}@example.org", Role.COMMITTEE)
    analyst = user("analyst@example.org", Role.ANALYST, Clearance.PERSONAL)
    with open(os.devnull, "w") as quiet:
        call_command("apply", str(ROOT / "docs" / "examples" / "oulad.yaml"), stdout=quiet)
    if load is not None:
        load(steward)
    fields = [
        Field.objects.get(dataset__slug=slug, name=name)
        for slug, names in GRANTED.items()
        for name in names
    ]
    today = timezone.localdate()
    request = services.request_create(
        actor=analyst,
        title="Assessment timing and results by module",
        purpose=Purpose.objects.get(slug="course-improvement"),
        justification="Relate submission timing to results to redesign assessment schedules.",
        expected_benefit="Assessment schedules that fewer students fall behind on.",
        minimisation_justification="Only the module, timing and result fields are named.",
        fields=fields,
        output_level="pseudonymised",
        starts_on=today,
        ends_on=today + datetime.timedelta(days=90),
    )
    services.request_submit(actor=analyst, request=request)
    for dataset in Dataset.objects.filter(slug__in=GRANTED):
        services.signoff_record(
            actor=steward, request=request, dataset=dataset, approve=True, note="Fine."
        )
    voters = [User.objects.get(email=f"{n}@example.org") for n in COMMITTEE[:3]]
    for voter in voters:
        services.vote_cast(actor=voter, request=request, choice="approve", rationale="Fine.")
    decision = services.decision_record(
        actor=voters[0], request=request, outcome="approved", rationale="Benefits learners."
    )
    return decision.grant


def prepare(assessments: Path, generated: Path) -> None:
    """Runs in a child: users, the registry, both loads, and an approved request.
    Prints the grant's id."""
    _django()
    from governance.models import Dataset, LoadMode
    from governance.services.records import records_import

    def load(steward):
        for slug, path in [(ASSESSMENTS, assessments), (STUDENT_INFO, generated)]:
            started = time.perf_counter()
            with path.open("rb") as stream:
                done = records_import(
                    actor=steward,
                    dataset=Dataset.objects.get(slug=slug),
                    stream=stream,
                    file_name=path.name,
                    mode=LoadMode.REPLACE,
                )
            seconds = time.perf_counter() - started
            print(f"loaded {done.rows:,} rows into {slug} in {seconds:.1f} s", file=sys.stderr)

    print(approved_grant(load).pk)


def child(grant_id: int, dataset_slug: str) -> None:
    """Runs in a fresh process: one extract, consumed and discarded, then prints
    seconds to the first byte, total seconds, rows, bytes and peak RSS."""
    _django()
    from analytics import access
    from governance.models import User

    user = User.objects.get(email="analyst@example.org")
    started = time.perf_counter()
    grant = access.grant_for_user(user=user, pk=grant_id)
    scope = access.grant_scope(user=user, grant=grant, dataset_slug=dataset_slug)
    assert scope.field_names == GRANTED[dataset_slug], scope.field_names
    stream = access.extract_csv(scope)
    first = None
    lines = size = 0
    for chunk in stream:
        if first is None:
            first = time.perf_counter() - started
        lines += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{first} {elapsed} {lines - 1} {size} {peak_kib}")


def copy_baseline(url: str, dataset_slug: str) -> tuple[float, int]:
    """PostgreSQL's own COPY of the same rows and columns, read and discarded."""
    import psycopg
    from psycopg import sql

    columns = sql.SQL(", ").join(
        sql.SQL('r."values" ->> {} AS {}').format(sql.Literal(n), sql.Identifier(n))
        for n in GRANTED[dataset_slug]
    )
    query = sql.SQL(
        "COPY (SELECT p.external_id, {} FROM governance_record r"
        " JOIN governance_person p ON p.id = r.person_id"
        " WHERE r.dataset_id = {}) TO STDOUT (FORMAT csv, HEADER)"
    )
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT id FROM governance_dataset WHERE slug = %s", [dataset_slug])
        query = query.format(columns, sql.Literal(cursor.fetchone()[0]))
        started = time.perf_counter()
        lines = 0
        with cursor.copy(query) as copy:
            for chunk in copy:
                lines += bytes(chunk).count(b"\n")
        return time.perf_counter() - started, lines - 1


def without_unknown_scores(path: Path) -> int:
    """studentAssessment.csv with '?' scores left empty (an unknown value). Returns
    how many were changed."""
    changed = 0
    with (OULAD / "studentAssessment.csv").open(newline="", encoding="utf-8") as source:
        with path.open("w", newline="", encoding="utf-8") as out:
            reader = csv.reader(source)
            writer = csv.writer(out, lineterminator="\n")
            header = next(reader)
            writer.writerow(header)
            score = header.index("score")
            for row in reader:
                if row[score] == "?":
                    row[score] = ""
                    changed += 1
                writer.writerow(row)
    return changed


def setup(url: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def measure(url: str, grant_id: int, label: str, slug: str) -> tuple[float, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    copy_baseline(url, slug)  # warm the cache for both
    copy_seconds, copy_rows = copy_baseline(url, slug)
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(grant_id), slug],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    first, seconds, rows, size, peak_kib = result.stdout.split()[-5:]
    first, seconds, rows = float(first), float(seconds), int(rows)
    peak_mb = int(peak_kib) / 1024
    copy_rate, our_rate = copy_rows / copy_seconds, rows / seconds
    print(
        f"{label} ({slug}): {rows:,} rows, {len(GRANTED[slug])} granted fields, "
        f"{int(size) / 1e6:.0f} MB of CSV\n"
        f"  COPY (SELECT ...) TO STDOUT:     {copy_seconds:7.2f} s  {copy_rate:12,.0f} rows/s\n"
        f"  Custos extract_csv:              {seconds:7.2f} s  {our_rate:12,.0f} rows/s"
        f"  (first byte after {first:.2f} s: grant checked, access event and subjects written)\n"
        f"  ratio to COPY: {our_rate / copy_rate:.3f}   (bar: >= 0.5)\n"
        f"  peak memory (RSS of the extracting process): {peak_mb:.0f} MB"
    )
    assert rows == copy_rows, (rows, copy_rows)
    return our_rate / copy_rate, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--child", nargs=2, metavar=("GRANT", "DATASET"))
    parser.add_argument("--prepare", nargs=2, metavar=("ASSESSMENTS", "GENERATED"))
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    if args.prepare:
        prepare(Path(args.prepare[0]), Path(args.prepare[1]))
        return
    url = database_url(BENCH_DB)
    setup(url)
    with tempfile.TemporaryDirectory() as tmp:
        assessments = Path(tmp) / "studentAssessment.csv"
        unknown = without_unknown_scores(assessments)
        print(
            f"studentAssessment.csv: {unknown} '?' scores turned into empty cells in a"
            f" temporary copy, loaded into {ASSESSMENTS} (score: decimal, docs/examples/oulad.yaml)"
        )
        generated = Path(tmp) / "generated.csv"
        started = time.perf_counter()
        generate(generated, args.rows)
        print(
            f"generated {args.rows:,} studentInfo-shaped rows in "
            f"{time.perf_counter() - started:.1f} s ({len(COLUMNS)} columns)"
        )
        env = {**os.environ, "DATABASE_URL": url}
        result = subprocess.run(
            [sys.executable, __file__, "--prepare", str(assessments), str(generated)],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
    grant_id = int(result.stdout.split()[-1])
    print(f"grant {grant_id}: pseudonymised, approved through analytics.services\n")
    small = measure(url, grant_id, "studentAssessment.csv", ASSESSMENTS)
    large = measure(url, grant_id, f"generated {args.rows:,} rows", STUDENT_INFO)
    print(
        f"\npeak memory: {small[1]:.0f} MB for the small dataset, {large[1]:.0f} MB for the"
        f" large one"
    )


if __name__ == "__main__":
    main()
