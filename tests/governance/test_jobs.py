"""Issue 11, "tasks that survive a dying worker": the findings replayed in-process.

A worker killed with ``kill -9`` stops wherever it is: nothing after that line runs,
no ``except`` block, no ``finally`` that writes. ``WorkerDied`` (a BaseException, so
no ``except Exception`` in the task catches it) stops a task the same way, and its
open transaction rolls back as PostgreSQL rolls back a dead connection's. What a real
worker and broker do around it (redelivery, an acknowledged message that is never
redelivered) is replayed by calling the task again, or not. Tasks run eagerly here;
tests/governance/test_worker_faults.py does the same with real processes and real kills.
"""

from __future__ import annotations

import datetime
import html
import io
import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics import access, data_views
from analytics.models import AccessEvent, ExtractFile, ExtractStatus
from analytics.tasks import extract_prepare_task
from consent.models import ExportStatus, SubjectExport
from governance import jobs
from governance.celery import app
from governance.models import AuditVerification, LoadStatus, Record, RecordLoad, Role
from governance.services import records as records_service
from governance.tasks import jobs_sweep_task, record_load_task
from tests.factories import make_dataset, make_user

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = [
    ("score", "integer", "internal"),
    ("grade", "category", "personal", {"values": ["A", "B", "C"]}),
]
GOOD_CSV = b"external_id,score,grade\nS1,71,A\nS2,58,B\nS3,64,C\n"


class WorkerDied(BaseException):  # noqa: N818 - it is what happened, not an error
    """The worker process was killed here."""


@pytest.fixture(autouse=True)
def eager():
    """Tasks enqueued after commit run in-process, whatever broker REDIS_URL names."""
    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def steward():
    return make_user(Role.STEWARD)


@pytest.fixture
def dataset(steward):
    return make_dataset(steward, slug="course-scores", fields=FIELDS)


def upload(client, dataset, content: bytes = GOOD_CSV):
    data = {"file": SimpleUploadedFile("scores.csv", content, content_type="text/csv")}
    return client.post(f"/datasets/{dataset.slug}/upload/", data)


def text(response) -> str:
    page = html.unescape(response.content.decode())
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def die_in(monkeypatch, module, name: str, *, times: int = 1, after: bool = False):
    """Kill the worker the next ``times`` times ``module.name`` is called (when it
    is called, or just after it returned)."""
    original = getattr(module, name)
    left = {"n": times}

    def dying(*args, **kwargs):
        if left["n"] > 0:
            left["n"] -= 1
            if after:
                original(*args, **kwargs)
            raise WorkerDied
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)


def worker_gone(job) -> None:
    """Time passes with nobody beating the job's heart: older than the threshold."""
    stale = timezone.now() - datetime.timedelta(seconds=settings.CUSTOS_JOB_STALE_SECONDS + 1)
    type(job).objects.filter(pk=job.pk).update(heartbeat_at=stale)


def sweep() -> None:
    jobs_sweep_task.apply().get()


# --- imports ---------------------------------------------------------------------------


def test_a_load_whose_worker_died_does_not_stay_running(monkeypatch, client, steward, dataset):
    """Found: the import rolled back but the load stayed "running" (and, when the pool
    process died, the acknowledged message never came back). The sweeper requeues it."""
    client.force_login(steward)
    die_in(monkeypatch, records_service, "_write_batch")
    with pytest.raises(WorkerDied):
        upload(client, dataset)
    load = RecordLoad.objects.get()
    assert load.status == LoadStatus.RUNNING
    assert Record.objects.count() == 0  # rolled back with the dead connection

    sweep()  # the heartbeat is fresh: the worker may be alive, so nothing happens
    load.refresh_from_db()
    assert (load.status, load.attempts) == (LoadStatus.RUNNING, 1)

    worker_gone(load)
    sweep()  # no message is left (acknowledged): the sweeper requeues the load

    load.refresh_from_db()
    assert (load.status, load.attempts, load.rows) == (LoadStatus.SUCCEEDED, 2, 3)
    assert Record.objects.count() == 3
    assert "3 rows loaded" in text(client.get(load.get_absolute_url()))


