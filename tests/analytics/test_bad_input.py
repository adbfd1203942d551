"""Bad input on the request surfaces (issue 11, "Bad input"): NUL in a cohort, JSON
nested 50,000 deep, a 40 MB justification, a 100 kB cohort value. Each answers 400 (or
413, or a form error) with a reason, and no request is written."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from analytics.models import AnalyticsRequest
from governance import limits
from governance.models import Role
from tests.analytics.test_api import FIELDS, bearer, request_body
from tests.analytics.test_request_pages import _form, world  # noqa: F401 - fixture
from tests.factories import make_dataset, make_purpose, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst():
    steward = make_user(Role.STEWARD)
    purpose = make_purpose(steward, slug="tutoring", name="Tutoring support")
    make_dataset(steward, slug="course-scores", fields=FIELDS, purposes=[purpose])
    return make_user(Role.ANALYST)


def post_json(client, user, body: str | bytes, url="/api/v1/requests/"):
    return client.post(url, data=body, content_type="application/json", **bearer(user))


@pytest.mark.parametrize(
    "cohort",
    [{"course-scores.code_module\x00": "AAA"}, {"course-scores.code_module": "AA\x00A"}],
    ids=["in-the-key", "in-the-value"],
)
def test_a_nul_in_an_api_cohort_is_a_400(client, analyst, cohort):
    response = post_json(client, analyst, json.dumps(request_body(cohort=cohort)))

    assert response.status_code == 400
    assert "NUL" in response.json()["message"]
    assert not AnalyticsRequest.objects.exists()


@pytest.mark.parametrize(
    "cohort", ["vle.code_module\x00=AAA", "vle.code_module=AA\x00A"], ids=["key", "value"]
)
def test_a_nul_in_a_form_cohort_is_refused(world, cohort):  # noqa: F811
    client = Client()
    client.force_login(world.analyst)
    response = client.post("/requests/new/", _form(world, cohort=cohort))

    assert response.status_code in (200, 400)
    assert "NUL" in response.content.decode()
    assert not AnalyticsRequest.objects.exists()


def test_json_nested_50000_levels_is_a_400(client, analyst):
    body = '{"title": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = post_json(client, analyst, body)

    assert response.status_code == 400
    assert "nested more than" in response.json()["message"]


def test_json_nested_past_the_limit_but_parseable_is_a_400(client, analyst):
    deep = "[" * 40 + "]" * 40
    response = post_json(
        client, analyst, json.dumps(request_body(cohort=None))[:-1] + f', "x": {deep}}}'
    )

    assert response.status_code == 400
    assert "nested more than" in response.json()["message"]


def test_a_40_mb_justification_is_refused_before_it_is_read(client, analyst):
    body = json.dumps(request_body(justification="x" * 40_000_000))
    response = post_json(client, analyst, body)

    assert response.status_code == 413
    assert "larger than" in response.json()["message"]
    assert not AnalyticsRequest.objects.exists()


def test_a_justification_over_its_limit_is_a_400_naming_it(client, analyst):
    body = json.dumps(request_body(justification="x" * (limits.TEXT + 1)))
    response = post_json(client, analyst, body)

    assert response.status_code == 400
    assert "justification" in response.json()["errors"]
    assert not AnalyticsRequest.objects.exists()


def test_a_justification_over_its_limit_is_a_form_error(world):  # noqa: F811
    client = Client()
    client.force_login(world.analyst)
    response = client.post("/requests/new/", _form(world, justification="x" * (limits.TEXT + 1)))

    assert response.status_code == 200
    assert response.context["form"].errors["justification"]
    assert not AnalyticsRequest.objects.exists()


def test_a_100_kb_cohort_value_is_a_400(client, analyst):
    body = json.dumps(request_body(cohort={"course-scores.score": "7" * 100_000}))
    response = post_json(client, analyst, body)

    assert response.status_code == 400
    assert "cohort" in response.json()["errors"]
    assert not AnalyticsRequest.objects.exists()


@pytest.mark.parametrize(
    ("parameters", "message"),
    [("[" * 50_000 + "]" * 50_000, "nested more than"), ('{"max_fields\\u0000": 3}', "NUL")],
    ids=["deep", "nul"],
)
def test_the_rule_form_refuses_deep_or_nul_json_with_a_form_error(parameters, message):
    from governance.models import Rule

    rule = Rule.objects.get(slug="minimisation")
    client = Client()
    client.force_login(make_user(Role.DPO))
    response = client.post(
        f"/rules/{rule.slug}/edit/",
        {"severity": "warn", "enabled": "on", "description": "", "parameters": parameters},
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    rule.refresh_from_db()
    assert rule.parameters == {"max_fields": 20}
