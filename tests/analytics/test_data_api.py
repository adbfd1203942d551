"""Reading data through a grant over the API, as a client with a bearer token sees it:
extracts (pseudonymised or identified), aggregates with small-cell suppression, the
refusals, and the access events each read leaves behind."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from analytics import services
from analytics.models import AccessEvent, AccessEventSubject, Grant
from governance.services import accounts, registry
from governance.services.records import records_import
from tests.analytics.factories import (
    approve,
    make_analyst,
    make_board,
    make_oulad,
    make_ready_request,
    today,
)

pytestmark = pytest.mark.django_db

# (module, result, how many people): by final_result Pass 22, Fail 14, Withdrawn 3.
GROUPS = [("AAA", "Pass", 12), ("AAA", "Fail", 11), ("AAA", "Withdrawn", 3)]
GROUPS += [("BBB", "Pass", 10), ("BBB", "Fail", 3)]
GRANTED = ("code_module", "final_result", "studied_credits", "email")


def bearer(user) -> dict:
    _, secret = accounts.api_token_create(actor=user, user=user, name="tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def board():
    return make_board()


@pytest.fixture
def oulad():
    """The OULAD-like dataset plus an identifier field, with 39 people loaded."""
    oulad = make_oulad()
    registry.field_create(
        actor=oulad.steward,
        dataset=oulad.dataset,
        name="email",
        type="string",
        sensitivity="personal",
        position=20,
        is_identifier=True,
    )
    lines = ["external_id,code_module,final_result,studied_credits,email"]
    n = 0
    for module, result, people in GROUPS:
        for _ in range(people):
            n += 1
            lines.append(f"S{n:04d},{module},{result},{30 + n % 4 * 30},s{n}@example.org")
    records_import(
        actor=oulad.steward,
        dataset=oulad.dataset,
        stream=io.BytesIO("\n".join(lines).encode() + b"\n"),
        file_name="students.csv",
    )
    return oulad


@pytest.fixture
def analyst():
    return make_analyst()


def make_grant(analyst, oulad, board, *, output_level="pseudonymised", **conditions) -> Grant:
    request = make_ready_request(
        analyst, oulad, output_level=output_level, fields=oulad.fields(*GRANTED)
    )
    decision, _ = approve(request, oulad, board, **conditions)
    return decision.grant


def extract(client, grant, headers) -> list[list[str]]:
    response = client.get(f"/api/v1/grants/{grant.pk}/extract.csv", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def aggregate(client, grant, headers, **params):
    return client.get(f"/api/v1/grants/{grant.pk}/aggregate", params, **headers)


# --- extracts -----------------------------------------------------------------------------


def test_pseudonymised_extract_is_stable_within_a_grant_and_unlinkable_across(
    client, analyst, oulad, board
):
    grant = make_grant(analyst, oulad, board)
    other_grant = make_grant(analyst, oulad, board)
    headers = bearer(analyst)

    first = extract(client, grant, headers)
    second = extract(client, grant, headers)
    elsewhere = extract(client, other_grant, headers)

    assert first[0] == ["pseudonym", "code_module", "studied_credits", "final_result"]
    assert len(first) == 1 + 39
    body = "\n".join(",".join(row) for row in first)
    assert "S0001" not in body and "@example.org" not in body  # no id, no identifier field
    pseudonyms = {row[0] for row in first[1:]}
    assert len(pseudonyms) == 39
    assert sorted(first) == sorted(second)  # the same person, the same pseudonym
    assert pseudonyms.isdisjoint(row[0] for row in elsewhere[1:])


def test_identified_extract_shows_external_id_and_identifier_fields(client, analyst, oulad, board):
    grant = make_grant(analyst, oulad, board, output_level="identified")

    rows = extract(client, grant, bearer(analyst))

    assert rows[0] == ["external_id", "code_module", "studied_credits", "final_result", "email"]
    by_id = {row[0]: row for row in rows[1:]}
    assert len(by_id) == 39
    assert by_id["S0001"] == ["S0001", "AAA", "60", "Pass", "s1@example.org"]


# --- aggregates ---------------------------------------------------------------------------


def test_aggregate_suppresses_small_cells_and_a_complementary_one(client, analyst, oulad, board):
    grant = make_grant(analyst, oulad, board)

    response = aggregate(client, grant, bearer(analyst), group_by="final_result")

    assert response.status_code == 200
    data = response.json()
    assert data["columns"] == ["final_result", "people", "count"]
    assert data["k"] == 10
    rows = {
        row[0]: (row, hidden)
        for row, hidden in zip(data["rows"], data["suppressed_rows"], strict=True)
    }
    assert rows["Pass"] == (["Pass", 22, 22], False)
    # Withdrawn (3) is under k; Fail is hidden too, or Withdrawn = 39 - 22 - Fail.
    assert rows["Withdrawn"] == (["Withdrawn", None, None], True)
    assert rows["Fail"] == (["Fail", None, None], True)
    assert data["suppressed"] == 2
    assert data["message"] == ""


def test_two_way_aggregate_never_leaves_one_suppressed_cell_in_a_line(
    client, analyst, oulad, board
):
    grant = make_grant(analyst, oulad, board)

    data = aggregate(
        client,
        grant,
        bearer(analyst),
        group_by="code_module,final_result",
        measure="mean:studied_credits",
    ).json()

    assert data["columns"] == ["code_module", "final_result", "people", "mean_studied_credits"]
    cells = {
        (r[0], r[1]): (r, h) for r, h in zip(data["rows"], data["suppressed_rows"], strict=True)
    }
    assert cells[("BBB", "Fail")] == (["BBB", "Fail", None, None], True)
    for axis in (0, 1):
        lines: dict = {}
        for key, (_, hidden) in cells.items():
            lines.setdefault(key[1 - axis], []).append(hidden)
        for flags in lines.values():
            assert sum(flags) != 1 or len(flags) == 1


def test_aggregate_below_k_overall_is_fully_suppressed_with_a_message(
    client, analyst, oulad, board
):
    grant = make_grant(analyst, oulad, board, min_cohort=50)

    response = aggregate(client, grant, bearer(analyst), group_by="final_result")

    assert response.status_code == 200
    data = response.json()
    assert data["k"] == 50
    assert data["rows"] and all(cell is None for row in data["rows"] for cell in row)
    assert all(data["suppressed_rows"])
    assert "50" in data["message"]


def test_aggregate_naming_a_field_not_granted_is_a_400_naming_it_and_logs_nothing(
    client, analyst, oulad, board
):
    grant = make_grant(analyst, oulad, board)
    headers = bearer(analyst)

    for params, name in [
        ({"group_by": "final_result,gender"}, "gender"),
        ({"group_by": "final_result", "measure": "mean:imd_band"}, "imd_band"),
    ]:
        response = aggregate(client, grant, headers, **params)
        assert response.status_code == 400
        assert name in response.json()["message"]
    assert not AccessEvent.objects.exists()


# --- refusals -----------------------------------------------------------------------------


def _expire(grant: Grant) -> None:
    Grant.objects.filter(pk=grant.pk).update(
        valid_from=today() - datetime.timedelta(days=30),
        valid_until=today() - datetime.timedelta(days=1),
    )


@pytest.mark.parametrize(
    ("end", "reason"),
    [
        (
            lambda grant, board: services.grant_revoke(
                actor=board.chair, grant=grant, reason="Purpose changed."
            ),
            "revoked",
        ),
        (lambda grant, board: _expire(grant), "ended on"),
    ],
    ids=["revoked", "expired"],
)
def test_an_ended_grant_is_a_403_with_the_reason_and_never_data(
    client, analyst, oulad, board, end, reason
):
    grant = make_grant(analyst, oulad, board)
    headers = bearer(analyst)
    end(grant, board)

    for url in (
        f"/api/v1/grants/{grant.pk}/extract.csv",
        f"/api/v1/grants/{grant.pk}/aggregate?group_by=final_result",
    ):
        response = client.get(url, **headers)
        assert response.status_code == 403, url
        assert reason in response.json()["message"]
    assert not AccessEvent.objects.exists()


def test_another_analyst_gets_404_on_every_url_of_a_grant_not_theirs(client, analyst, oulad, board):
    grant = make_grant(analyst, oulad, board)
    extract(client, grant, bearer(analyst))
    intruder = make_analyst()
    make_grant(intruder, oulad, board)  # an analyst with a grant of their own
    headers = bearer(intruder)

    for url in (
        f"/api/v1/grants/{grant.pk}/",
        f"/api/v1/grants/{grant.pk}/extract.csv",
        f"/api/v1/grants/{grant.pk}/aggregate?group_by=final_result",
        f"/api/v1/grants/{grant.pk}/access-events/",
    ):
        response = client.get(url, **headers)
        assert response.status_code == 404, url
        assert "S0001" not in response.content.decode()
    assert not AccessEvent.objects.filter(user=intruder).exists()


# --- access events --------------------------------------------------------------------------


def test_access_events_list_exactly_the_callers_reads_of_that_grant(client, analyst, oulad, board):
    grant = make_grant(analyst, oulad, board)
    other_grant = make_grant(analyst, oulad, board)
    headers = bearer(analyst)
    extract(client, grant, headers)
    aggregate(client, grant, headers, group_by="final_result")
    extract(client, other_grant, headers)  # another grant's read is not listed

    response = client.get(f"/api/v1/grants/{grant.pk}/access-events/", **headers)

    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    latest, first = data["results"]
    assert (latest["kind"], first["kind"]) == ("aggregate", "extract")
    assert first["dataset"] == oulad.dataset.slug
    # The fields that left: the identifier field is dropped from a pseudonymised extract.
    assert first["fields"] == ["code_module", "studied_credits", "final_result"]
    assert latest["fields"] == ["final_result"]
    assert (first["output_level"], first["people"], first["rows"]) == ("pseudonymised", 39, 39)
    assert set(latest) == {
        "id",
        "kind",
        "at",
        "dataset",
        "fields",
        "output_level",
        "people",
        "rows",
    }


def test_access_events_take_a_fixed_number_of_queries(client, analyst, oulad, board):
    grant = make_grant(analyst, oulad, board)
    headers = bearer(analyst)
    url = f"/api/v1/grants/{grant.pk}/access-events/"
    aggregate(client, grant, headers, group_by="final_result")
    with CaptureQueriesContext(connection) as one:
        assert client.get(url, **headers).json()["count"] == 1
    for _ in range(4):
        aggregate(client, grant, headers, group_by="final_result")
    with CaptureQueriesContext(connection) as five:
        assert client.get(url, **headers).json()["count"] == 5
    assert len(five) == len(one)


# --- append-only, on PostgreSQL ---------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE analytics_accessevent SET people = 0",
        "DELETE FROM analytics_accesseventsubject",
    ],
)
def test_the_database_refuses_to_change_access_events(client, analyst, oulad, board, statement):
    grant = make_grant(analyst, oulad, board)
    extract(client, grant, bearer(analyst))
    assert AccessEventSubject.objects.count() == 39

    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    event = AccessEvent.objects.get()
    assert (event.people, AccessEventSubject.objects.count()) == (39, 39)
