"""Benchmark: the "My data" and "Who used my data" pages, against a trivial Django page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/mydata.py

It creates a scratch database (custos_bench_mydata), gets one approved grant through
``analytics.services`` (bench/extract.py's ``approved_grant``, which also registers the
OULAD datasets with ``apply``), registers two more OULAD-shaped datasets (VLE activity
and registrations), and creates the measured person with a login (through the
services). Then, set-based with ``generate_series`` into the real tables:

* 100,000 other people;
* 10,000,000 records over the four datasets, in OULAD's proportions (VLE activity
  8.5M, assessments 1M, student information and registrations 250k each), 500 of them
  the measured person's (380, 80, 20, 20), spread evenly through each dataset's rows;
* 100,000 access events through the grant over a year (extracts, previews,
  downloads, aggregates), 50 people each, the measured person in 300 of them.

The record index is the migration's own, dropped for the load and rebuilt after it,
read back from pg_indexes (as bench/access_events.py does). The access log is
append-only, so the database is dropped and recreated on every run (``--reuse``
measures an already seeded one again).

It then collects the static files into a temporary directory and serves the project's
WSGI application (governance.wsgi) with the standard library's wsgiref server in a
child process, as production runs it (DJANGO_DEBUG=false, behind a proxy that says
https), with ROOT_URLCONF set to bench/mydata_urls.py: the project's URLs plus two
baselines. It signs in as the measured person through the login form (session
cookie) and requests, one request at a time over a fresh TCP connection each,
``--runs`` times each (interleaved, after five warm-up requests each):

* the trivial page: a tiny HttpResponse through the same handler and middleware (no
  session, no database): the page the bar is set against;
* a signed-in page: one line in base.html (session, user, navigation), the least any
  page of the portal costs, for comparison;
* My data (``my-data``) and
* Who used my data (``my-uses``).

It prints each page's median and 95th percentile latency (as the client sees it: the
whole HTTP round trip), its ratio to both baselines' medians, its size, and the number
of SQL queries the server ran for it (counted in the server by a WSGI wrapper around
the application, on every request). It does all this twice: with the settings as they
are (persistent database connections; with REDIS_URL set, sessions read from Redis),
and with a new database connection for every request (DJANGO_CONN_MAX_AGE=0).

Bar (issue 5): My data's median within 5x the trivial page's.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import ROOT, approved_grant, database_url  # noqa: E402

BENCH_DB = "custos_bench_mydata"
OTHERS = 100_000
ME_EMAIL = "me@example.org"
ME_PASSWORD = "bench-" + "measured-person-password"
TRIVIAL, SIGNED_IN = "/bench/trivial/", "/bench/signed-in/"
WARM_UP = 5
BAR = 5
INFO, ASSESSMENTS = "oulad-student-info", "oulad-assessments"
VLE, REGISTRATION = "oulad-vle", "oulad-registration"

# Two more datasets about the same students, OULAD-shaped (studentVle, studentRegistration).
EXTRA_REGISTRY = """\
dataset:
  slug: oulad-vle
  name: OULAD VLE activity
  description: Clicks per student, VLE resource and day
  source_system: Open University VLE
  lawful_basis: legitimate_interest
  retention_days: 730
  status: active
  tags: [learning]
  stewards: [steward@example.org]
  purposes: [course-improvement, learning-support]
  person_column: id_student
  fields:
    - {name: code_module, label: Module, type: category, sensitivity: internal}
    - {name: code_presentation, label: Presentation, type: category, sensitivity: internal}
    - {name: id_site, label: VLE resource, type: integer, sensitivity: internal}
    - {name: date, label: Day, type: integer, sensitivity: internal,
       description: Days since the start of the presentation}
    - {name: sum_click, label: Clicks, type: integer, sensitivity: personal,
       description: Clicks on the resource that day}
