"""Suite-wide setup: which services are real, and fixtures for people in each role.

Without DATABASE_URL and REDIS_URL (a newcomer's laptop) the suite runs on SQLite
with Celery eager and skips the PostgreSQL-only tests, listing them. On CI
(CI=true) a missing PostgreSQL, Redis or Chromium fails the run instead.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

ON_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"


def _using_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_configure(config):
    if ON_CI:
        missing = []
        if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
            missing.append("DATABASE_URL (PostgreSQL)")
        if not os.environ.get("DATABASE_OWNER_URL"):
            missing.append("DATABASE_OWNER_URL (the suite runs as the application role)")
        if not os.environ.get("REDIS_URL"):
            missing.append("REDIS_URL (Redis broker for a real Celery worker)")
        if not os.path.exists(CHROMIUM):
            missing.append(f"{CHROMIUM} (apt-get install chromium)")
        if missing:
            raise pytest.UsageError("CI=true but these are missing: " + ", ".join(missing))


def pytest_collection_modifyitems(config, items):
    if _using_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    database = "PostgreSQL" if _using_postgres() else "SQLite"
    broker = "Redis + real Celery worker" if settings.REDIS_URL else "Celery eager (in-process)"
    browser = "Chromium" if os.path.exists(CHROMIUM) else "no Chromium (browser tests skip)"
    return f"custos: {database}; {broker}; {browser}"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings):
    """With two database roles, the test database is created and migrated by the owner
    of the tables (our migrate then gives the application role its rights)."""
    if settings.CUSTOS_DATABASE_OWNER is not None:
        settings.DATABASES["default"].update(settings.CUSTOS_DATABASE_OWNER)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The tests then connect as the application role, as the portal does; after a
    transactional test the tables are emptied as the owner, past the triggers (which
    refuse TRUNCATE on the audit trail to everyone)."""
    if not _using_postgres():
        yield
        return
    from django.db import connection
    from django.db.backends.postgresql.operations import DatabaseOperations

    from tests.database import past_the_triggers

    def execute_sql_flush(ops, sql_list):
        with past_the_triggers() as cursor:
            for statement in sql_list:
                cursor.execute(statement)

    two_roles = settings.CUSTOS_DATABASE_OWNER is not None
    with django_db_blocker.unblock():
        connection.close()
    if two_roles:
        settings.DATABASES["default"].update(settings.CUSTOS_DATABASE_APP)
    original, DatabaseOperations.execute_sql_flush = (
        DatabaseOperations.execute_sql_flush,
        execute_sql_flush,
    )
    yield
    DatabaseOperations.execute_sql_flush = original
    with django_db_blocker.unblock():
        connection.close()
    if two_roles:  # the owner drops the test database
        settings.DATABASES["default"].update(settings.CUSTOS_DATABASE_OWNER)


@pytest.fixture(autouse=True)
def _fast_passwords(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _mfa_enforced(settings, monkeypatch):
    """The suite runs as production does: two-factor authentication enforced
    (CUSTOS_DEMO_SKIP_MFA off, whatever DEBUG says).

    ``Client.force_login`` skips the sign-in form, password and all; it stands for a
    complete sign-in, so it also records the second factor in the session as allauth
    does after a correct code, dated an hour back so that pages asking to re-enter the
    password still do. Tests of the enforcement itself sign in through the real forms
    (tests/governance/test_mfa.py), or use ``force_login_password_only``.
    """
    import time

    from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
    from django.test.client import ClientMixin

    settings.CUSTOS_DEMO_SKIP_MFA = False
    password_only = ClientMixin.force_login

    def force_login(self, user, backend=None):
        password_only(self, user, backend)
        session = self.session
        session[AUTHENTICATION_METHODS_SESSION_KEY] = [
            {"method": "password", "at": time.time() - 3600, "email": user.email},
            {"method": "mfa", "at": time.time() - 3600, "type": "totp"},
        ]
        session["account_authentication_methods_user"] = str(user.pk)
        session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login)
    monkeypatch.setattr(ClientMixin, "force_login_password_only", password_only, raising=False)


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings):
    """Each test gets a cache of its own (a fresh key prefix, so with Redis nothing is
    flushed): allauth's request counters and any cached lockout state never carry over
    from one test to the next."""
    import uuid

    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    for config in caches.values():
        config["KEY_PREFIX"] = f"{config.get('KEY_PREFIX', 'custos')}-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def _restore_migration_data(request, django_db_blocker):
    """A transactional test ends by emptying every table, including the rows data
    migrations create in every installation (role groups, default rules). Put them back
    so the tests that follow see a real installation.

    Also before such a test: pytest-django's live-server helper empties the tables after
    this fixture's teardown has run, so the rows are put back when the next one starts."""
    transactional = bool({"transactional_db", "live_server"} & set(request.fixturenames))
    if transactional:
        _put_back_migration_data(django_db_blocker)
    yield
    if transactional:
        _put_back_migration_data(django_db_blocker)


def _put_back_migration_data(django_db_blocker):
    import importlib

    from django.apps import apps

    with django_db_blocker.unblock():
        for module in (
            "0002_create_role_groups",
            "0004_default_rules",
            "0008_privacy_budget_rule",
            "0014_sso_lockout",
        ):
            migration = importlib.import_module(f"governance.migrations.{module}")
            function = (
                migration.create_groups
                if hasattr(migration, "create_groups")
                else (migration.create_rules)
            )
            function(apps, None)


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (in a thread) when REDIS_URL is set; eager mode otherwise.

    Tests that enqueue work use this and poll for the result, so the same test runs
    against a real broker on CI and in-process on a laptop.
    """
    if not settings.REDIS_URL:
        yield None
        return
    from celery.contrib.testing.worker import start_worker

    from governance.celery import app

    app.control.purge()
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        yield worker


@pytest.fixture
def browser():
    """Real Chromium driven by Playwright; skipped (locally) when it is not installed."""
    if not os.path.exists(CHROMIUM) or shutil.which("chromium") is None:
        if ON_CI:
            pytest.fail(f"{CHROMIUM} is missing on CI")
        pytest.skip("Chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
