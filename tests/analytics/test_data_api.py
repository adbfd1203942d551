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


def make_grant(
    analyst, oulad, board, *, output_level="pseudonymised", fields=GRANTED, **conditions
) -> Grant:
    request = make_ready_request(
        analyst, oulad, output_level=output_level, fields=oulad.fields(*fields)
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


def test_aggregate_lists_every_declared_group_with_noisy_counts_and_its_cost(
    client, analyst, oulad, board
):
    grant = make_grant(analyst, oulad, board)

    response = aggregate(client, grant, bearer(analyst), group_by="final_result")

    assert response.status_code == 200
    data = response.json()
    assert data["columns"] == ["final_result", "people"]
    assert data["k"] == 10
    # Every declared group, in the registry's order, whatever the data holds.
    assert [row[0] for row in data["rows"]] == ["Pass", "Fail", "Withdrawn", "Not recorded"]
    assert (data["epsilon"], data["repeated"]) == (1.0, False)
    assert data["budget"] == {"total": 10.0, "spent": 1.0, "left": 9.0}
    assert data["margin_95"] > 0
    for (_label, people), hidden in zip(data["rows"], data["suppressed_rows"], strict=True):
        # A cell is shown only when its noisy count reaches k; otherwise it is null.
        assert hidden == (people is None)
        assert people is None or people >= 10
    event = AccessEvent.objects.get(kind="aggregate")
    assert event.detail["epsilon"] == 1.0
    assert event.people == 39

    again = aggregate(client, grant, bearer(analyst), group_by="final_result").json()
    assert again["rows"] == data["rows"]
    assert (again["epsilon"], again["repeated"], again["budget"]["spent"]) == (0.0, True, 1.0)


def test_aggregate_by_a_field_with_no_declared_groups_is_a_400_and_spends_nothing(
    client, analyst, oulad, board
):
    grant = make_grant(analyst, oulad, board, fields=(*GRANTED, "region"))

    response = aggregate(client, grant, bearer(analyst), group_by="region")

    assert response.status_code == 400
    assert "Region has no declared groups" in response.json()["message"]
    assert not AccessEvent.objects.exists()


def test_a_spent_budget_refuses_the_next_aggregate_with_403_and_the_reason(
    client, analyst, oulad, board
):
    grant = make_grant(analyst, oulad, board, epsilon=2.0)
    headers = bearer(analyst)
    assert aggregate(client, grant, headers, group_by="final_result").status_code == 200
    assert aggregate(client, grant, headers, group_by="code_module").status_code == 200

    refused = aggregate(client, grant, headers, group_by="code_module,final_result")

    assert refused.status_code == 403
    assert "privacy budget of this grant is spent (ε 2 of 2 used" in refused.json()["message"]
    # An aggregate asked before still answers, at no cost.
    assert aggregate(client, grant, headers, group_by="code_module").json()["repeated"]


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
        "cohort",
    }
    assert latest["cohort"] is None  # everyone: this grant has no cohort


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

    # The application's role may not (two roles); the trigger refuses anyone else.
    with pytest.raises(DatabaseError, match="permission denied|append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    event = AccessEvent.objects.get()
    assert (event.people, AccessEventSubject.objects.count()) == (39, 39)