---
dataset:
  slug: oulad-registration
  name: OULAD registrations
  description: When each student registered for and left each module presentation
  source_system: Open University student records
  lawful_basis: contract
  retention_days: 2555
  status: active
  tags: [learning]
  stewards: [steward@example.org]
  purposes: [course-improvement]
  person_column: id_student
  fields:
    - {name: code_module, label: Module, type: category, sensitivity: internal}
    - {name: code_presentation, label: Presentation, type: category, sensitivity: internal}
    - {name: date_registration, label: Registered, type: integer, sensitivity: internal,
       description: Days relative to the start}
    - {name: date_unregistration, label: Unregistered, type: integer, sensitivity: personal,
       description: Days relative to the start; empty if the student stayed}
"""


def _pick(values: list[str], n: str) -> str:
    """SQL: one of ``values`` chosen by the integer expression ``n``."""
    array = ", ".join("'" + v.replace("'", "''").replace("%", "%%") + "'" for v in values)
    return f"(ARRAY[{array}])[1 + (({n}) %% {len(values)})::int]"


MODULES = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG"]
PRESENTATIONS = ["2013B", "2013J", "2014B", "2014J"]
REGIONS = [
    "East Anglian Region",
    "Scotland",
    "North Western Region",
    "South East Region",
    "West Midlands Region",
    "Wales",
    "North Region",
    "South Region",
    "Ireland",
    "South West Region",
    "East Midlands Region",
    "Yorkshire Region",
    "London Region",
]
EDUCATION = [
    "HE Qualification",
    "A Level or Equivalent",
    "Lower Than A Level",
    "Post Graduate Qualification",
    "No Formal quals",
]
IMD = ["0-10%", "10-20", "20-30%", "30-40%", "40-50%", "50-60%", "60-70%", "70-80%", "80-90%"]

# slug -> (rows, of which the measured person's, the "values" JSON as SQL of n)
DATASETS: dict[str, tuple[int, int, str]] = {
    VLE: (
        8_500_000,
        380,
        "jsonb_build_object("
        f"'code_module', {_pick(MODULES, 'n / 1000')},"
        f" 'code_presentation', {_pick(PRESENTATIONS, 'n / 7000')},"
        " 'id_site', 546000 + n %% 1300, 'date', n %% 269 - 10, 'sum_click', 1 + n %% 17)",
    ),
    ASSESSMENTS: (
        1_000_000,
        80,
        "jsonb_build_object("
        "'id_assessment', 1752 + n %% 206, 'date_submitted', n %% 250,"
        " 'is_banked', n %% 50 = 0, 'score', (n %% 101)::float)",
    ),
    INFO: (
        250_000,
        20,
        "jsonb_build_object("
        f"'code_module', {_pick(MODULES, 'n')},"
        f" 'code_presentation', {_pick(PRESENTATIONS, 'n / 7')},"
        f" 'gender', {_pick(['F', 'M'], 'n')},"
        f" 'region', {_pick(REGIONS, 'n')},"
        f" 'highest_education', {_pick(EDUCATION, 'n / 3')},"
        f" 'imd_band', {_pick(IMD, 'n / 5')},"
        f" 'age_band', {_pick(['0-35', '0-35', '35-55', '55<='], 'n / 11')},"
        " 'num_of_prev_attempts', n %% 4, 'studied_credits', 30 * (1 + n %% 8),"
        f" 'disability', {_pick(['N'] * 9 + ['Y'], 'n / 13')},"
        f" 'final_result', {_pick(['Pass', 'Fail', 'Withdrawn', 'Distinction'], 'n / 17')})",
    ),
    REGISTRATION: (
        250_000,
        20,
        "jsonb_build_object("
        f"'code_module', {_pick(MODULES, 'n')},"
        f" 'code_presentation', {_pick(PRESENTATIONS, 'n / 7')},"
        " 'date_registration', -(n %% 200),"
        " 'date_unregistration', CASE WHEN n %% 4 = 0 THEN n %% 250 END)",
    ),
}


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


# --- seeding ------------------------------------------------------------------------


def registry_and_me():
    """The registry, one approved grant and the measured person with a login, all
    through the services. Returns (grant, person)."""
    from django.core.management import call_command

    from consent.services import consent_give
    from governance.models import Person, Purpose
    from governance.services import accounts

    def register_more(steward):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as extra:
            extra.write(EXTRA_REGISTRY)
            extra.flush()
            with open(os.devnull, "w") as quiet:
                call_command("apply", extra.name, stdout=quiet)

    grant = approved_grant(register_more)
    user = accounts.user_create(
        actor=None, email=ME_EMAIL, password=ME_PASSWORD, full_name="Morgan Measured", roles=[]
    )
    person = Person.objects.create(
        external_id="me-0001", name="Morgan Measured", email=ME_EMAIL, org_unit="Learners"
    )
    accounts.person_link_user(actor=None, person=person, user=user)
    consent_give(actor=user, person=person, purpose=Purpose.objects.get(slug="learning-support"))
    return grant, person


def fill_people(cursor) -> int:
    cursor.execute(
        "INSERT INTO governance_person (external_id, name, email, org_unit, created_at)"
        " SELECT 'p' || n, '', '', '', now() FROM generate_series(1, %s) AS n",
        [OTHERS],
    )
    cursor.execute("SELECT min(id), max(id) FROM governance_person WHERE external_id LIKE 'p%%'")
    first, last = cursor.fetchone()
    assert last - first + 1 == OTHERS, (first, last)
    return first


def fill_records(cursor, *, me: int, first_other: int, scale: float) -> None:
    """10M records, set-based; the measured person's spread evenly through each dataset."""
    cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'record_dataset_person'")
    index = cursor.fetchone()[0]
    cursor.execute("DROP INDEX record_dataset_person")
    for slug, (rows, mine, values) in DATASETS.items():
        rows = int(rows * scale)
        started = time.perf_counter()
        cursor.execute("SELECT id FROM governance_dataset WHERE slug = %s", [slug])
        dataset = cursor.fetchone()[0]
        step = rows // mine
        cursor.execute(
            'INSERT INTO governance_record (dataset_id, person_id, load_id, "values")'
            " SELECT %(dataset)s,"
            "  CASE WHEN n %% %(step)s = 0 AND n / %(step)s <= %(mine)s THEN %(me)s"
            "  ELSE %(first)s + (n * 7919) %% %(others)s END,"
            f" NULL, {values}"
            " FROM generate_series(1::bigint, %(rows)s) AS n",
            {
                "dataset": dataset,
                "step": step,
                "mine": mine,
                "me": me,
                "first": first_other,
                "others": OTHERS,
                "rows": rows,
            },
        )
        cursor.execute(
            "UPDATE governance_dataset SET record_count = %s WHERE id = %s", [rows, dataset]
        )
        print(f"  {slug}: {rows:,} records in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    cursor.execute(index)
    print(f"  rebuilt record_dataset_person in {time.perf_counter() - started:.1f} s")


def fill_events(cursor, grant, *, me: int, first_other: int, events: int, per_event: int) -> None:
    """The access log: ``events`` reads over a year through the grant, ``per_event``
    people each; the measured person in 300 of them, spread over the whole log."""
    from extract import GRANTED

    mine = 300
    step = events // mine
    cursor.execute(
        "SELECT id, slug FROM governance_dataset WHERE slug = ANY(%s)", [[INFO, ASSESSMENTS]]
    )
    ids = {slug: pk for pk, slug in cursor.fetchall()}
    names = {slug: "[" + ", ".join(f'"{n}"' for n in GRANTED[slug]) + "]" for slug in ids}
    cursor.execute(
        "INSERT INTO analytics_accessevent (grant_id, user_id, kind, at, dataset_id,"
        " field_names, output_level, people, rows, detail)"
        " SELECT %(grant)s, %(user)s,"
        "  (ARRAY['extract', 'preview', 'aggregate', 'download'])[1 + n %% 4],"
        "  now() - (%(events)s - n) * interval '5 minutes',"
        "  CASE WHEN n %% 3 = 0 THEN %(assessments)s ELSE %(info)s END,"
        "  (CASE WHEN n %% 3 = 0 THEN %(assessment_fields)s ELSE %(info_fields)s END)::jsonb,"
        "  CASE WHEN n %% 4 = 2 THEN 'aggregate' ELSE 'pseudonymised' END,"
        "  %(per_event)s, %(per_event)s,"
        "  (CASE WHEN n %% 4 = 2 THEN '{\"group_by\": [\"code_module\"]}' ELSE '{}' END)::jsonb"
        " FROM generate_series(1, %(events)s) AS n",
        {
            "grant": grant.pk,
            "user": grant.grantee_id,
            "events": events,
            "assessments": ids[ASSESSMENTS],
            "info": ids[INFO],
            "assessment_fields": names[ASSESSMENTS],
            "info_fields": names[INFO],
            "per_event": per_event,
        },
    )
    cursor.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'access_subject_person_event'"
    )
    index = cursor.fetchone()[0]
    cursor.execute("DROP INDEX access_subject_person_event")
    cursor.execute(
        "INSERT INTO analytics_accesseventsubject (event_id, person_id)"
        " SELECT e.id, CASE WHEN i = 0 AND e.n %% %(step)s = 0 AND e.n / %(step)s <= %(mine)s"
        "  THEN %(me)s ELSE %(first)s + ((e.n * %(per_event)s + i) %% %(others)s) END"
        " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n"
        "       FROM analytics_accessevent) AS e,"
        " generate_series(0, %(per_event)s - 1) AS i"
        " ORDER BY e.id, i",
        {
            "step": step,
            "mine": mine,
            "me": me,
            "first": first_other,
            "per_event": per_event,
            "others": OTHERS,
        },
    )
    cursor.execute(index)


