"""``manage.py create_api_token`` and using the token against the API."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from governance.models import ApiToken, Role
from governance.services.accounts import api_token_revoke
from tests.factories import make_dataset, make_user

DATASETS = "/api/v1/datasets/"


@pytest.fixture
def analyst(db):
    return make_user(Role.ANALYST, email="analyst@example.org")


@pytest.fixture
def dataset(db):
    steward = make_user(Role.STEWARD, email="steward@example.org")
    return make_dataset(steward, slug="grades", fields=[("score", "integer", "internal")])


def create_token(email, *args) -> str:
    out = io.StringIO()
    call_command("create_api_token", email, *args, stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_the_printed_token_authenticates_api_requests(analyst, dataset):
    secret = create_token("Analyst@Example.org", "--name", "laptop")

    response = Client().get(DATASETS, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 200
    assert [d["slug"] for d in response.json()["results"]] == ["grades"]
    token = ApiToken.objects.get()
    assert token.user == analyst
    assert token.name == "laptop"
    assert secret not in (token.key_hash, token.prefix)  # only a hash is kept
    assert ApiToken.history.get().history_user == analyst


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Bearer cst_not-a-real-token",
        "Bearer {secret}x",
    ],
)
def test_a_wrong_token_gets_401_with_a_json_message(analyst, dataset, header):
    secret = create_token(analyst.email)

    response = Client().get(DATASETS, HTTP_AUTHORIZATION=header.format(secret=secret))

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message"}
    assert "token" in body["message"].lower()
    assert "grades" not in response.content.decode()


@pytest.mark.django_db
def test_no_token_gets_401_with_a_json_message(dataset):
    response = Client().get(DATASETS)

    assert response.status_code == 401
    assert isinstance(response.json()["message"], str)


@pytest.mark.django_db
def test_a_revoked_token_stops_working(analyst, dataset):
    secret = create_token(analyst.email)
    api_token_revoke(actor=analyst, token=ApiToken.objects.get())

    response = Client().get(DATASETS, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 401
    assert "message" in response.json()


@pytest.mark.django_db
def test_each_call_prints_a_new_token(analyst):
    first, second = create_token(analyst.email), create_token(analyst.email)

    assert first != second
    assert ApiToken.objects.filter(user=analyst).count() == 2


@pytest.mark.django_db
def test_an_unknown_login_gets_no_token(analyst):
    with pytest.raises(CommandError, match="no active login"):
        create_token("nobody@example.org")
    assert ApiToken.objects.count() == 0
