"""Every operation of the OpenAPI schema, fuzzed by schemathesis, for an analyst's and
an auditor's bearer token: no server error, and every response (status code, content
type, body) as the schema describes it.

The schema is drf-spectacular's, as /api/schema/ serves it (a test checks they are the
same document); calls go through the WSGI app, as a client's would. Hypothesis is
derandomized, so a run is the same every time; each operation gets at least 20
examples. Writes happen inside the test's
own database transaction and are rolled back with it.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from analytics.models import AnalyticsRequest
from governance.models import Role
from governance.services import accounts
from governance.wsgi import application
from tests.analytics.factories import approve, make_board, make_oulad, make_ready_request
from tests.factories import make_user

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 20


def _token(user) -> str:
    return accounts.api_token_create(actor=user, user=user, name="schemathesis")[1]


@pytest.fixture
def test_connection_kept(db):
    """Calls go through the real WSGI handler, which closes the database connection at
    the end of each request; Django's test client stops that, and so must this test, or
    the next call finds the test's transaction gone (PostgreSQL)."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def tokens(test_connection_kept):
    """An analyst with a draft and an approved request (so a grant exists), an auditor."""
    analyst = make_user(Role.ANALYST)
    oulad = make_oulad()
    board = make_board()
    make_ready_request(analyst, oulad)
    approve(make_ready_request(analyst, oulad), oulad, board)
    assert AnalyticsRequest.objects.filter(requester=analyst).count() == 2
    auditor = make_user(Role.AUDITOR)
    return {"analyst": _token(analyst), "auditor": _token(auditor)}


def _served_schema() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(_served_schema())
schema.app = application


def test_the_schema_is_valid_openapi_without_warnings(tmp_path):
    # A warning (an operationId collision, an unresolvable type) is a client's wrong guess.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s"))


def test_the_fuzzed_schema_is_the_served_one(client, tokens):
    response = client.get(
        "/api/schema/?format=json", HTTP_AUTHORIZATION=f"Bearer {tokens['analyst']}"
    )
    assert response.status_code == 200
    assert json.loads(response.content) == _served_schema()


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _call(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented_to_an_analyst(case, tokens):
    _call(case, tokens["analyst"])


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented_to_an_auditor(case, tokens):
    _call(case, tokens["auditor"])
