"""Benchmark: loading records, against PostgreSQL's own COPY of the same file.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/import.py

It creates a scratch database (custos_bench), registers the OULAD datasets with
``apply``, then for studentInfo.csv and a generated 1,000,000-row file of the same
shape it measures, in the same run:

* COPY: ``COPY plain_table FROM STDIN (FORMAT csv, HEADER)`` into a table of text
  columns, streamed from the file;
* Custos: ``records_import`` (validation, people matched or created, records written),
  in a child process whose peak resident memory is reported.

Bar (issue 2): Custos at least 0.25 of COPY's rows per second; peak memory under
300 MB for the 1M-row file.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OULAD = ROOT.parent / "shared" / "data" / "oulad"
BENCH_DB = "custos_bench"
COLUMNS = [
    "code_module",
    "code_presentation",
    "gender",
    "region",
    "highest_education",
    "imd_band",
    "age_band",
    "num_of_prev_attempts",
    "studied_credits",
    "disability",
    "final_result",
]


def database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/import.py needs DATABASE_URL pointing at PostgreSQL")
    return base.rsplit("/", 1)[0] + "/" + name


def generate(path: Path, rows: int, seed: int = 2017) -> None:
    """A studentInfo-shaped file: values drawn from the real file's columns."""
    with (OULAD / "studentInfo.csv").open(newline="", encoding="utf-8") as source:
        reader = csv.DictReader(source)
        pools = {c: set() for c in COLUMNS}
        for row in reader:
            for c in COLUMNS:
                pools[c].add(row[c])
    choices = {c: sorted(v) for c, v in pools.items()}
    rng = random.Random(seed)
    people = rows // 4
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id_student", *COLUMNS])
        for _ in range(rows):
            writer.writerow(
                [f"g{rng.randrange(people)}"] + [rng.choice(choices[c]) for c in COLUMNS]
            )


def copy_baseline(url: str, path: Path) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        header = path.open(encoding="utf-8").readline().strip().split(",")
        conn.execute("CREATE TABLE bench_copy (" + ", ".join(f'"{c}" text' for c in header) + ")")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy("COPY bench_copy FROM STDIN (FORMAT csv, HEADER)") as copy:
                with path.open("rb") as stream:
                    while chunk := stream.read(1 << 20):
                        copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
    return elapsed


def storage_floor(url: str, rows_file: Path) -> float:
    """COPY of the records Custos wrote, as they are stored, into a table like the
    records table (JSONB, same indexes): what the storage costs with no parsing,
    validation or people matching at all."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cursor, rows_file.open("wb") as out:
            with cursor.copy(
                'COPY (SELECT dataset_id, load_id, person_id, "values" FROM governance_record'
                " WHERE dataset_id = (SELECT id FROM governance_dataset"
                " WHERE slug = 'oulad-student-info')) TO STDOUT"
            ) as copy:
                for chunk in copy:
                    out.write(chunk)
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute("CREATE TABLE bench_floor (LIKE governance_record INCLUDING ALL)")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(
                'COPY bench_floor (dataset_id, load_id, person_id, "values") FROM STDIN'
            ) as copy:
                with rows_file.open("rb") as stream:
                    while chunk := stream.read(1 << 20):
                        copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_floor")
    rows_file.unlink()
    return elapsed


def child(dataset_slug: str, path: Path) -> None:
    """Runs in a fresh process: one import, then prints seconds and peak RSS."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    django.setup()
    from governance.models import Dataset, LoadMode, User
    from governance.services.records import records_import

    actor = User.objects.get(email="steward@example.org")
    dataset = Dataset.objects.get(slug=dataset_slug)
    started = time.perf_counter()
    with path.open("rb") as stream:
        load = records_import(
            actor=actor, dataset=dataset, stream=stream, file_name=path.name, mode=LoadMode.REPLACE
        )
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{elapsed} {peak_kib} {load.rows} {load.people_created}")


def setup(url: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    env = {**os.environ, "DATABASE_URL": url}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    # The logins the OULAD registry names: its steward and the oversight committee.
    script = (
        "from governance.services.accounts import user_create;"
        "user_create(actor=None, email='steward@example.org', password=None,"
        " roles=['Data steward']);"
        "[user_create(actor=None, email=f'{name}@example.org', password=None,"
        " roles=['Committee member'])"
        " for name in ('chair', 'hr', 'legal', 'dpo', 'rep', 'committee')]"
    )
    subprocess.run([python, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "apply", "docs/examples/oulad.yaml"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def measure(url: str, label: str, path: Path, scratch: Path) -> tuple[float, float]:
    rows = sum(1 for _ in path.open("rb")) - 1
    copy_seconds = copy_baseline(url, path)
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, __file__, "--child", "oulad-student-info", str(path)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds, peak_kib, loaded, people = result.stdout.split()[-4:]
    seconds = float(seconds)
    peak_mb = int(peak_kib) / 1024
    floor_seconds = storage_floor(url, scratch / "stored.tsv")
    copy_rate, our_rate = rows / copy_seconds, rows / seconds
    print(
        f"{label}: {rows:,} rows, {int(people):,} new people\n"
        f"  COPY into a plain table:        {copy_seconds:7.2f} s  {copy_rate:12,.0f} rows/s\n"
        f"  Custos import_records:          {seconds:7.2f} s  {our_rate:12,.0f} rows/s\n"
        f"  ratio to COPY: {our_rate / copy_rate:.3f}   (bar: >= 0.25)\n"
        f"  peak memory (RSS of the importing process): {peak_mb:.0f} MB   (bar: < 300 MB)\n"
        f"  storage floor, COPY of the stored rows into the records table: "
        f"{floor_seconds:.2f} s, ratio {copy_seconds / floor_seconds:.3f}"
    )
    assert int(loaded) == rows
    return our_rate / copy_rate, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("DATASET", "FILE"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    url = database_url(BENCH_DB)
    setup(url)
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / "generated.csv"
        started = time.perf_counter()
        generate(generated, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s\n")
        measure(url, "studentInfo.csv", OULAD / "studentInfo.csv", Path(tmp))
        measure(url, f"generated {args.rows:,}-row file", generated, Path(tmp))


if __name__ == "__main__":
    main()
