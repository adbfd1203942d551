"""Bad bytes and oversized input on the registry's surfaces (issue 11, "Bad input").

Each test replays one finding through the surface it was found on: the upload page,
the records API, the import commands, the catalogue and audit APIs, ``apply`` and the
policy form. Every one must answer with a clear message and write nothing.
"""

from __future__ import annotations

import html
import io
import json
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from governance.models import (
    Dataset,
    LoadStatus,
    Person,
    Policy,
    Purpose,
    Record,
    RecordLoad,
    Role,
)
from governance.services import accounts, registry
from tests.factories import PASSWORD, make_dataset, make_user
from tests.forms import posted_back
from tests.governance.test_upload import uploaded_load, wait_until_finished

FIELDS = [
    ("score", "integer", "internal"),
    ("grade", "category", "personal", {"values": ["A", "B", "C"]}),
    ("remark", "string", "personal"),
    ("house", "category", "internal"),
]
NUL_CELL = b"external_id,score,grade,remark,house\nS1,71,A,fine,red\nS2,58,B,bad\x00byte,blue\n"
# What a careless operator uploads: a compressed file renamed to .csv.
GARBAGE = b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8 + os.urandom(2048)
# Binary that happens to decode as UTF-8: control characters and NULs from the first byte.
ASCII_GARBAGE = bytes(range(128)) * 32
BAD_FILES = [(NUL_CELL, "NUL"), (GARBAGE, "not UTF-8"), (ASCII_GARBAGE, "NUL")]
BAD_IDS = ["nul-in-a-cell", "binary-garbage", "ascii-binary"]


def bearer(user) -> dict:
    _, secret = accounts.api_token_create(actor=user, user=user, name="tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def steward(db):
    return make_user(Role.STEWARD, email="steward@example.org")


@pytest.fixture
def dataset(steward):
    return make_dataset(steward, slug="course-scores", fields=FIELDS)


def load_messages(load: RecordLoad) -> str:
    return " ".join(e["message"] for e in load.errors)


# --- CSV: the upload page ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    BAD_FILES,
    ids=BAD_IDS,
)
def test_a_bad_upload_ends_as_a_failed_load_with_the_reason(
    celery_worker, client, steward, dataset, content, reason
):
    client.force_login(steward)
    response = client.post(
        f"/datasets/{dataset.slug}/upload/",
        {"file": SimpleUploadedFile("scores.csv", content, content_type="text/csv")},
    )
    load = wait_until_finished(uploaded_load(response))

    assert load.status == LoadStatus.FAILED
    assert reason in load_messages(load)
    assert Record.objects.filter(dataset=dataset).count() == 0
    page = html.unescape(client.get(f"/loads/{load.pk}/").content.decode())
    assert reason in page


# --- CSV: the records API and the import commands ---------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    BAD_FILES,
    ids=BAD_IDS,
)
def test_the_records_api_rejects_bad_bytes_with_400(client, steward, dataset, content, reason):
    response = client.post(
        f"/api/v1/datasets/{dataset.slug}/records/",
        data=content,
        content_type="text/csv",
        **bearer(steward),
    )

    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert "no rows were written" in body["message"]
    assert reason in json.dumps(body["errors"], ensure_ascii=False)
    assert Record.objects.count() == 0
    load = RecordLoad.objects.get()
    assert load.status == LoadStatus.FAILED


def test_a_nul_in_the_file_name_header_is_a_400_and_writes_nothing(client, steward, dataset):
    response = client.post(
        f"/api/v1/datasets/{dataset.slug}/records/",
        data=b"external_id,score,grade,remark,house\nS1,71,A,fine,red\n",
        content_type="text/csv",
        HTTP_X_FILE_NAME="scores\x00.csv",
        **bearer(steward),
    )

    assert response.status_code == 400 and "NUL" in response.json()["message"]
    assert not RecordLoad.objects.exists() and not Record.objects.exists()


@pytest.mark.parametrize("content", [f for f, _ in BAD_FILES], ids=BAD_IDS)
def test_import_records_exits_non_zero_and_writes_nothing(tmp_path, steward, dataset, content):
    path = tmp_path / "scores.csv"
    path.write_bytes(content)

    with pytest.raises(CommandError) as raised:
        call_command(
            "import_records", dataset.slug, str(path), "--as", steward.email, stdout=io.StringIO()
        )

    assert "nothing was written" in str(raised.value).lower() or "rejected" in str(raised.value)
    assert Record.objects.count() == 0
    assert RecordLoad.objects.get().status == LoadStatus.FAILED


PEOPLE_NUL = b"external_id,name,email,org_unit\nP1,Ada\x00Lovelace,ada@example.org,Maths\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [(PEOPLE_NUL, "NUL"), (GARBAGE, "not UTF-8"), (ASCII_GARBAGE, "NUL")],
    ids=BAD_IDS,
)
def test_people_import_page_shows_the_reason_and_writes_nothing(steward, content, reason):
    client = Client()
    client.force_login(make_user(Role.DPO))
    response = client.post(
        "/people/import/",
        {"file": SimpleUploadedFile("people.csv", content, content_type="text/csv")},
    )

    assert response.status_code == 200
    assert reason in html.unescape(response.content.decode())
    assert Person.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [(PEOPLE_NUL, "NUL"), (GARBAGE, "not UTF-8"), (ASCII_GARBAGE, "NUL")],
    ids=BAD_IDS,
)
def test_import_people_command_exits_non_zero(tmp_path, steward, content, reason):
    path = tmp_path / "people.csv"
    path.write_bytes(content)

    with pytest.raises(CommandError, match=reason):
        call_command("import_people", str(path), "--as", steward.email, stdout=io.StringIO())
    assert Person.objects.count() == 0


