"""Uploading a CSV file from the dataset page: queued, run by Celery, watched on the load page.

With REDIS_URL set the ``celery_worker`` fixture runs a real worker in a thread, so the
load runs outside the request; without it Celery is eager. Either way the tests poll
the load until it finishes, as the load page does.
"""

from __future__ import annotations

import html
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.models import LoadStatus, Record, RecordLoad, Role
from governance.services import registry
from governance.services.records import record_load_create
from tests.factories import make_dataset, make_user

FIELDS = [
    ("score", "integer", "internal"),
    ("grade", "category", "personal", {"values": ["A", "B", "C"]}),
]
GOOD_CSV = b"external_id,score,grade\nS1,71,A\nS2,58,B\nS3,64,C\n"
BAD_CSV = b"external_id,score,grade\nS1,71,A\nS2,plenty,B\nS3,64,C\n"


@pytest.fixture
def steward():
    return make_user(Role.STEWARD)


@pytest.fixture
def dataset(steward):
    return make_dataset(steward, slug="course-scores", fields=FIELDS)


def upload(client, dataset, content: bytes, *, replace: bool = False, name: str = "scores.csv"):
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    if replace:
        data["replace"] = "on"
    return client.post(f"/datasets/{dataset.slug}/upload/", data)


def wait_until_finished(load: RecordLoad, timeout: float = 30) -> RecordLoad:
    deadline = time.monotonic() + timeout
    while True:
        load.refresh_from_db()
        if load.is_finished:
            return load
        if time.monotonic() > deadline:
            pytest.fail(f"load {load.pk} still {load.status} after {timeout}s")
        time.sleep(0.1)


def uploaded_load(response) -> RecordLoad:
    assert response.status_code == 302, response.content.decode()[:500]
    load = RecordLoad.objects.latest("created_at")
    assert response["Location"] == f"/loads/{load.pk}/"
    return load


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def test_a_steward_uploads_a_file_and_watches_it_load(celery_worker, client, steward, dataset):
    client.force_login(steward)

    load = uploaded_load(upload(client, dataset, GOOD_CSV))
    load = wait_until_finished(load)

    assert load.status == LoadStatus.SUCCEEDED
    assert load.rows == 3
    assert load.file_name == "scores.csv"
    page = client.get(f"/loads/{load.pk}/")
    assert page.status_code == 200
    text = page_text(page)
    assert "3 rows loaded (3 new people)" in text
    assert "The dataset now holds 3 records." in text
    dataset.refresh_from_db()
    assert dataset.record_count == 3
    assert sorted(
        Record.objects.filter(dataset=dataset).values_list("person__external_id", flat=True)
    ) == ["S1", "S2", "S3"]
    history = RecordLoad.history.filter(id=load.pk)
    assert {h.status for h in history} >= {LoadStatus.QUEUED, LoadStatus.SUCCEEDED}
    assert {h.history_user for h in history} == {steward}


def test_a_replacing_upload_swaps_the_records(celery_worker, client, steward, dataset):
    client.force_login(steward)
    wait_until_finished(uploaded_load(upload(client, dataset, GOOD_CSV)))

    load = uploaded_load(
        upload(client, dataset, b"external_id,score\nS9,99\n", replace=True, name="new.csv")
    )
    load = wait_until_finished(load)

    assert load.status == LoadStatus.SUCCEEDED
    assert load.mode == "replace"
    assert list(
        Record.objects.filter(dataset=dataset).values_list("person__external_id", flat=True)
    ) == ["S9"]
    dataset.refresh_from_db()
    assert dataset.record_count == 1
    assert "The dataset now holds 1 records." in page_text(client.get(f"/loads/{load.pk}/"))