def seed(*, events: int, per_event: int, scale: float) -> None:
    from django.db import connection, transaction

    started = time.perf_counter()
    grant, person = registry_and_me()
    print(
        f"registry, grant {grant.pk} and the measured person: {time.perf_counter() - started:.1f} s"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Foreign keys are right by construction: skip their per-row checks.
        cursor.execute("SET LOCAL session_replication_role = replica")
        first_other = fill_people(cursor)
        fill_records(cursor, me=person.pk, first_other=first_other, scale=scale)
        started = time.perf_counter()
        fill_events(
            cursor, grant, me=person.pk, first_other=first_other, events=events, per_event=per_event
        )
        print(
            f"  {events:,} access events, {per_event} people each, in"
            f" {time.perf_counter() - started:.1f} s"
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")


def describe() -> int:
    """What the database holds; returns the measured person's id."""
    from django.db import connection
    from django.db.models import Count

    from analytics.models import AccessEvent, AccessEventSubject
    from governance.models import Person, Record

    person = Person.objects.get(user__email=ME_EMAIL)
    mine = dict(
        Record.objects.filter(person=person)
        .values_list("dataset__slug")
        .annotate(n=Count("id"))
        .values_list("dataset__slug", "n")
    )

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM governance_record")
        records = cursor.fetchone()[0]
    print(
        f"{records:,} records; the measured person ({person.external_id}) has"
        f" {sum(mine.values())}: "
        + ", ".join(f"{slug} {n}" for slug, n in sorted(mine.items()))
        + f"\n{AccessEvent.objects.count():,} access events,"
        f" {AccessEventSubject.objects.count():,} subject rows;"
        f" the measured person is in"
        f" {AccessEventSubject.objects.filter(person=person).count()} of them\n"
    )
    return person.pk


# --- the server (a child process) -----------------------------------------------------


def serve(port: int) -> None:
    """Serve governance.wsgi with wsgiref, one request at a time, counting the SQL
    queries of each request into an X-Bench-Queries response header."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.conf import settings
    from django.db import connection

    from governance.wsgi import application

    settings.ROOT_URLCONF = "mydata_urls"

    def counted(environ, start_response):
        queries = [0]

        def count(execute, sql, params, many, context):
            queries[0] += 1
            return execute(sql, params, many, context)

        def start(status, headers, exc_info=None):
            return start_response(
                status, [*headers, ("X-Bench-Queries", str(queries[0]))], exc_info
            )

        with connection.execute_wrapper(count):
            return application(environ, start)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", port, counted, handler_class=Quiet)
    print("ready", flush=True)
    server.serve_forever()


# --- the client -----------------------------------------------------------------------


class Browser:
    """One signed-in visitor: the cookies, and requests as a proxy in front would pass them."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = {
            "Host": f"127.0.0.1:{self.port}",
            "X-Forwarded-Proto": "https",
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            **(headers or {}),
        }
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        conn.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return response, content, elapsed

    def sign_in(self, email: str, password: str) -> None:
        from urllib.parse import urlencode

        _response, page, _ = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        origin = f"https://127.0.0.1:{self.port}"
        response, _page, _ = self.request(
            "POST",
            "/accounts/login/",
            body=urlencode({"csrfmiddlewaretoken": token, "login": email, "password": password}),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": origin,
                "Referer": origin + "/accounts/login/",
            },
        )
        assert response.status == 302 and "sessionid" in self.cookies, (
            response.status,
            self.cookies,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIGURATIONS = [
    ("as configured (persistent connections; sessions in Redis when REDIS_URL is set)", ""),
    ("a new database connection per request (DJANGO_CONN_MAX_AGE=0)", "no-persist"),
]


def measure(url: str, runs: int) -> None:
    from django.urls import reverse

    pages = {
        "trivial page": TRIVIAL,
        "signed-in page": SIGNED_IN,
        "My data": reverse("my-data"),
        "Who used my data": reverse("my-uses"),
    }
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
        }
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=env | {"DATABASE_URL": url},
            check=True,
        )
        for title, options in CONFIGURATIONS:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(port)],
                cwd=ROOT,
                env=env
                | {"DATABASE_URL": url}
                | ({"DJANGO_CONN_MAX_AGE": "0"} if options == "no-persist" else {}),
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert server.stdout.readline().strip() == "ready"
                print(f"--- {title}")
                run_pages(Browser(port), pages, runs)
            finally:
                server.terminate()
                server.wait(timeout=30)


