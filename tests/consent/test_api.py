"""The person's own API (/api/v1/me/…) as a client with a bearer token sees it: their
data, who used it (paged by cursor), their consents (give and withdraw, answered with
the receipt) and the subject access report; every refusal, and nothing changed by one."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import access, disclosure
from consent import api as me_api
from consent.models import Consent, ConsentReceipt, ConsentState
from governance.models import Person
from governance.services import accounts, registry
from governance.services.records import records_import
from tests.analytics.factories import (
    OULAD_FIELDS,
    approve,
    make_analyst,
    make_oulad,
    make_ready_request,
)
from tests.consent.factories import make_subject_world, read
from tests.factories import make_purpose, make_user

pytestmark = pytest.mark.django_db

DATA, LOG, CONSENTS, EXPORT = (
    "/api/v1/me/data",
    "/api/v1/me/access-log",
    "/api/v1/me/consents",
    "/api/v1/me/export",
)


def bearer(user) -> dict:
    _, secret = accounts.api_token_create(actor=user, user=user, name="tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def world():
    return make_subject_world(people=5)


@pytest.fixture
def me(world):
    return bearer(world.user)


def canonical_sha256(content: dict) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def add_records(oulad, external_id: str, count: int, *, module: str = "BBB") -> None:
    """``count`` more records about one person in the dataset."""
    names = [spec[0] for spec in OULAD_FIELDS]
    row = {n: "" for n in names} | {"code_module": module, "studied_credits": "30"}
    lines = [",".join(["external_id", *names])]
    lines += [",".join([external_id, *(row[n] for n in names)])] * count
    records_import(
        actor=oulad.steward,
        dataset=oulad.dataset,
        stream=io.BytesIO("\n".join(lines).encode()),
        file_name="more.csv",
    )


# --- who may call -------------------------------------------------------------------


def test_a_login_linked_to_no_person_gets_404_with_the_reason(client, world):
    nobody = bearer(make_user())
    for path in (DATA, LOG, CONSENTS, EXPORT):
        response = client.get(path, **nobody)
        assert response.status_code == 404, path
        assert response.json() == {"message": "Your login is not linked to a person record."}
    response = client.post(
        CONSENTS,
        {"purpose": world.purpose.slug, "action": "withdraw"},
        content_type="application/json",
        **nobody,
    )
    assert response.status_code == 404
    assert Consent.objects.filter(purpose=world.purpose, state="given").count() == 5


def test_without_a_token_nothing_is_shown(client, world):
    for path in (DATA, LOG, CONSENTS, EXPORT):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "message" in response.json()


# --- my data ------------------------------------------------------------------------


def test_my_data_lists_each_dataset_with_its_metadata_and_all_my_values(client, world, me):
    registry.dataset_update(
        actor=world.oulad.steward, dataset=world.oulad.dataset, source_system="Student records"
    )
    add_records(world.oulad, world.person.external_id, 24)

    response = client.get(DATA, **me)

    assert response.status_code == 200
    body = response.json()
    assert body["subject"]["external_id"] == world.person.external_id
    (dataset,) = body["datasets"]
    assert dataset["slug"] == world.oulad.dataset.slug
    assert dataset["source"] == "Student records"
    assert (dataset["lawful_basis"], dataset["retention_days"]) == ("Legitimate interest", 365)
    assert dataset["stewards"] == [world.oulad.steward.full_name]
    assert [(p["slug"], p["legal_basis"]) for p in dataset["purposes"]] == [
        (world.purpose.slug, "Consent")
    ]
    fields = {f["name"]: f for f in dataset["fields"]}
    assert fields["disability"]["sensitivity"] == "Special category"
    assert fields["final_result"]["label"] == "Final result"
    assert dataset["record_count"] == 25
    assert len(dataset["records"]) == 25  # all of them, not the page's first 20
    first = dataset["records"][0]["values"]
    assert (first["disability"], first["final_result"], first["studied_credits"]) == (
        "Y",
        "Fail",
        60,
    )
    other_ids = set(
        world.oulad.dataset.records.filter(person=world.other_person).values_list("pk", flat=True)
    )
    assert not other_ids & {r["id"] for r in dataset["records"]}


def test_my_data_runs_a_fixed_number_of_queries(client, world, me):
    client.get(DATA, **me)
    with CaptureQueriesContext(connection) as few:
        assert client.get(DATA, **me).status_code == 200

    add_records(world.oulad, world.person.external_id, 40)
    for _ in range(2):  # two more datasets holding records about me
        other = make_oulad(purpose=make_purpose(world.oulad.steward))
        add_records(other, world.person.external_id, 5, module="CCC")

    with CaptureQueriesContext(connection) as many:
        response = client.get(DATA, **me)
    assert len(response.json()["datasets"]) == 3
    assert len(many.captured_queries) == len(few.captured_queries), "\n".join(
        q["sql"] for q in many.captured_queries
    )


# --- who used my data ---------------------------------------------------------------


def test_the_access_log_shows_each_use_with_its_request_decision_and_recipients(client, world, me):
    response = client.get(LOG, **me)

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    (use,) = body["results"]
    request = world.grant.request
    assert use["request"] == {"id": request.pk, "title": request.title}
    assert (use["purpose"], use["purpose_slug"]) == (world.purpose.name, world.purpose.slug)
    assert (use["kind"], use["output_level"]) == ("extract", "pseudonymised")
    assert use["dataset"] == world.oulad.dataset.name
    assert sorted(use["fields"]) == ["code_module", "final_result", "studied_credits"]
    assert use["read_by"] == use["requester"] == world.analyst.full_name
    assert use["recipients"] == [world.analyst.full_name]
    assert use["decision"] == "Approved" and use["decided_at"]
    assert use["committee"] == world.board.committee.name


def test_the_access_log_pages_by_cursor_newest_first_without_gaps_or_repeats(
    client, world, me, monkeypatch
):
    monkeypatch.setattr(me_api, "ACCESS_LOG_PAGE", 2)
    for _ in range(4):
        read(world)  # five reads in all

    seen, cursor, pages = [], None, 0
    while True:
        query = {"cursor": cursor} if cursor else {}
        body = client.get(LOG, query, **me).json()
        pages += 1
        seen += [u["at"] for u in body["results"]]
        cursor = body["next"]
        if cursor is None:
            break
        assert len(body["results"]) == 2

    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)


def test_the_cursor_needs_no_url_encoding_and_a_bad_one_is_a_400(client, world, me, monkeypatch):
    monkeypatch.setattr(me_api, "ACCESS_LOG_PAGE", 1)
    read(world)
    cursor = client.get(LOG, **me).json()["next"]
    assert re.fullmatch(r"[0-9_]+", cursor)

    raw = client.get(f"{LOG}?cursor={cursor}", **me)
    assert raw.status_code == 200 and len(raw.json()["results"]) == 1

    bad = client.get(LOG, {"cursor": "yesterday"}, **me)
    assert bad.status_code == 400
    assert "cursor" in bad.json()["message"]


def test_the_access_log_runs_a_fixed_number_of_queries(client, world, me):
    client.get(LOG, **me)
    with CaptureQueriesContext(connection) as few:
        assert client.get(LOG, **me).status_code == 200

    for _ in range(53):
        read(world)
    # And a read through another grant, by another analyst, of another dataset.
    other = make_oulad(purpose=world.purpose)
    add_records(other, world.person.external_id, 1)
    analyst = make_analyst()
    request = approve(make_ready_request(analyst, other), other, world.board)[1]
    disclosure.aggregate(access.grant_scope(user=analyst, grant=request.grants.get()), [])

    with CaptureQueriesContext(connection) as many:
        body = client.get(LOG, **me).json()
    assert len(body["results"]) == 50 and body["next"]
    assert body["results"][0]["request"]["title"] == request.title
    assert len(many.captured_queries) == len(few.captured_queries), "\n".join(
        q["sql"] for q in many.captured_queries
    )
    with CaptureQueriesContext(connection) as following:
        rest = client.get(LOG, {"cursor": body["next"]}, **me).json()
    assert len(rest["results"]) == 5 and rest["next"] is None
    assert len(following.captured_queries) == len(few.captured_queries)


# --- consents -----------------------------------------------------------------------


@pytest.fixture
def research(world):
    """A second consent-based purpose the person has not been asked about."""
    return make_purpose(
        world.oulad.steward,
        slug="research",
        name="Research on study success",
        category="research",
        legal_basis="consent",
        consent_text="Your anonymised results may be studied by the research team.",
    )


def post(client, me, purpose: str, action: str, **extra):
    return client.post(
        CONSENTS,
        {"purpose": purpose, "action": action, **extra},
        content_type="application/json",
        **me,
    )


def test_my_consents_list_each_purpose_with_my_state_version_and_receipts(
    client, world, me, research
):
    registry.purpose_update(
        actor=world.oulad.steward, purpose=world.purpose, consent_text="A new text."
    )

    response = client.get(CONSENTS, **me)

    assert response.status_code == 200
    rows = {r["purpose"]["slug"]: r for r in response.json()["results"]}
    given = rows[world.purpose.slug]
    assert (given["state"], given["text_version"], given["current_text_version"]) == (
        "given",
        1,
        2,
    )
    assert given["outdated"] is True
    assert given["consent_text"] == "A new text."
    (receipt,) = given["receipts"]
    stored = ConsentReceipt.objects.get(person=world.person)
    assert (receipt["id"], receipt["content_sha256"]) == (str(stored.pk), stored.content_hash)
    asked = rows["research"]
    assert (asked["state"], asked["text_version"], asked["outdated"]) == (
        "not_asked",
        None,
        False,
    )
    assert asked["receipts"] == []


def test_giving_and_withdrawing_answer_with_the_receipt(client, world, me, research):
    given = post(client, me, "research", "give")

    assert given.status_code == 201, given.json()
    body = given.json()
    assert (body["previous_state"], body["state"]) == ("not_asked", "given")
    assert body["purpose"]["slug"] == "research"
    assert body["subject"]["external_id"] == world.person.external_id
    stored = ConsentReceipt.objects.get(pk=body["receipt_id"])
    content = {k: v for k, v in body.items() if k != "content_sha256"}
    assert content == stored.content
    assert body["content_sha256"] == stored.content_hash == canonical_sha256(content)
    assert Consent.objects.get(person=world.person, purpose=research).state == "given"

    withdrawn = post(client, me, world.purpose.slug, "withdraw")

    assert withdrawn.status_code == 201, withdrawn.json()
    assert (withdrawn.json()["previous_state"], withdrawn.json()["state"]) == (
        "given",
        "withdrawn",
    )
    consent = Consent.objects.get(person=world.person, purpose=world.purpose)
    assert consent.state == ConsentState.WITHDRAWN


def test_withdrawing_what_is_not_given_is_a_400_and_changes_nothing(client, world, me, research):
    receipts = ConsentReceipt.objects.count()

    response = post(client, me, "research", "withdraw")

    assert response.status_code == 400
    assert "nothing to withdraw" in response.json()["message"]
    assert not Consent.objects.filter(purpose=research).exists()
    again = post(client, me, world.purpose.slug, "give")
    assert again.status_code == 400
    assert "already given" in again.json()["message"]
    assert ConsentReceipt.objects.count() == receipts
    assert Consent.objects.get(person=world.person, purpose=world.purpose).state == "given"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"purpose": "research", "action": "ignore"}, "action"),
        ({"purpose": "research"}, "action"),
        ({"action": "give"}, "purpose"),
        ({"purpose": "research", "action": ""}, "action"),
    ],
)
def test_a_bad_consent_change_is_a_400_naming_the_problem(
    client, world, me, research, payload, expected
):
    receipts = ConsentReceipt.objects.count()

    response = client.post(CONSENTS, payload, content_type="application/json", **me)

    assert response.status_code == 400
    assert expected in response.json()["message"]
    assert expected in response.json()["errors"]
    assert ConsentReceipt.objects.count() == receipts
    assert not Consent.objects.filter(purpose=research).exists()


def test_an_unknown_purpose_is_a_404_and_one_not_based_on_consent_a_400(client, world, me):
    missing = post(client, me, "no-such-purpose", "give")
    assert missing.status_code == 404
    assert "no-such-purpose" in missing.json()["message"]

    interest = make_purpose(world.oulad.steward, slug="planning")
    refused = post(client, me, interest.slug, "give")
    assert refused.status_code == 400
    assert "does not rest on consent" in refused.json()["message"]
    assert not Consent.objects.filter(purpose=interest).exists()


# --- the subject access report -----------------------------------------------------


def test_the_export_is_my_whole_subject_access_report_and_only_mine(client, world, me):
    response = client.get(EXPORT, **me)

    assert response.status_code == 200
    body = response.json()
    assert body["format"] == "custos-subject-access-report/1"
    assert body["subject"]["external_id"] == world.person.external_id
    (dataset,) = body["datasets"]
    (record,) = dataset["records"]
    mine = world.oulad.dataset.records.get(person=world.person)
    assert record == {"id": mine.pk, "values": mine.values}
    assert body["uses"][0]["request"]["title"] == world.grant.request.title
    assert body["uses"][0]["recipients"] == [world.analyst.full_name]
    assert [c["state"] for c in body["consents"]] == ["given"]
    assert len(body["consent_receipts"]) == 1
    assert world.other_person.external_id not in response.content.decode()
    assert Person.objects.count() > 1


def test_the_me_endpoints_are_in_the_openapi_schema(client, world, me):
    paths = client.get("/api/schema/?format=json", **me).json()["paths"]
    for path, method in [
        ("/api/v1/me/data", "get"),
        ("/api/v1/me/access-log", "get"),
        ("/api/v1/me/consents", "get"),
        ("/api/v1/me/consents", "post"),
        ("/api/v1/me/export", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path}"
    body = paths["/api/v1/me/consents"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/ConsentChangeIn")
