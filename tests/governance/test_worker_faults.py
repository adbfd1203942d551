"""Issue 11's fault test: a real Celery worker, killed with SIGKILL, again and again.

A prefork worker (concurrency 1) and celery beat (for the sweeper) run as processes
against the test database and a real Redis. While imports, extracts, subject access
exports and audit verifications run, the worker is killed at random moments, at least
20 times: sometimes the whole worker (its process group, as the OOM killer or a lost
machine would), sometimes only the pool process running the task. After the last kill
every job must end succeeded (or failed with the worker-stopped reason, and then
retried to success), with exact record counts and one access event per extract file.
A second test stops Redis in the middle of a run and starts it again: the jobs must
finish within 60 seconds of Redis coming back.

Thresholds are seconds here (CUSTOS_JOB_* in the workers' environment); production
uses the defaults in governance/settings.py. Skipped on SQLite; needs REDIS_URL.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from analytics import access
from analytics import services as analytics_services
from analytics.models import AccessEvent, ExtractFile, ExtractStatus
from analytics.tasks import extract_prepare_task
from consent import services as consent_services
from consent.models import ExportStatus, SubjectExport
from governance import jobs
from governance.models import AuditVerification, LoadStatus, Notification, Record, RecordLoad
from governance.services.records import record_load_create
from governance.tasks import audit_verify_task, record_load_task
from tests.analytics.factories import OULAD_FIELDS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
KILLS = 22
IMPORTS, ROWS_PER_IMPORT = 4, 10_000
EXTRACTS, EXPORTS, AUDITS = 4, 4, 3
JOB_ENV = {
    "CUSTOS_JOB_HEARTBEAT_SECONDS": "0.5",
    "CUSTOS_JOB_STALE_SECONDS": "3",
    "CUSTOS_JOB_SWEEP_SECONDS": "1",
    "CUSTOS_JOB_MAX_ATTEMPTS": "8",
    "CUSTOS_JOB_RESEND_SECONDS": "5",
}


@pytest.fixture(autouse=True)
def _needs_a_broker():
    if not settings.REDIS_URL:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("REDIS_URL is missing on CI")
        pytest.skip("needs REDIS_URL: a real broker for a real worker")


def _database_url() -> str:
    """The test database (test_<name>), for the worker processes."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Processes:
    """The worker and beat processes of one test, each in its own process group."""

    def __init__(self, tmp_path: Path, redis_url: str):
        self.tmp_path = tmp_path
        # The workers are the application (DATABASE_URL, the app role on the test
        # database); they never migrate, so they get no owner URL (which names the
        # non-test database and would not match).
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_OWNER_URL"},
            **JOB_ENV,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": redis_url,
            "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "DJANGO_CONN_MAX_AGE": "0",
            "DJANGO_LOG_LEVEL": "ERROR",
        }
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.log = (tmp_path / "worker.log").open("ab")
        self.starts = 0

    def _spawn(self, *args) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "celery", "-A", "governance", *args],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches the pool too
        )

    def start_worker(self):
        self.starts += 1
        self.worker = self._spawn(
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"fault-{self.starts}-{uuid.uuid4().hex[:6]}@%h",
        )

    def start_beat(self):
        self.beat = self._spawn(
            "beat", "--loglevel=WARNING", "-s", str(self.tmp_path / "beat-schedule")
        )

    def pool_child(self, timeout: float = 20) -> int:
        """The pid of the worker's pool process (its only child)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = _children(self.worker.pid)
            if children:
                return children[0]
            time.sleep(0.05)
        raise AssertionError(f"the worker has no pool process; see {self.log.name}")

    def kill_worker(self):
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=10)
        self.worker = None

    def stop(self):
        for process in (self.worker, self.beat):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.log.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@pytest.fixture
def processes(tmp_path):
    made = []

    def make(redis_url: str) -> Processes:
        running = Processes(tmp_path, redis_url)
        made.append(running)
        return running

    yield make
    for running in made:
        running.stop()


def _csv(first: int, count: int) -> bytes:
    names = [spec[0] for spec in OULAD_FIELDS]
    lines = [",".join(["external_id", *names])]
    for n in range(first, first + count):
        values = {name: "" for name in names} | {
            "code_module": ["AAA", "BBB", "CCC"][n % 3],
            "code_presentation": "2014J",
            "gender": "F" if n % 2 else "M",
            "region": "Wales",
            "age_band": "0-35",
            "studied_credits": str(60 + n % 3 * 30),
            "disability": "N",
            "final_result": "Pass" if n % 2 else "Fail",
        }
        lines.append(",".join([f"F-{n:07d}", *(values[name] for name in names)]))
    return ("\n".join(lines) + "\n").encode()


def _load(world, n: int) -> RecordLoad:
    content = _csv(n * ROWS_PER_IMPORT, ROWS_PER_IMPORT)
    return record_load_create(
        actor=world.oulad.steward,
        dataset=world.oulad.dataset,
        file_name=f"part-{n}.csv",
        file=SimpleUploadedFile(f"part-{n}.csv", content, content_type="text/csv"),
    )


def _unfinished() -> int:
    return (
        RecordLoad.objects.filter(status__in=[LoadStatus.QUEUED, LoadStatus.RUNNING]).count()
        + ExtractFile.objects.filter(
            status__in=[ExtractStatus.QUEUED, ExtractStatus.RUNNING]
        ).count()
        + SubjectExport.objects.filter(
            status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING]
        ).count()
        + AuditVerification.objects.filter(status__in=["queued", "running"]).count()
    )


def _running_now() -> bool:
    return any(
        model.objects.filter(status="running").exists()
        for model in (RecordLoad, ExtractFile, SubjectExport, AuditVerification)
    )


def _failed_jobs() -> list:
    return [
        *RecordLoad.objects.filter(status=LoadStatus.FAILED),
        *ExtractFile.objects.filter(status=ExtractStatus.FAILED),
        *SubjectExport.objects.filter(status=ExportStatus.FAILED),
        *AuditVerification.objects.filter(status="failed"),
    ]


def _wait(condition, *, timeout: float, what: str, log: Path) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
        time.sleep(0.2)
    return time.monotonic() - started


def test_jobs_survive_twenty_sigkills_of_the_worker(processes, tmp_path):
    from tests.consent.factories import make_subject_world

    started = time.monotonic()
    world = make_subject_world(people=EXPORTS + 2)
    people = list(world.oulad.dataset.records.values_list("person_id", flat=True))
    records_before = Record.objects.filter(dataset=world.oulad.dataset).count()
    downloads_before = AccessEvent.objects.filter(kind="download").count()

    from governance.celery import app

    app.control.purge()
    running = processes(settings.REDIS_URL)
    running.start_beat()
    running.start_worker()

    # Every kind of job, queued as the pages and beat queue them.
    loads = [_load(world, n) for n in range(IMPORTS)]
    for load in loads:
        record_load_task.delay(load.pk)
    scope = access.grant_scope(user=world.analyst, grant=world.grant)
    extracts = []
    for _ in range(EXTRACTS):
        extract = analytics_services.extract_file_create(actor=world.analyst, scope=scope)
        extract_prepare_task.delay(extract.pk)
        extracts.append(extract)
    from governance.models import Person

    persons = Person.objects.filter(pk__in=people, user__isnull=False)[:EXPORTS]
    exports = [
        consent_services.export_request(actor=person.user, person=person)[0] for person in persons
    ]
    audit_keys = [f"fault-audit-{uuid.uuid4().hex}" for _ in range(AUDITS)]
    for key in audit_keys:
        audit_verify_task.apply_async(task_id=key)

    rng = random.Random(int(os.environ.get("CUSTOS_FAULT_SEED", "11")))
    kills = {"worker": 0, "pool": 0}
    log = tmp_path / "worker.log"
    while sum(kills.values()) < KILLS:
        child = running.pool_child()
        # Wait for a job to be under way, then kill at a random moment into it.
        deadline = time.monotonic() + 8
        while not _running_now() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _running_now() and _unfinished() == 0:
            # Everything finished between kills: give the worker more to die on.
            load = _load(world, IMPORTS + sum(kills.values()))
            loads.append(load)
            record_load_task.delay(load.pk)
            continue
        # Jobs of 10,000 rows last about a second: kill within the first part of it, so
        # that most kills land inside a job, not between two.
        time.sleep(rng.uniform(0.0, 0.4))
        if rng.random() < 0.5:
            running.kill_worker()
            kills["worker"] += 1
            time.sleep(rng.uniform(0.0, 0.5))
            running.start_worker()
        else:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                continue  # that pool process had just been replaced: aim at the new one
            kills["pool"] += 1
            # The master notices, gives the message back (reject_on_worker_lost) and
            # starts a new pool process.
            deadline = time.monotonic() + 10
            while running.pool_child() == child and time.monotonic() < deadline:
                time.sleep(0.05)
    assert kills["worker"] >= 5 and kills["pool"] >= 5, kills

    # No more kills: every job ends, by itself or through the sweeper.
    _wait(lambda: _unfinished() == 0, timeout=90, what="every job to finish", log=log)
    stopped = _failed_jobs()
    for job in stopped:  # out of attempts: the owner sees why and retries
        assert job.failure_reason.startswith("The worker stopped while"), job.failure_reason
        assert job.can_retry
        assert jobs.job_retry(job)
    if stopped:
        _wait(lambda: _unfinished() == 0, timeout=60, what="the retried jobs", log=log)

    # 0 jobs lost or stuck.
    for load in loads:
        load.refresh_from_db()
        assert (load.status, load.rows) == (LoadStatus.SUCCEEDED, ROWS_PER_IMPORT), load.errors
        assert Record.objects.filter(load=load).count() == ROWS_PER_IMPORT
    for extract in extracts:
        extract.refresh_from_db()
        assert extract.status == ExtractStatus.READY, extract.failure_reason
        assert extract.access_event is not None
        assert extract.access_event.rows == extract.rows
    for export in exports:
        export.refresh_from_db()
        assert export.status == ExportStatus.READY, export.error
        assert Notification.objects.filter(key=f"export-finished:{export.pk}").count() == 1
    verifications = AuditVerification.objects.filter(task_key__in=audit_keys)
    assert sorted(verifications.values_list("status", flat=True)) == ["succeeded"] * AUDITS
    assert all(verifications.values_list("ok", flat=True)), list(
        verifications.values_list("problems", flat=True)
    )

    # 0 duplicated rows: exactly the rows of the files, each once.
    dataset = world.oulad.dataset
    dataset.refresh_from_db()
    expected = records_before + len(loads) * ROWS_PER_IMPORT
    assert Record.objects.filter(dataset=dataset).count() == expected
    assert dataset.record_count == expected
    assert Person.objects.filter(external_id__startswith="F-").count() == len(loads) * (
        ROWS_PER_IMPORT
    )

    # 0 duplicated access events: one download event per extract file.
    downloads = AccessEvent.objects.filter(kind="download")
    assert downloads.count() - downloads_before == EXTRACTS
    assert set(downloads.values_list("pk", flat=True)) >= {e.access_event_id for e in extracts}

    # Each kill that landed inside a job made that job be claimed once more (a job
    # may be killed several times): count the claims beyond the first.
    landed = sum(
        attempts - 1
        for model in (RecordLoad, ExtractFile, SubjectExport, AuditVerification)
        for attempts in model.objects.filter(attempts__gt=1).values_list("attempts", flat=True)
    )
    print(f"kills {kills}; kills that landed in a job: {landed}; retried: {len(stopped)}")  # noqa: T201
    assert landed >= KILLS // 2, "most kills should have landed inside a job"
    assert time.monotonic() - started < 180, "the fault test must stay under 3 minutes"


# --- a Redis restart -------------------------------------------------------------------


def _free_port(start: int = 6391) -> int:
    for port in range(start, start + 100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise AssertionError("no free port for a Redis server")


class Redis:
    """A private redis-server on loopback, with no persistence: a restart loses its
    queue, the worst case for the jobs waiting in it."""

    def __init__(self, tmp_path: Path):
        self.port = _free_port()
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(  # noqa: S603 - redis-server from PATH, our flags
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is missing on CI")
        pytest.skip("redis-server is not installed")
    server = Redis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_jobs_recover_within_a_minute_of_a_redis_restart(processes, redis_server, tmp_path):
    from celery import Celery

    from tests.consent.factories import make_subject_world

    world = make_subject_world(people=3)
    # The pages would enqueue through the app's broker; here the messages go to the
    # private Redis that this test restarts.
    broker = Celery("custos", broker=redis_server.url, set_as_current=False)
    loads = [_load(world, n) for n in range(3)]
    for load in loads:
        broker.send_task("governance.tasks.record_load_task", args=[load.pk])
    scope = access.grant_scope(user=world.analyst, grant=world.grant)
    extract = analytics_services.extract_file_create(actor=world.analyst, scope=scope)
    broker.send_task("analytics.tasks.extract_prepare_task", args=[extract.pk])
    from governance.services.verification import audit_verification_request

    verification = audit_verification_request(task_key=None, triggered_by="web")
    broker.send_task("governance.tasks.audit_verification_run_task", args=[verification.pk])

    running = processes(redis_server.url)
    running.start_beat()
    running.start_worker()
    log = tmp_path / "worker.log"
    _wait(_running_now, timeout=30, what="a job to start", log=log)

    redis_server.stop()  # mid-run: the queue, and every message in it, is gone
    time.sleep(2)
    redis_server.start()
    back = time.monotonic()

    _wait(lambda: _unfinished() == 0, timeout=60, what="the jobs after the restart", log=log)
    recovered = time.monotonic() - back
    assert recovered < 60
    for load in loads:
        load.refresh_from_db()
        assert (load.status, load.rows) == (LoadStatus.SUCCEEDED, ROWS_PER_IMPORT)
        assert Record.objects.filter(load=load).count() == ROWS_PER_IMPORT
    extract.refresh_from_db()
    assert extract.status == ExtractStatus.READY
    assert AccessEvent.objects.filter(extract_file=extract).count() == 1
    verification.refresh_from_db()
    assert (verification.status, verification.ok) == ("succeeded", True)
    print(f"jobs recovered {recovered:.1f} s after Redis came back")  # noqa: T201
