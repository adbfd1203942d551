"""The one CSV rule (governance/csvsafe.py, docs/csv.md): what it neutralises, what it
leaves alone, that PostgreSQL's version agrees with Python's, and the auditor's export
written with it."""

from __future__ import annotations

import csv
import datetime
import decimal
import io

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from governance import csvsafe
from governance.audit import timeline
from governance.audit.views import export_lines
from governance.models import Clearance, Role
from tests.analytics.factories import (
    approve,
    make_analyst,
    make_board,
    make_oulad,
    make_ready_request,
)
from tests.factories import make_user

CALC = "=cmd|' /C calc'!A0"
LINK = '=HYPERLINK("http://x","y")'

# (cell, as it must be written): the same list for Python and for PostgreSQL.
PAYLOADS = [
    (CALC, "'" + CALC),
    ('+HYPERLINK("http://x","y")', '\'+HYPERLINK("http://x","y")'),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("-2+3", "'-2+3"),
    ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
    ("\t=1+2", "'\t=1+2"),
    ("\r=1+2", "'\r=1+2"),
    ("\n=1+2", "'\n=1+2"),
    ("\uff1d1+2", "'\uff1d1+2"),  # full-width ＝
    ("\uff0b1", "'\uff0b1"),  # ＋
    ("\uff0d1", "'\uff0d1"),  # －
    ("\uff20SUM(A1)", "'\uff20SUM(A1)"),  # ＠
    ("=", "'="),
    ("-", "'-"),
    ("+-5", "'+-5"),
    ("-5.", "'-5."),  # not a plain number: a point needs digits after it
    ("-.5", "'-.5"),
    ("-1e5", "'-1e5"),
    ("-5\n", "'-5\n"),  # a newline after the number is not part of a number
    ("-\u0665", "'-\u0665"),  # an Arabic-Indic digit: only ASCII digits make a number
    ("\uff0d5", "'\uff0d5"),  # a full-width minus is never a number's sign
    # Left alone: plain numbers stay numbers, and text that does not start a formula.
    ("-5", "-5"),
    ("+3.5", "+3.5"),
    ("-0.25", "-0.25"),
    ("+0", "+0"),
    ("42", "42"),
    ("AAA", "AAA"),
    ("", ""),
    (" =1+2", " =1+2"),
    ("a=1+2", "a=1+2"),
    ("'=1+2", "'=1+2"),  # already neutralised: no second quote
    ("#=1", "#=1"),
]


@pytest.mark.parametrize(("cell", "written"), PAYLOADS)
def test_neutralise_prefixes_a_quote_to_formulas_only(cell, written):
    assert csvsafe.neutralise(cell) == written


@pytest.mark.parametrize(
    "value",
    [-5, 3.25, -0.5, decimal.Decimal("-1.5"), None, True, datetime.date(2025, 1, 2)],
    ids=repr,
)
def test_values_that_are_not_text_are_never_touched(value):
    assert csvsafe.neutralise(value) is value


def test_safe_row_neutralises_each_cell():
    assert csvsafe.safe_row(["=1", -5, None, "-5", "x"]) == ["'=1", -5, None, "-5", "x"]


def test_csv_lines_quote_a_cell_with_a_lone_cr_or_lf_so_it_stays_one_row():
    lines = csvsafe.CsvLines()
    line = lines.line(["\r=1+2", "a\nb", "a,b", 'say "hi"', -5, 3.25, None])
    assert line == '"\'\r=1+2","a\nb","a,b","say ""hi""",-5,3.25,\n'
    assert list(csv.reader(io.StringIO(line, newline=""))) == [
        ["'\r=1+2", "a\nb", "a,b", 'say "hi"', "-5", "3.25", ""]
    ]
    assert csvsafe.CsvLines(newline="\r\n").line(["=1"]) == "'=1\r\n"


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_applies_the_same_rule_as_python():
    cells = [cell for cell, _ in PAYLOADS] + [None]
    expression = csvsafe.sql_neutralise("t.v")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {expression} FROM unnest(%s::text[]) WITH ORDINALITY AS t(v, n) ORDER BY n",  # noqa: S608
            [cells],
        )
        written = [row[0] for row in cursor.fetchall()]
    assert written == [csvsafe.neutralise(cell) for cell in cells]
    assert written == [expected for _, expected in PAYLOADS] + [None]


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_leaves_the_text_of_every_stored_number_unchanged():
    """Extracts pass numeric columns through the rule too (a field's type may change
    after loading): the text of a JSON number must come through byte for byte."""
    numbers = '{"a": -5, "b": 3.25, "c": -0.5, "d": -1e20, "e": -1e-7, "f": 0, "g": -12.75}'
    expression = csvsafe.sql_neutralise("t.v")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.v, {expression} FROM jsonb_each_text(%s::jsonb) AS t(k, v) ORDER BY k",  # noqa: S608
            [numbers],
        )
        rows = cursor.fetchall()
    assert [v for v, _ in rows][:3] == ["-5", "3.25", "-0.5"]
    assert all(v == out for v, out in rows), rows


# --- the auditor's export ----------------------------------------------------------------


@pytest.fixture
def auditor(db):
    return make_user(Role.AUDITOR, clearance=Clearance.INTERNAL)


def _export(response) -> tuple[str, list[list[str]]]:
    body = b"".join(response.streaming_content).decode()
    return body, list(csv.reader(io.StringIO(body, newline="")))


def test_audit_export_neutralises_a_request_titled_as_a_formula(auditor):
    oulad = make_oulad()
    request = make_ready_request(make_analyst(), oulad, title=LINK)
    approve(request, oulad, make_board())
    client = Client()
    client.force_login(auditor)

    body, rows = _export(client.get("/audit/export.csv"))

    carrying = [row for row in rows if any("HYPERLINK" in cell for cell in row)]
    # The request's own history, and the version, sign-off, votes, decision and grant
    # that name it (13 lines in the finding).
    assert {row[2] for row in carrying} >= {
        "request",
        "requestversion",
        "stewardsignoff",
        "vote",
        "decision",
        "grant",
    }
    assert {cell for row in carrying for cell in row if "HYPERLINK" in cell} == {"'" + LINK}
    assert "\n" + LINK not in body and "," + LINK not in body and '"' + LINK not in body
    request_rows = [row for row in rows if row[2:4] == ["request", "request"]]
    assert request_rows and {row[5] for row in request_rows} == {"'" + LINK}
    assert {row[4] for row in request_rows} == {str(request.pk)}  # numbers as they are


def test_audit_export_filter_values_cannot_start_a_cell(auditor):
    """The filters line holds values as typed: a comma or a quote in one stays inside
    that filter's own quoted cell."""
    filters = timeline.Filters(raw={"kind": "vote", "actor": 'a,=1+2;"x"@example.org'})

    lines = list(export_lines(viewer=auditor, filters=filters, exported_at=timezone.now()))

    assert lines[3] == '# filters: kind=vote," actor=a,=1+2;""x""@example.org"\r\n'
    assert next(csv.reader([lines[3]])) == [
        "# filters: kind=vote",
        ' actor=a,=1+2;"x"@example.org',
    ]
    assert lines[0] == "# Custos audit timeline export\r\n"
    plain = timeline.Filters(raw={"kind": "vote", "action": "created"})
    lines = list(export_lines(viewer=auditor, filters=plain, exported_at=timezone.now()))
    assert lines[3] == "# filters: kind=vote, action=created\r\n"
    none = list(
        export_lines(viewer=auditor, filters=timeline.Filters(), exported_at=timezone.now())
    )
    assert none[3] == "# filters: none\r\n"
