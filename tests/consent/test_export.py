"""The subject access export (GDPR Article 15): the background task writes a complete
JSON report and a printable page, once per request however often it is asked for;
a failure says so; old files are purged."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from consent import report, services
from consent.models import ExportStatus, SubjectExport
from consent.tasks import exports_purge_task, subject_export_task
from governance.models import Notification
from governance.services import registry
from tests.consent.factories import make_subject_world

pytestmark = pytest.mark.django_db

SOURCE = "Student records system (SITS)"


@pytest.fixture(autouse=True)
def eager():
    """Tasks enqueued after commit run in-process, whatever broker REDIS_URL names."""
    from governance.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def world():
    world = make_subject_world(people=4)
    registry.dataset_update(
        actor=world.oulad.steward,
        dataset=world.oulad.dataset,
        source_system=SOURCE,
        description="Demographics and final results per module registration",
    )
    record = world.oulad.dataset.records.get(person=world.person)
    services.correction_propose(
        actor=world.user,
        person=world.person,
        record=record,
        field=world.oulad.field("studied_credits"),
        proposed_value="90",
        note="I dropped a module in March.",
    )
    services.objection_file(
        actor=world.user,
        person=world.person,
        kind="objection",
        request_id=world.grant.request.pk,
        message="I never agreed to be read by analysts.",
    )
    return world


def export_notices(world) -> list[Notification]:
    return list(Notification.objects.filter(user=world.user, key__startswith="export-finished:"))


def prepare(world, django_capture_on_commit_callbacks) -> SubjectExport:
    with django_capture_on_commit_callbacks(execute=True):
        export, created = services.export_request(actor=world.user, person=world.person)
    assert created
    export.refresh_from_db()
    return export


def test_the_export_holds_everything_about_the_person_in_json_and_printable_html(
    world, django_capture_on_commit_callbacks
):
    export = prepare(world, django_capture_on_commit_callbacks)

    assert export.status == ExportStatus.READY and export.finished_at is not None
    data = json.loads(export.json_file.read())
    assert data["format"] == report.REPORT_FORMAT
    assert data["subject"]["external_id"] == world.person.external_id
    (dataset,) = data["datasets"]
    assert dataset["name"] == world.oulad.dataset.name
    assert dataset["source"] == SOURCE
    assert dataset["retention_days"] == 365
    assert dataset["lawful_basis"] == "Legitimate interest"
    assert dataset["stewards"] == [world.oulad.steward.full_name]
    assert [(p["name"], p["legal_basis"]) for p in dataset["purposes"]] == [
        (world.purpose.name, "Consent")
    ]
    fields = {f["name"]: f for f in dataset["fields"]}
    assert fields["disability"]["sensitivity"] == "Special category"
    assert fields["studied_credits"]["label"] == "Studied credits"
    (record,) = dataset["records"]
    assert record["values"]["disability"] == "Y"  # special category: theirs to see
    assert record["values"]["studied_credits"] == 60
    assert record["values"]["final_result"] == "Fail"
    (use,) = data["uses"]
    assert use["request"]["title"] == world.grant.request.title
    assert use["purpose"] == world.purpose.name
    assert use["output_level"] == "Pseudonymised"
    assert sorted(use["fields"]) == ["code_module", "final_result", "studied_credits"]
    assert world.analyst.full_name in use["recipients"]
    assert use["decision"] and use["decided_at"] and use["committee"]
    (consent,) = data["consents"]
    assert (consent["purpose_slug"], consent["state"]) == (world.purpose.slug, "given")
    assert [r["state"] for r in data["consent_receipts"]] == ["given"]
    assert data["corrections"][0]["value_held"] == 60
    assert data["corrections"][0]["proposed"] == "90"
    assert data["objections"][0]["use"] == world.grant.request.title
    assert data["automated_decision_making"].startswith("None.")
    assert len(data["your_rights"]) >= 3

    page = export.html_file.read().decode()
    assert "<script" not in page.lower() and "<link" not in page.lower()  # opens from disk
    for text in [
        world.person.external_id,
        world.oulad.dataset.name,
        SOURCE,
        "365 days",
        world.purpose.name,
        "Special category",
        "Studied credits",
        "<td>Y</td>",  # the disability value
        world.grant.request.title,
        world.analyst.full_name,
        "Pseudonymised",
        "I dropped a module in March.",
        "I never agreed to be read by analysts.",
        data["consent_receipts"][0]["receipt_id"],
        "Automated decision-making",
        report.RIGHTS[0],
    ]:
        assert text in page, text
    (notice,) = export_notices(world)
    assert notice.subject == "Your data export is ready"


def test_asking_twice_while_one_is_prepared_gives_one_export_and_one_notice(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first, created = services.export_request(actor=world.user, person=world.person)
        again, created_again = services.export_request(actor=world.user, person=world.person)

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert SubjectExport.objects.count() == 1
    assert len(export_notices(world)) == 1

    # Running (a worker has it): asking again still gives that one.
    SubjectExport.objects.filter(pk=first.pk).update(status=ExportStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        running, created = services.export_request(actor=world.user, person=world.person)
    assert (running.pk, created) == (first.pk, False)
    assert SubjectExport.objects.count() == 1


def test_a_redelivered_export_task_leaves_a_finished_export_alone(
    world, django_capture_on_commit_callbacks
):
    export = prepare(world, django_capture_on_commit_callbacks)
    files = (export.json_file.name, export.html_file.name)

    subject_export_task.apply(args=[export.pk])

    export.refresh_from_db()
    assert (export.json_file.name, export.html_file.name) == files
    assert len(export_notices(world)) == 1


def test_a_failed_export_says_so_and_leaves_no_half_report(
    world, django_capture_on_commit_callbacks, monkeypatch, settings
):
    def broken(report):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(report, "render_html", broken)

    export = prepare(world, django_capture_on_commit_callbacks)

    assert export.status == ExportStatus.FAILED
    assert "could not be prepared" in export.error
    assert not export.json_file and not export.html_file
    assert not [p for p in pathlib.Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    (notice,) = export_notices(world)
    assert notice.subject == "Your data export failed"


def test_the_purge_deletes_old_files_and_keeps_the_record(
    world, django_capture_on_commit_callbacks, settings
):
    old = prepare(world, django_capture_on_commit_callbacks)
    old_files = [old.json_file.name, old.html_file.name]
    long_ago = timezone.now() - datetime.timedelta(days=settings.CUSTOS_EXPORT_KEEP_DAYS + 1)
    SubjectExport.objects.filter(pk=old.pk).update(created_at=long_ago)
    recent = prepare(world, django_capture_on_commit_callbacks)

    assert exports_purge_task.apply().get() == 1

    assert not any(default_storage.exists(name) for name in old_files)
    old.refresh_from_db()
    assert (old.json_file.name, old.html_file.name) == ("", "")
    assert old.status == ExportStatus.READY  # the record that an export was made stays
    recent.refresh_from_db()
    assert default_storage.exists(recent.json_file.name)
    assert default_storage.exists(recent.html_file.name)
    assert exports_purge_task.apply().get() == 0
