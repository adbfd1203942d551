"""Issue 11, "Accounts", replayed for API tokens: they never expired and could not be
limited to reading. Now a token has a scope (``read`` or ``read-write``) and an expiry
(90 days unless chosen, at most a year): a read token is refused every write on every
endpoint, an expired token is refused with a message saying when it expired."""

from __future__ import annotations

import datetime
import re
from io import StringIO

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from governance.models import ApiToken
from governance.services import accounts
from tests.factories import make_user
from tests.governance import test_authorization_matrix as matrix

world = matrix.world

UNSAFE = ("post", "put", "patch", "delete")
READ_ONLY_MESSAGE = re.compile(r"read", re.I)


def _bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _api_views(resolver=None, prefix=""):
    """(route, view class) for every DRF view in the URL configuration."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, route)
        elif isinstance(pattern, URLPattern):
            cls = getattr(pattern.callback, "cls", None)
            if cls is not None and issubclass(cls, APIView):
                yield route, cls


def write_operations() -> list[tuple[str, str]]:
    """Every (method, route) of the API that is not a read, from the URL configuration."""
    operations = []
    for route, cls in _api_views():
        for method in UNSAFE:
            if hasattr(cls, method):
                operations.append((method, route))
    return sorted(set(operations))


def _fill(route: str, placeholders: dict) -> str:
    """A real object for each parameter of the route, so a token that may write reaches
    the view (and its own rules) with it."""
    route = route.lstrip("^").rstrip("$")
    if route.startswith("api/v1/requests/"):
        route = route.replace("<int:pk>", str(placeholders["review"]))
    if route.startswith("api/v1/grants/"):
        route = route.replace("<int:pk>", str(placeholders["grant"]))
    route = route.replace("<slug:slug>", placeholders["active"])
    route = route.replace("<str:kind>", "grant").replace("<int:pk>", str(placeholders["grant"]))
    assert "<" not in route, route
    return "/" + route


def _table_sizes() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def test_the_routes_cover_every_write_in_the_schema():
    """The URL walk finds at least what the OpenAPI schema documents as writes."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {
        (method, re.sub(r"\{\w+\}", "{}", path))
        for path, item in schema["paths"].items()
        for method in item
        if method in UNSAFE
    }
    found = {
        (method, "/" + re.sub(r"<\w+:\w+>", "{}", route)) for method, route in write_operations()
    }
    assert documented, "the API has writes"
    assert documented <= found, documented - found


@pytest.mark.django_db
def test_a_read_token_is_refused_every_write_across_the_api(world):
    users, placeholders = world
    admin = users["admin"]  # every role: no write is refused for want of one
    _, read = accounts.api_token_create(actor=admin, user=admin, name="read", scope="read")
    _, write = accounts.api_token_create(actor=admin, user=admin, name="write", scope="read-write")
    operations = write_operations()
    assert len(operations) >= 9  # as many as the API had when scopes came in
    before = _table_sizes()
    refused = []
    for method, route in operations:
        path = _fill(route, placeholders)
        response = getattr(Client(), method)(
            path, data={}, content_type="application/json", **_bearer(read)
        )
        body = response.json()
        assert response.status_code == 403, (method, path, response.status_code, body)
        assert body["message"] == (
            "This token may only read. Writing needs a read-write token, "
            "which you can create on your profile page."
        ), (method, path)
        refused.append((method, path))
    assert _table_sizes() == before, "a refused write changed nothing"
    # The same calls with a read-write token get past the scope and meet the view's
    # own rules (a bad body, a state that refuses, a missing object).
    for method, path in refused:
        response = getattr(Client(), method)(
            path, data={}, content_type="application/json", **_bearer(write)
        )
        assert "may only read" not in response.content.decode(), (method, path)


@pytest.mark.django_db
def test_a_read_token_still_reads(world):
    users, placeholders = world
    analyst = users["analyst"]
    _, secret = accounts.api_token_create(actor=analyst, user=analyst, name="r", scope="read")
    for path in ("/api/v1/datasets/", f"/api/v1/requests/{placeholders['review']}/"):
        assert Client().get(path, **_bearer(secret)).status_code == 200, path


@pytest.mark.django_db
def test_an_expired_token_gets_401_saying_when_it_expired():
    user = make_user()
    token, secret = accounts.api_token_create(actor=user, user=user, name="old")
    assert Client().get("/api/v1/datasets/", **_bearer(secret)).status_code == 200
    token.expires_at = datetime.datetime(2025, 3, 5, 10, 0, tzinfo=datetime.UTC)
    token.save()
    response = Client().get("/api/v1/datasets/", **_bearer(secret))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "message": "This token expired on 5 March 2025 at 10:00 UTC. "
        "Create a new one on your profile page."
    }
    # A write is refused the same way, before its scope or its body is looked at.
    response = Client().post(
        "/api/v1/me/consents", data={}, content_type="application/json", **_bearer(secret)
    )
    assert response.status_code == 401
    assert "expired on 5 March 2025" in response.json()["message"]