def test_a_load_that_keeps_killing_its_worker_fails_with_a_reason_and_can_be_retried(
    monkeypatch, client, steward, dataset
):
    client.force_login(steward)
    die_in(monkeypatch, records_service, "_write_batch", times=settings.CUSTOS_JOB_MAX_ATTEMPTS)
    with pytest.raises(WorkerDied):
        upload(client, dataset)
    load = RecordLoad.objects.get()
    for _ in range(settings.CUSTOS_JOB_MAX_ATTEMPTS - 1):
        worker_gone(load)
        with pytest.raises(WorkerDied):
            sweep()
    worker_gone(load)
    sweep()  # out of attempts: failed, with the reason

    load.refresh_from_db()
    assert load.status == LoadStatus.FAILED
    assert Record.objects.count() == 0
    page = text(client.get(load.get_absolute_url()))
    assert "The worker stopped while importing this file" in page
    assert "Retry" in page

    response = client.post(reverse("load-retry", args=[load.pk]))
    assert response.status_code == 302
    load.refresh_from_db()
    assert (load.status, load.rows) == (LoadStatus.SUCCEEDED, 3)
    assert Record.objects.count() == 3
    # Retrying a finished load does nothing.
    client.post(reverse("load-retry", args=[load.pk]))
    assert Record.objects.count() == 3


def test_a_reupload_supersedes_the_stuck_load_so_its_redelivery_cannot_double_the_dataset(
    monkeypatch, client, steward, dataset
):
    """Found: the message of the stuck load was redelivered after the user had uploaded
    the file again, and the dataset doubled."""
    client.force_login(steward)
    die_in(monkeypatch, records_service, "_write_batch")
    with pytest.raises(WorkerDied):
        upload(client, dataset)
    stuck = RecordLoad.objects.get()
    assert stuck.status == LoadStatus.RUNNING

    again = upload(client, dataset)  # the user, tired of "running", uploads it again
    assert again.status_code == 302
    fresh = RecordLoad.objects.exclude(pk=stuck.pk).get()
    assert fresh.status == LoadStatus.SUCCEEDED
    assert Record.objects.count() == 3

    worker_gone(stuck)
    record_load_task.apply(args=[stuck.pk]).get()  # the broker redelivers the old message

    assert Record.objects.count() == 3
    dataset.refresh_from_db()
    assert dataset.record_count == 3
    stuck.refresh_from_db()
    assert stuck.status == LoadStatus.SUPERSEDED
    assert "replaced by a later upload" in text(client.get(stuck.get_absolute_url()))


def test_a_redelivered_load_task_for_a_finished_load_does_nothing(client, steward, dataset):
    client.force_login(steward)
    upload(client, dataset)
    load = RecordLoad.objects.get()
    record_load_task.apply(args=[load.pk]).get()
    record_load_task.apply(args=[load.pk]).get()
    load.refresh_from_db()
    assert (load.status, load.attempts) == (LoadStatus.SUCCEEDED, 1)
    assert Record.objects.count() == 3


# --- extracts --------------------------------------------------------------------------


def test_a_redelivered_extract_writes_one_download_event(monkeypatch):
    """Found: a redelivered extract wrote a second download event, so one file showed
    as two reads in every person's log."""
    from tests.analytics.test_data_pages import IDS, _grant

    grant, analyst, _oulad = _grant("pseudonymised")
    monkeypatch.setattr(data_views, "INLINE_EXTRACT_MAX_ROWS", 10)
    original = access.extract_csv

    def dies_after_logging(scope, kind=access.AccessKind.EXTRACT, **kwargs):
        stream = original(scope, kind, **kwargs)  # the event is written here
        next(stream)
        raise WorkerDied

    monkeypatch.setattr(access, "extract_csv", dies_after_logging)
    client = Client()
    client.force_login(analyst)
    with pytest.raises(WorkerDied):
        client.post(reverse("grant-download", args=[grant.pk]))
    extract = ExtractFile.objects.get()
    assert extract.status == ExtractStatus.RUNNING
    assert AccessEvent.objects.filter(kind="download").count() == 1

    monkeypatch.setattr(access, "extract_csv", original)
    worker_gone(extract)
    extract_prepare_task.apply(args=[extract.pk]).get()  # the redelivered message

    extract.refresh_from_db()
    assert (extract.status, extract.rows) == (ExtractStatus.READY, len(IDS))
    downloads = AccessEvent.objects.filter(kind="download")
    assert downloads.count() == 1
    assert extract.access_event == downloads.get()
    extract_prepare_task.apply(args=[extract.pk]).get()
    assert AccessEvent.objects.filter(kind="download").count() == 1