@pytest.mark.parametrize(
    "row",
    [
        b"S1,71,A,fine," + b"x" * 100_000,
        b"S1,71,A," + b"x" * 100_000 + b",red",
        b"S" * 101 + b",71,A,,",
    ],
    ids=["category-value", "text-value", "person-id"],
)
def test_a_huge_cell_is_refused(client, steward, dataset, row):
    content = b"external_id,score,grade,remark,house\n" + row + b"\n"
    response = client.post(
        f"/api/v1/datasets/{dataset.slug}/records/",
        data=content,
        content_type="text/csv",
        **bearer(steward),
    )

    assert response.status_code == 400
    assert "longer than" in json.dumps(response.json()["errors"])
    assert Record.objects.count() == 0


# --- query strings --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/datasets/?q=ma%00ths",
        "/api/v1/datasets/?steward=steward%00@example.org",
        "/api/v1/audit/events?actor=a%00b@example.org",
    ],
)
def test_a_nul_in_a_query_string_is_a_400_with_a_json_message(db, client, url):
    auditor = make_user(Role.AUDITOR)
    response = client.get(url, **bearer(auditor))

    assert response.status_code == 400
    assert "NUL" in response.json()["message"]


def test_a_nul_in_a_page_query_string_is_a_400_page(client, steward):
    client.force_login(steward)
    response = client.get("/datasets/?q=ma%00ths")

    assert response.status_code == 400
    assert "NUL" in response.content.decode()


# --- apply ------------------------------------------------------------------------------

YAML_NUL = """\
purpose:
  slug: tutoring
  name: "Tutoring\\0 support"
  category: learning_support
  expected_benefit: Tutors go where learners need them.
  legal_basis: legitimate_interest
"""


def test_apply_refuses_a_nul_in_a_yaml_string(tmp_path, steward):
    path = tmp_path / "registry.yaml"
    path.write_text(YAML_NUL, encoding="utf-8")

    with pytest.raises(CommandError) as raised:
        call_command("apply", str(path), "--as", steward.email, stdout=io.StringIO())

    message = str(raised.value)
    assert "nothing changed" in message
    assert "NUL" in message
    assert "line 3" in message
    assert not Purpose.objects.exists()


def test_apply_refuses_an_overlong_category_value(tmp_path, steward):
    path = tmp_path / "registry.yaml"
    path.write_text(
        "dataset:\n  slug: grades\n  name: Grades\n  lawful_basis: legitimate_interest\n"
        "  retention_days: 365\n  stewards: [steward@example.org]\n"
        "  fields:\n    - name: grade\n      type: category\n      sensitivity: internal\n"
        f"      values: [A, {'x' * 100_000}]\n",
        encoding="utf-8",
    )

    with pytest.raises(CommandError, match="nothing changed") as raised:
        call_command("apply", str(path), "--as", steward.email, stdout=io.StringIO())
    assert "200 characters" in str(raised.value)
    assert not Dataset.objects.filter(slug="grades").exists()


# --- the policy form: a date shown must come back unchanged --------------------------------


def test_editing_a_policy_without_touching_it_keeps_its_dates(db, settings):
    settings.LANGUAGE_CODE = "en-gb"
    dpo = make_user(Role.DPO)
    policy = registry.policy_create(
        actor=dpo,
        slug="learning-analytics",
        title="Learning analytics policy",
        body="What we do with learning data.",
        owner=dpo,
        version="2.0",
        approval_date="2026-09-01",
        review_interval_months=12,
    )
    client = Client()
    client.force_login(dpo)

    page = client.get(f"/policies/{policy.slug}/edit/").content.decode()
    assert 'value="2026-09-01"' in page
    response = client.post(f"/policies/{policy.slug}/edit/", posted_back(page))

    assert response.status_code == 302, response.context["form"].errors
    policy = Policy.objects.get(pk=policy.pk)
    assert str(policy.approval_date) == "2026-09-01"
    assert policy.review_interval_months == 12


@pytest.mark.django_db
def test_a_nul_in_a_header_or_cookie_is_a_400_before_the_sign_in_or_the_session():
    """Found by the security review, on PostgreSQL: a NUL in the User-Agent made the
    sign-in's records fail (500), so wrong passwords went uncounted by the lockout and a
    500 against a 302 told a right password from a wrong one; a NUL in the session
    cookie was a 500 on every URL."""
    from axes.models import AccessAttempt

    user = make_user(email="nul@example.org")
    client = Client(HTTP_USER_AGENT="probe\x00")
    for password in ("wrong", PASSWORD):
        response = client.post("/accounts/login/", {"login": user.email, "password": password})
        assert response.status_code == 400 and "NUL" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not AccessAttempt.objects.exists()
    for path in ("/", "/api/v1/datasets/"):
        response = Client(HTTP_COOKIE="sessionid=abcdefgh\x00ijkl").get(path)
        assert response.status_code == 400, path