def test_a_bad_file_fails_lists_the_row_error_and_writes_nothing(
    celery_worker, client, steward, dataset
):
    client.force_login(steward)

    load = wait_until_finished(uploaded_load(upload(client, dataset, BAD_CSV)))

    assert load.status == LoadStatus.FAILED
    assert load.rows == 0
    text = page_text(client.get(f"/loads/{load.pk}/"))
    assert "The file was rejected; no rows were written." in text
    assert "row 2 (line 3), column score: 'plenty' is not a whole number" in text
    assert not Record.objects.filter(dataset=dataset).exists()
    dataset.refresh_from_db()
    assert dataset.record_count == 0
    assert {h.history_user for h in RecordLoad.history.filter(id=load.pk)} == {steward}


def test_htmx_polling_gets_only_the_status_fragment(celery_worker, client, steward, dataset):
    client.force_login(steward)
    load = wait_until_finished(uploaded_load(upload(client, dataset, GOOD_CSV)))

    full = client.get(f"/loads/{load.pk}/")
    fragment = client.get(f"/loads/{load.pk}/", HTTP_HX_REQUEST="true")

    assert "<html" in full.content.decode()
    body = fragment.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="load-status"')
    assert "3 rows loaded" in body


@pytest.mark.django_db
def test_a_queued_load_fragment_keeps_polling(client, steward, dataset):
    load = record_load_create(actor=steward, dataset=dataset, file_name="later.csv")
    client.force_login(steward)

    body = client.get(f"/loads/{load.pk}/", HTTP_HX_REQUEST="true").content.decode()

    assert "<html" not in body
    assert f'hx-get="/loads/{load.pk}/"' in body
    assert "Queued" in body


@pytest.mark.django_db
def test_the_load_page_is_404_for_an_unrelated_user(client, steward, dataset):
    load = record_load_create(actor=steward, dataset=dataset, file_name="scores.csv")
    analyst = make_user(Role.ANALYST)
    other_steward = make_user(Role.STEWARD)

    client.force_login(analyst)
    assert client.get(f"/loads/{load.pk}/").status_code == 404
    assert client.get(f"/loads/{load.pk}/", HTTP_HX_REQUEST="true").status_code == 404
    client.force_login(other_steward)
    assert client.get(f"/loads/{load.pk}/").status_code == 404
    assert client.get(f"/loads/{load.pk + 1000}/").status_code == 404

    for overseer in (make_user(Role.DPO), make_user(Role.AUDITOR)):
        client.force_login(overseer)
        assert client.get(f"/loads/{load.pk}/").status_code == 200
    client.force_login(steward)
    assert client.get(f"/loads/{load.pk}/").status_code == 200


@pytest.mark.django_db
def test_a_co_steward_may_watch_the_load(client, steward, dataset):
    load = record_load_create(actor=steward, dataset=dataset, file_name="scores.csv")
    co_steward = make_user(Role.STEWARD)
    registry.dataset_update(actor=steward, dataset=dataset, stewards=[steward, co_steward])
    client.force_login(co_steward)

    assert client.get(f"/loads/{load.pk}/").status_code == 200


def test_a_non_steward_may_not_upload_to_a_visible_dataset(celery_worker, client, dataset):
    analyst = make_user(Role.ANALYST)
    client.force_login(analyst)
    assert client.get(f"/datasets/{dataset.slug}/").status_code == 200

    response = upload(client, dataset, GOOD_CSV)

    assert response.status_code == 403
    assert not RecordLoad.objects.exists()
    assert not Record.objects.exists()
    dataset.refresh_from_db()
    assert dataset.record_count == 0


@pytest.mark.django_db
def test_a_draft_dataset_of_someone_else_is_404_on_upload(client, steward):
    draft = make_dataset(steward, slug="pilot", status="draft", fields=FIELDS)
    client.force_login(make_user(Role.ANALYST))

    assert client.get(f"/datasets/{draft.slug}/upload/").status_code == 404
    assert upload(client, draft, GOOD_CSV).status_code == 404
    assert not RecordLoad.objects.exists()


@pytest.mark.django_db
def test_an_empty_file_is_a_form_error_and_queues_nothing(client, steward, dataset):
    client.force_login(steward)

    response = upload(client, dataset, b"")

    assert response.status_code == 200
    assert "The submitted file is empty." in page_text(response)
    assert not RecordLoad.objects.exists()
