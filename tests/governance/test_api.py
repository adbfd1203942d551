"""The REST API v1 as a client with a personal bearer token sees it."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.models import Person, Policy, Purpose, Record, RecordLoad, Role
from governance.services import accounts, registry
from tests.factories import make_dataset, make_purpose, make_user

pytestmark = pytest.mark.django_db

FIELDS = [
    ("score", "integer", "internal"),
    ("grade", "category", "personal", {"values": ["A", "B", "C"]}),
    ("ethnicity", "string", "special", {"is_protected_attribute": True}),
]


def bearer(user) -> dict:
    _, secret = accounts.api_token_create(actor=user, user=user, name="tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def slugs(response) -> list[str]:
    return [d["slug"] for d in response.json()["results"]]


@pytest.fixture
def steward():
    return make_user(Role.STEWARD)


@pytest.fixture
def analyst():
    return make_user(Role.ANALYST)


@pytest.fixture
def active(steward):
    return make_dataset(steward, slug="course-scores", fields=FIELDS)


@pytest.fixture
def draft(steward):
    return make_dataset(steward, slug="wellbeing-survey", status="draft", fields=FIELDS[:1])


def post_csv(client, dataset, body: str, headers: dict, *, query: str = ""):
    return client.post(
        f"/api/v1/datasets/{dataset.slug}/records/{query}",
        data=body.encode(),
        content_type="text/csv",
        **headers,
    )


# --- authentication -----------------------------------------------------------------


def test_no_token_is_401_with_a_json_message(client, active):
    response = client.get("/api/v1/datasets/")

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["message"]
    assert response["WWW-Authenticate"] == "Bearer"


def test_unknown_token_is_401(client, active):
    response = client.get("/api/v1/datasets/", HTTP_AUTHORIZATION="Bearer cst_not-a-real-token")

    assert response.status_code == 401
    assert "message" in response.json()


def test_a_revoked_token_stops_working_on_the_next_request(client, analyst, active):
    token, secret = accounts.api_token_create(actor=analyst, user=analyst, name="laptop")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/datasets/", **headers).status_code == 200

    accounts.api_token_revoke(actor=analyst, token=token)
    response = client.get("/api/v1/datasets/", **headers)

    assert response.status_code == 401
    assert "message" in response.json()


# --- catalogue ----------------------------------------------------------------------


def test_dataset_list_hides_a_draft_from_an_analyst_but_not_from_its_steward(
    client, steward, analyst, active, draft
):
    as_analyst = client.get("/api/v1/datasets/", **bearer(analyst))
    as_steward = client.get("/api/v1/datasets/", **bearer(steward))

    assert as_analyst.status_code == 200
    assert slugs(as_analyst) == ["course-scores"]
    assert as_analyst.json()["count"] == 1
    assert sorted(slugs(as_steward)) == ["course-scores", "wellbeing-survey"]


def test_a_draft_is_hidden_from_another_steward(client, draft):
    other_steward = make_user(Role.STEWARD)

    response = client.get("/api/v1/datasets/", **bearer(other_steward))

    assert "wellbeing-survey" not in slugs(response)


def test_dataset_detail_lists_fields_with_their_sensitivity(client, analyst, active):
    response = client.get("/api/v1/datasets/course-scores/", **bearer(analyst))

    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "course-scores"
    assert {f["name"]: f["sensitivity"] for f in body["fields"]} == {
        "score": "internal",
        "grade": "personal",
        "ethnicity": "special",
    }
    grade = next(f for f in body["fields"] if f["name"] == "grade")
    assert grade["values"] == ["A", "B", "C"]
    ethnicity = next(f for f in body["fields"] if f["name"] == "ethnicity")
    assert ethnicity["is_protected_attribute"] is True


def test_someone_elses_draft_answers_404_exactly_like_a_missing_dataset(client, analyst, draft):
    headers = bearer(analyst)

    hidden = client.get("/api/v1/datasets/wellbeing-survey/", **headers)
    missing = client.get("/api/v1/datasets/no-such-dataset/", **headers)

    assert hidden.status_code == missing.status_code == 404
    assert hidden["Content-Type"].startswith("application/json")
    assert "message" in hidden.json()
    assert hidden.json() == missing.json()


def test_a_steward_sees_the_detail_of_their_own_draft(client, steward, draft):
    response = client.get("/api/v1/datasets/wellbeing-survey/", **bearer(steward))

    assert response.status_code == 200
    assert response.json()["status"] == "draft"


def test_dataset_list_query_count_does_not_grow_with_datasets_or_fields(client, steward, analyst):
    purpose = make_purpose(steward)
    for _ in range(2):
        make_dataset(steward, fields=FIELDS[:1], tags=["learning"], purposes=[purpose])
    headers = bearer(analyst)
    client.get("/api/v1/datasets/", **headers)  # warm caches (content types)

    with CaptureQueriesContext(connection) as few:
        small = client.get("/api/v1/datasets/", **headers)
    assert len(small.json()["results"]) == 2

    other_steward = make_user(Role.STEWARD)
    many_fields = FIELDS + [("completed", "boolean", "internal"), ("hours", "decimal", "public")]
    for i in range(12):
        make_dataset(
            other_steward if i % 2 else steward,
            fields=many_fields,
            tags=["learning", f"tag-{i}"],
            purposes=[purpose],
        )

    with CaptureQueriesContext(connection) as many:
        large = client.get("/api/v1/datasets/", **headers)

    assert len(large.json()["results"]) == 14
    assert len(many.captured_queries) == len(few.captured_queries), "\n".join(
        q["sql"] for q in many.captured_queries
    )


def test_dataset_list_query_count_is_fixed(client, django_assert_num_queries, steward, analyst):
    for i in range(5):
        make_dataset(steward, fields=FIELDS, tags=[f"t{i}"])
    headers = bearer(analyst)
    client.get("/api/v1/datasets/", **headers)  # warm caches (content types)

    # token lookup and last-used stamp, roles, count, page, then one prefetch per
    # relation (tags, stewards, purposes, fields), whatever the number of rows
    with django_assert_num_queries(8):
        response = client.get("/api/v1/datasets/", **headers)
    assert response.json()["count"] == 5


# --- loading records ----------------------------------------------------------------

GOOD_CSV = "external_id,score,grade\nS1,71,A\nS2,58,B\n"


def test_a_steward_loads_records_with_a_csv_body(client, steward, active):
    response = post_csv(client, active, GOOD_CSV, bearer(steward))

    assert response.status_code == 201
    assert response.json() == {"loaded": 2}
    records = {
        r.person.external_id: r.values
        for r in Record.objects.filter(dataset=active).select_related("person")
    }
    assert records == {"S1": {"score": 71, "grade": "A"}, "S2": {"score": 58, "grade": "B"}}
    active.refresh_from_db()
    assert active.record_count == 2
    load = RecordLoad.objects.get(dataset=active)
    assert load.status == "succeeded"
    assert load.created_by == steward
    assert load.history.filter(history_user=steward).exists()


def test_a_bad_row_is_400_with_row_errors_and_writes_nothing(client, steward, active):
    headers = bearer(steward)
    assert post_csv(client, active, GOOD_CSV, headers).status_code == 201

    response = post_csv(
        client, active, "external_id,score,grade\nS9,80,A\nS10,lots,B\nS11,60,Z\n", headers
    )

    assert response.status_code == 400
    body = response.json()
    assert body["message"]
    errors = body["errors"]
    assert {(e["row"], e["column"]) for e in errors} == {(2, "score"), (3, "grade")}
    assert "'lots' is not a whole number" in next(e for e in errors if e["row"] == 2)["message"]
    assert all(e["message"] for e in errors)
    assert Record.objects.filter(dataset=active).count() == 2
    assert not Person.objects.filter(external_id__in=["S9", "S10", "S11"]).exists()
    active.refresh_from_db()
    assert active.record_count == 2


def test_an_unknown_column_is_reported_on_the_header(client, steward, active):
    response = post_csv(client, active, "external_id,shoe_size\nS1,42\n", bearer(steward))

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "row": 0,
            "line": None,
            "column": "shoe_size",
            "message": "unknown column: the dataset has no such field",
        }
    ]
    assert not Record.objects.exists()


def test_an_empty_body_is_400_and_writes_nothing(client, steward, active):
    response = post_csv(client, active, "", bearer(steward))

    assert response.status_code == 400
    assert response.json()["message"]
    assert response.json()["errors"]
    assert not Record.objects.exists()


def test_replace_mode_swaps_the_datasets_records(client, steward, active):
    headers = bearer(steward)
    assert post_csv(client, active, GOOD_CSV, headers).status_code == 201

    response = post_csv(
        client, active, "external_id,score\nS3,90\n", headers, query="?mode=replace"
    )

    assert response.status_code == 201
    assert response.json() == {"loaded": 1}
    assert [
        r.person.external_id for r in Record.objects.filter(dataset=active).select_related("person")
    ] == ["S3"]
    active.refresh_from_db()
    assert active.record_count == 1


def test_add_mode_is_the_default_and_keeps_earlier_records(client, steward, active):
    headers = bearer(steward)
    post_csv(client, active, GOOD_CSV, headers)

    response = post_csv(client, active, "external_id,score\nS3,90\n", headers)

    assert response.status_code == 201
    assert Record.objects.filter(dataset=active).count() == 3


def test_an_unknown_mode_is_400(client, steward, active):
    response = post_csv(client, active, GOOD_CSV, bearer(steward), query="?mode=merge")

    assert response.status_code == 400
    assert "message" in response.json()
    assert not Record.objects.exists()


def test_a_non_steward_who_can_see_the_dataset_gets_403(client, analyst, active):
    assert client.get(f"/api/v1/datasets/{active.slug}/", **bearer(analyst)).status_code == 200

    response = post_csv(client, active, GOOD_CSV, bearer(analyst))

    assert response.status_code == 403
    assert "message" in response.json()
    assert not Record.objects.exists()
    assert not RecordLoad.objects.exists()


def test_a_non_steward_who_cannot_see_the_dataset_gets_404(client, analyst, draft):
    response = post_csv(client, draft, "external_id,score\nS1,1\n", bearer(analyst))

    assert response.status_code == 404
    assert "message" in response.json()
    assert not Record.objects.exists()
    assert not RecordLoad.objects.exists()


# --- purposes and policies ----------------------------------------------------------


def test_purposes_lists_the_registered_purposes(client, steward, analyst):
    make_purpose(steward, slug="tutoring", name="Tutoring support")
    make_purpose(
        steward,
        slug="research-study",
        name="Research study",
        category="research",
        legal_basis="consent",
        consent_text="I agree to take part.",
    )

    response = client.get("/api/v1/purposes/", **bearer(analyst))

    assert response.status_code == 200
    results = {p["slug"]: p for p in response.json()["results"]}
    assert set(results) == set(Purpose.objects.values_list("slug", flat=True))
    assert {"tutoring", "research-study"} <= set(results)
    assert results["research-study"]["legal_basis"] == "consent"
    assert results["research-study"]["consent_version"] == 1


def test_policies_lists_the_registered_policies(client, analyst):
    dpo = make_user(Role.DPO)
    registry.policy_create(
        actor=dpo,
        slug="learning-analytics",
        title="Learning analytics policy",
        body="We use learning data only to help learners.",
        owner=dpo,
        approval_date=datetime.date(2020, 1, 15),
        review_interval_months=12,
    )

    response = client.get("/api/v1/policies/", **bearer(analyst))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [p["slug"] for p in results] == list(Policy.objects.values_list("slug", flat=True))
    policy = results[0]
    assert policy["owner"] == dpo.email
    assert policy["next_review_date"] == "2021-01-15"
    assert policy["is_overdue"] is True


# --- schema -------------------------------------------------------------------------


def test_the_openapi_schema_documents_the_dataset_endpoints(client, analyst):
    response = client.get("/api/schema/?format=json", **bearer(analyst))

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/datasets/" in schema["paths"]
    assert "/api/v1/datasets/{slug}/records/" in schema["paths"]
    assert "bearerAuth" in schema["components"]["securitySchemes"]