@pytest.mark.django_db
def test_a_new_token_lasts_90_days_unless_told_and_never_more_than_a_year():
    user = make_user()
    before = timezone.now()
    token, _ = accounts.api_token_create(actor=user, user=user, name="default")
    assert token.scope == "read-write"
    assert token.expires_at - before >= datetime.timedelta(days=90)
    assert token.expires_at - timezone.now() <= datetime.timedelta(days=90)

    token, _ = accounts.api_token_create(actor=user, user=user, name="y", expires_in_days=365)
    assert (token.expires_at - token.created_at) == datetime.timedelta(days=365)
    for days in (0, -1, 366, 10_000):
        with pytest.raises(ValidationError) as refused:
            accounts.api_token_create(actor=user, user=user, name="n", expires_in_days=days)
        assert "from 1 to 365 days" in str(refused.value)
    soon = timezone.now() + datetime.timedelta(days=7)
    token, _ = accounts.api_token_create(actor=user, user=user, name="d", expires_at=soon)
    assert token.expires_at == soon
    for when in (timezone.now() - datetime.timedelta(minutes=1), soon.replace(year=soon.year + 2)):
        with pytest.raises(ValidationError):
            accounts.api_token_create(actor=user, user=user, name="n", expires_at=when)
    with pytest.raises(ValidationError):
        accounts.api_token_create(actor=user, user=user, name="n", scope="admin")
    assert ApiToken.objects.filter(user=user).count() == 3


@pytest.mark.django_db
def test_a_token_from_before_expiry_existed_can_still_be_revoked_in_the_admin():
    """Migration 0010 gave old tokens 90 days from the migration, whatever their age."""
    admin = make_user(is_superuser=True)
    token, _ = accounts.api_token_create(actor=admin, user=admin, name="old")
    ApiToken.objects.filter(pk=token.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=400)
    )
    client = Client()
    client.force_login(admin)
    change = f"/admin/governance/apitoken/{token.pk}/change/"
    assert client.get(change).status_code == 200
    response = client.post(
        change,
        {
            "user": admin.pk,
            "name": "old",
            "revoked_at_0": timezone.localdate().isoformat(),
            "revoked_at_1": "12:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db
def test_the_profile_page_lets_a_person_choose_scope_and_expiry_and_lists_both():
    user = make_user()
    client = Client()
    client.force_login(user)
    page = client.get("/accounts/profile/").content.decode()
    assert 'name="scope"' in page and 'name="expires_in_days"' in page
    assert re.search(r'<option value="read" selected>', page), "read only unless chosen"
    assert 'value="90"' in page

    refused = client.post(
        "/accounts/profile/", {"name": "laptop", "scope": "read", "expires_in_days": "400"}
    )
    assert refused.status_code == 200
    assert "Ensure this value is less than or equal to 365." in refused.content.decode()
    assert not ApiToken.objects.filter(user=user).exists()

    created = client.post(
        "/accounts/profile/", {"name": "laptop", "scope": "read", "expires_in_days": "30"}
    )
    token = ApiToken.objects.get(user=user)
    assert (token.scope, token.expires_at - token.created_at) == (
        "read",
        datetime.timedelta(days=30),
    )
    listed = created.content.decode()
    assert "Read only" in listed
    assert timezone.localtime(token.expires_at).strftime("%-d %b %Y") in listed


@pytest.mark.django_db
def test_the_command_takes_a_scope_and_a_number_of_days():
    user = make_user(email="cli@example.org")
    out = StringIO()
    call_command(
        "create_api_token", "cli@example.org", "--scope", "read", "--days", "7", stdout=out
    )
    token = ApiToken.objects.get(user=user)
    assert (token.scope, token.expires_at - token.created_at) == (
        "read",
        datetime.timedelta(days=7),
    )
    response = Client().post(
        "/api/v1/me/consents",
        data={},
        content_type="application/json",
        **_bearer(out.getvalue().strip()),
    )
    assert response.status_code == 403
    with pytest.raises(CommandError, match="from 1 to 365 days"):
        call_command("create_api_token", "cli@example.org", "--days", "400", stdout=StringIO())
    assert ApiToken.objects.filter(user=user).count() == 1
