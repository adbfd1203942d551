"""Issue 10, section 4, replayed: a steward loads cells a spreadsheet would run as
formulas; every extract Custos writes (the API's extract.csv, the web download and the
prepared extract file, on SQLite and through PostgreSQL's COPY) gives them back
neutralised, and the numeric columns exactly as they were loaded (docs/csv.md)."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from analytics import access, services
from analytics.models import AccessEvent, ExtractFile
from analytics.tasks import extract_prepare_task
from governance.csvsafe import neutralise
from governance.models import Clearance, Role
from governance.services import accounts, registry
from governance.services.records import records_import
from tests.analytics.factories import Oulad, approve, make_analyst, make_board, today
from tests.factories import make_dataset, make_purpose, make_user

pytestmark = pytest.mark.django_db

# In the extract's order (by position).
FIELDS = [
    ("presentation", "category"),
    ("region", "category"),
    ("note", "string"),
    ("credits", "integer"),
    ("score", "decimal"),
]
HEADER = "external_id,presentation,region,note,credits,score"
CALC = "=cmd|' /C calc'!A0"
LINK = '+HYPERLINK("http://x","y")'

# As the steward loads them, one column per field in FIELDS.
LOADED = [
    ("=1+2", CALC, LINK, "@SUM(A1:A2)", "-5", "3.25"),
    ("S2", "-2+3", "\t=1+2", "\r=1+2", "60", "-0.5"),
    ("S3", "-5", "+3.5", "\uff1d1+2", "0", "-12.75"),
    ("S4", "AAA", "-1+cmd|' /C calc'!A0", "\n=1+2", "-60", ""),
]
# Each record exactly as it must leave, cell by cell as written: quoted only where
# RFC 4180 needs it (a quote, a comma, a CR or an LF in the cell).
EXPECTED = [
    ",".join(cells)
    for cells in [
        ["'=1+2", "'=cmd|' /C calc'!A0", '"\'+HYPERLINK(""http://x"",""y"")"']
        + ["'@SUM(A1:A2)", "-5", "3.25"],
        ["S2", "'-2+3", "'\t=1+2", '"\'\r=1+2"', "60", "-0.5"],
        ["S3", "-5", "+3.5", "'\uff1d1+2", "0", "-12.75"],
        ["S4", "AAA", "'-1+cmd|' /C calc'!A0", '"\'\n=1+2"', "-60", ""],
    ]
]


def _loaded_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["external_id", *(name for name, _ in FIELDS)])
    writer.writerows(LOADED)
    return buffer.getvalue().encode()


def make_payload_grant(output_level: str = "identified"):
    """A grant on three text and two numeric fields of a dataset whose steward loaded
    the payloads."""
    steward = make_user(Role.STEWARD, clearance=Clearance.SPECIAL)
    purpose = make_purpose(steward)
    dataset = make_dataset(
        steward,
        fields=[(name, type_, "internal") for name, type_ in FIELDS],
        tags=["learning"],
        stewards=[steward],
        purposes=[purpose],
    )
    oulad = Oulad(dataset, steward, purpose, [steward])
    records_import(
        actor=oulad.steward,
        dataset=oulad.dataset,
        stream=io.BytesIO(_loaded_csv()),
        file_name="payloads.csv",
    )
    request = services.request_create(
        actor=make_analyst(),
        title="Which presentations need support",
        purpose=purpose,
        justification="Find the presentations where students struggle.",
        expected_benefit="Support for students on those presentations.",
        fields=list(dataset.fields.all()),
        output_level=output_level,
        starts_on=today(),
        ends_on=today() + datetime.timedelta(days=90),
    )
    decision, _ = approve(request, oulad, make_board())
    return decision.grant


@pytest.fixture
def grant():
    return make_payload_grant()


def assert_neutralised(body: str) -> None:
    """``body`` is the header and exactly the EXPECTED records, in any order, byte for
    byte (PostgreSQL's COPY does not promise an order)."""
    assert body.startswith(HEADER + "\n"), body[:200]
    rest = body[len(HEADER) + 1 :]
    for record in EXPECTED:
        assert record + "\n" in rest, (record, rest)
        rest = rest.replace(record + "\n", "", 1)
    assert rest == ""
    # Read back as a spreadsheet would: the numeric columns are what was loaded.
    rows = list(csv.reader(io.StringIO(body, newline="")))[1:]
    by_id = {row[0]: row for row in rows}
    for external_id, *_text, credits, score in LOADED:
        row = by_id[neutralise(external_id)]
        assert (row[4], row[5]) == (credits, score)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_api_extract_neutralises_every_text_cell_and_keeps_numbers(client, grant):
    _, secret = accounts.api_token_create(actor=grant.grantee, user=grant.grantee, name="t")
    response = client.get(
        f"/api/v1/grants/{grant.pk}/extract.csv", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 200
    assert_neutralised(b"".join(response.streaming_content).decode())


def test_web_download_neutralises_every_text_cell_and_keeps_numbers(grant):
    response = _client(grant.grantee).post(reverse("grant-download", args=[grant.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert_neutralised(b"".join(response.streaming_content).decode())


def test_prepared_extract_file_neutralises_every_text_cell_and_keeps_numbers(grant):
    scope = access.grant_scope(user=grant.grantee, grant=grant)
    extract = services.extract_file_create(actor=grant.grantee, scope=scope)
    extract_prepare_task(extract.pk)  # what the worker runs for an extract too big to stream
    extract.refresh_from_db()
    assert extract.status == "ready"

    response = _client(grant.grantee).get(reverse("extract-file", args=[extract.pk]))
    assert response.status_code == 200
    assert_neutralised(b"".join(response.streaming_content).decode())
    assert ExtractFile.objects.count() == 1


def test_pseudonymised_extract_neutralises_text_and_leaves_the_pseudonym():
    grant = make_payload_grant("pseudonymised")
    scope = access.grant_scope(user=grant.grantee, grant=grant)
    body = b"".join(access.extract_csv(scope)).decode()
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[0] == ["pseudonym", *HEADER.split(",")[1:]]
    key = bytes(grant.pseudonym_key)
    by_pseudonym = {row[0]: row[1:] for row in rows[1:]}
    assert by_pseudonym[access.pseudonym(key, "=1+2")] == [
        "'=cmd|' /C calc'!A0",
        '\'+HYPERLINK("http://x","y")',
        "'@SUM(A1:A2)",
        "-5",
        "3.25",
    ]


def test_text_left_in_a_field_whose_type_changed_is_still_neutralised(grant):
    """A steward loads formulas as text, then makes the field an integer: the stored
    values are still text, and leave neutralised on either path."""
    note = grant.fields.get(name="note")
    registry.field_update(actor=note.dataset.stewards.first(), field=note, type="integer")
    note.refresh_from_db()
    assert note.type == "integer"
    scope = access.grant_scope(user=grant.grantee, grant=grant)
    rows = list(csv.reader(io.StringIO(b"".join(access.extract_csv(scope)).decode(), newline="")))
    assert sorted(row[3] for row in rows[1:]) == sorted(
        ["'@SUM(A1:A2)", "'\r=1+2", "'\uff1d1+2", "'\n=1+2"]
    )


@pytest.mark.postgres
def test_copy_extract_gives_the_same_bytes_as_the_python_writer(grant):
    """On PostgreSQL the extract is COPY's own CSV; the rule applied in SQL gives, record
    for record, what the Python writer gives on SQLite."""
    assert connection.vendor == "postgresql"
    scope = access.grant_scope(user=grant.grantee, grant=grant)
    copied = b"".join(access.extract_csv(scope)).decode()
    assert_neutralised(copied)
    written = b"".join(access._python_stream(scope, access.records_for(scope))).decode()
    assert_neutralised(written)
    assert AccessEvent.objects.count() == 1  # _python_stream writes no event of its own