def test_an_extract_whose_worker_died_fails_with_a_reason_and_can_be_retried(monkeypatch):
    from tests.analytics.test_data_pages import IDS, _grant

    grant, analyst, _oulad = _grant("pseudonymised")
    monkeypatch.setattr(data_views, "INLINE_EXTRACT_MAX_ROWS", 10)
    monkeypatch.setattr(settings, "CUSTOS_JOB_MAX_ATTEMPTS", 1)
    die_in(monkeypatch, access, "extract_csv")
    client = Client()
    client.force_login(analyst)
    with pytest.raises(WorkerDied):
        client.post(reverse("grant-download", args=[grant.pk]))
    extract = ExtractFile.objects.get()
    worker_gone(extract)
    sweep()

    extract.refresh_from_db()
    assert extract.status == ExtractStatus.FAILED
    page = text(client.get(reverse("extract-detail", args=[extract.pk])))
    assert "The worker stopped while preparing this extract" in page
    assert "Retry" in page

    client.post(reverse("extract-retry", args=[extract.pk]))
    extract.refresh_from_db()
    assert (extract.status, extract.rows) == (ExtractStatus.READY, len(IDS))
    assert AccessEvent.objects.filter(kind="download").count() == 1


# --- subject access exports and audit verifications ------------------------------------


def test_an_export_whose_worker_died_is_requeued_and_the_person_told_once(monkeypatch):
    from consent import report
    from consent import services as consent_services
    from governance.models import Notification
    from tests.consent.factories import make_subject_world

    world = make_subject_world(people=3)
    die_in(monkeypatch, report, "render_html")
    with pytest.raises(WorkerDied):
        consent_services.export_request(actor=world.user, person=world.person)
    export = SubjectExport.objects.get()
    assert export.status == ExportStatus.RUNNING

    worker_gone(export)
    sweep()

    export.refresh_from_db()
    assert export.status == ExportStatus.READY
    assert export.json_file and export.html_file
    assert Notification.objects.filter(key=f"export-finished:{export.pk}").count() == 1


def test_an_audit_verification_whose_worker_died_is_requeued_and_recorded_once(monkeypatch):
    from governance.audit import chain
    from governance.tasks import audit_verify_task

    die_in(monkeypatch, chain, "check_chain")
    with pytest.raises(WorkerDied):
        audit_verify_task.apply(task_id="beat-run-1").get()
    verification = AuditVerification.objects.get()
    assert verification.status == "running"
    assert chain.latest_verification() is None  # a half-run is not a result

    audit_verify_task.apply(task_id="beat-run-1").get()  # redelivered, worker still alive?
    assert AuditVerification.objects.count() == 1
    worker_gone(verification)
    sweep()

    verification = AuditVerification.objects.get()
    assert (verification.status, verification.ok) == ("succeeded", True)
    assert chain.latest_verification() == verification
    audit_verify_task.apply(task_id="beat-run-1").get()
    assert AuditVerification.objects.count() == 1


# --- how the broker and worker are configured -----------------------------------------


def test_every_task_is_acknowledged_late_and_rejected_when_its_worker_is_lost():
    """Found: when only the pool process died, Celery acknowledged the message."""
    ours = [t for name, t in app.tasks.items() if name.split(".")[0] in jobs.APPS]
    assert len(ours) >= 10
    for task in ours:
        assert task.acks_late, task.name
        assert task.reject_on_worker_lost, task.name
    assert app.conf.task_reject_on_worker_lost is True
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    # A message held by a dead worker comes back after this; the sweeper acts sooner.
    assert visibility > settings.CUSTOS_JOB_STALE_SECONDS
    assert visibility >= 3600
    sweeps = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == jobs_sweep_task.name
    ]
    assert len(sweeps) == 1


def test_a_job_queued_but_never_delivered_is_sent_again(steward, dataset):
    """A broker that restarted without its queue loses messages: the job stays queued.
    (``record_load_create`` queues no message: the page does, after commit.)"""
    load = records_service.record_load_create(
        actor=steward,
        dataset=dataset,
        file_name="scores.csv",
        file=SimpleUploadedFile("scores.csv", GOOD_CSV),
    )
    sweep()  # just queued: give the broker time
    load.refresh_from_db()
    assert load.status == LoadStatus.QUEUED
    long_ago = timezone.now() - datetime.timedelta(seconds=settings.CUSTOS_JOB_RESEND_SECONDS + 1)
    RecordLoad.objects.filter(pk=load.pk).update(queued_at=long_ago)
    sweep()
    load.refresh_from_db()
    assert load.status == LoadStatus.SUCCEEDED
    assert Record.objects.count() == 3


def test_people_import_through_the_page_is_all_or_nothing_when_the_worker_dies(monkeypatch, client):
    """Importing people runs in the request, in one transaction: a death writes nothing."""
    from governance.models import Person
    from governance.services import people

    dpo = make_user(Role.DPO)
    client.force_login(dpo)
    die_in(monkeypatch, people, "bulk_create_with_history", after=True)
    payload = io.BytesIO(b"external_id,name,email\nP1,Ada,ada@example.org\n")
    payload.name = "people.csv"
    with pytest.raises(WorkerDied):
        client.post(reverse("person-import"), {"file": payload})
    assert Person.objects.count() == 0