def check_pages(browser: Browser, pages: dict[str, str]) -> None:
    """What the measured pages must show, once: each dataset holding my records, and
    the request that read them."""
    from governance.models import Dataset

    _r, my_data, _ = browser.request("GET", pages["My data"])
    for name in Dataset.objects.filter(slug__in=DATASETS).values_list("name", flat=True):
        assert name.encode() in my_data, f"My data does not show {name}"
    _r, my_uses, _ = browser.request("GET", pages["Who used my data"])
    assert b"Assessment timing and results by module" in my_uses, "no use shown"


def run_pages(browser: Browser, pages: dict[str, str], runs: int) -> None:
    browser.sign_in(ME_EMAIL, ME_PASSWORD)
    check_pages(browser, pages)
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
    signed_in = statistics.median(times["signed-in page"])
    print(
        f"{runs} requests each, one at a time, interleaved, after {WARM_UP} warm-up requests"
        " each; latency as the client sees it (the whole HTTP round trip)\n"
    )
    print(
        f"{'page':<17} {'median':>8} {'p95':>8} {'x trivial':>10} {'x signed-in':>12}"
        f" {'queries':>8} {'size':>7}"
    )
    for label, path in pages.items():
        ms = sorted(times[label])
        p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
        median = statistics.median(ms)
        counts = ",".join(str(c) for c in sorted(queries[label]))
        print(
            f"{label:<17} {median:6.1f}ms {p95:6.1f}ms {median / trivial:9.1f}x"
            f" {median / signed_in:11.1f}x {counts:>8} {sizes[label] / 1024:5.0f}kB  {path}"
        )
    ratio = statistics.median(times["My data"]) / trivial
    verdict = "within the bar" if ratio <= BAR else "OVER THE BAR"
    print(f"\nMy data / trivial page: {ratio:.1f}x   (bar: <= {BAR}x) -- {verdict}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-event", type=int, default=50)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="records: this share of the 10,000,000"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="measure an already seeded database again"
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
        seed(events=args.events, per_event=args.per_event, scale=args.scale)
        print(f"seeded in {time.perf_counter() - started:.1f} s\n")
    describe()
    measure(url, args.runs)


if __name__ == "__main__":
    main()
