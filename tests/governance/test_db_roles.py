"""The audit trail against its own database: the application connects as a role that
cannot switch the triggers off or rewrite, delete or truncate a protected table; the
triggers refuse TRUNCATE too; ``verify_audit`` notices a table that lost rows.

The PostgreSQL tests that need two roles run when DATABASE_OWNER_URL is set (CI sets
it; see .ci/run); the fresh-database test also needs DATABASE_ADMIN_URL (a role that
may create roles and databases).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import environ
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from consent.services import consent_give, consent_withdraw
from governance.audit.chain import protected_tables
from governance.models import AuditVerification
from tests.consent.factories import make_subject_world, read
from tests.database import as_owner, past_the_triggers

ROOT = Path(__file__).resolve().parents[2]

needs_two_roles = pytest.mark.skipif(
    not os.environ.get("DATABASE_OWNER_URL"),
    reason="needs the two database roles: set DATABASE_OWNER_URL (see README)",
)


def verify_audit() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out, stderr=out)
    return out.getvalue()


def verify_audit_fails() -> str:
    with pytest.raises(CommandError) as failed:
        verify_audit()
    assert failed.value.returncode == 1
    return str(failed.value)


def refused(statement: str) -> str:
    """Run ``statement`` in a savepoint; the database's refusal, or '' if it ran."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    except DatabaseError as exc:
        return str(exc)
    return ""


@pytest.fixture
def trail(transactional_db):
    """Every protected table holds rows: history, votes, a decision, consents, reads."""
    world = make_subject_world()
    read(world)
    return world


# --- the application role ------------------------------------------------------------------


@pytest.mark.postgres
@needs_two_roles
def test_the_application_is_no_superuser_and_owns_no_table(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper, r.rolbypassrls, r.rolcreaterole, current_user"
            " FROM pg_roles r WHERE r.rolname = current_user"
        )
        superuser, bypass_rls, create_role, user = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname = current_schema() AND tableowner = current_user"
        )
        owned = cursor.fetchone()[0]
    assert user == settings.DATABASES["default"]["USER"]
    assert (superuser, bypass_rls, create_role, owned) == (False, False, False, 0)


@pytest.mark.postgres
@needs_two_roles
def test_the_application_cannot_switch_the_triggers_off(db):
    message = refused("SET session_replication_role = replica")

    assert "permission denied" in message
    assert refused("ALTER TABLE governance_historicaldataset DISABLE TRIGGER ALL")


@pytest.mark.postgres
@needs_two_roles
def test_the_application_may_only_read_and_add_to_every_protected_table(trail):
    tables = protected_tables(connection)
    assert len(tables) >= 36

    for table in tables:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        for statement in (
            f"UPDATE {table} SET {pk(table)} = {pk(table)}",  # noqa: S608
            f"DELETE FROM {table}",  # noqa: S608
            f"TRUNCATE {table}",
        ):
            assert f"permission denied for table {table}" in refused(statement), statement

    # ... while it keeps full use of the tables that are not part of the trail.
    for statement in (
        "UPDATE governance_dataset SET name = name",
        "UPDATE governance_notification SET read_at = read_at",
    ):
        assert refused(statement) == ""


def pk(table: str) -> str:
    with connection.cursor() as cursor:
        return connection.introspection.get_primary_key_column(cursor, table)


# --- the triggers, even for the owner --------------------------------------------------------


@pytest.mark.postgres
def test_truncate_is_refused_by_trigger_on_every_protected_table(trail):
    with as_owner():
        tables = protected_tables(connection)
        for table in tables:
            # CASCADE: a table others refer to could not be emptied alone anyway.
            assert "is append-only: TRUNCATE refused" in refused(f"TRUNCATE {table} CASCADE")
        assert "governance_historicaldataset is append-only: TRUNCATE refused" in refused(
            "TRUNCATE governance_historicaldataset"
        )
        # Cascading from a table that is not protected stops there too.
        assert "is append-only: TRUNCATE refused" in refused("TRUNCATE governance_user CASCADE")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM governance_historicaldataset")
            assert cursor.fetchone()[0] > 0


@pytest.mark.postgres
def test_every_protected_table_has_the_row_and_the_truncate_trigger(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname,"
            " bool_or(t.tgtype & 1 = 1 AND t.tgtype & 24 = 24),"  # row, UPDATE and DELETE
            " bool_or(t.tgtype & 1 = 0 AND t.tgtype & 32 = 32)"  # statement, TRUNCATE
            " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND t.tgenabled = 'O' GROUP BY c.relname"
        )
        guarded = {name: (rows, truncate) for name, rows, truncate in cursor.fetchall()}

    tables = protected_tables(connection)
    assert {t: guarded.get(t) for t in tables} == {t: (True, True) for t in tables}


# --- verify_audit and lost rows --------------------------------------------------------------


def test_a_truncated_history_table_fails_the_next_verification(trail):
    assert "kept every row" in verify_audit()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM governance_historicaldataset")
        held = cursor.fetchone()[0]
    assert held > 0
    when = timezone.localtime(AuditVerification.objects.get().started_at).strftime("%Y-%m-%d %H:%M")

    with past_the_triggers() as cursor:
        cursor.execute("DELETE FROM governance_historicaldataset")

    message = verify_audit_fails()
    assert (
        f"governance_historicaldataset lost {held} rows since the verification of {when}"
    ) in message
    # The chains themselves are intact: only the watermark caught it.
    assert "chain" not in message
    # It stays failed: the next run still compares with the last intact verification.
    assert f"governance_historicaldataset lost {held} rows" in verify_audit_fails()


def test_rows_deleted_below_the_highest_id_are_caught_though_new_rows_came(trail):
    verify_audit()
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(history_id), count(*) FROM consent_historicalconsent")
        oldest, verified = cursor.fetchone()
    read(trail)
    consent_withdraw(actor=trail.user, person=trail.person, purpose=trail.purpose)
    consent_give(actor=trail.user, person=trail.person, purpose=trail.purpose)

    with past_the_triggers() as cursor:
        cursor.execute("DELETE FROM consent_historicalconsent WHERE history_id = %s", [oldest])

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM consent_historicalconsent")
        assert cursor.fetchone()[0] > verified  # a count alone would not show it

    message = verify_audit_fails()
    assert "consent_historicalconsent lost 1 rows since the verification of" in message
    assert "governance_historicaldataset" not in message


def test_verifications_record_every_protected_table(trail):
    verify_audit()

    watermarks = AuditVerification.objects.get().watermarks
    assert set(watermarks) == set(protected_tables(connection))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), max(history_id) FROM governance_historicaldataset")
        rows, max_id = cursor.fetchone()
    assert watermarks["governance_historicaldataset"] == {"rows": rows, "max_id": max_id}


# --- check --deploy --------------------------------------------------------------------------


def check_deploy(**env) -> str:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "DJANGO_DEBUG"}
    }
    environment.update(env)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "x" * 60 + "-only-for-this-test-3a9f",
    "DJANGO_ALLOWED_HOSTS": "custos.example.org",
}


def test_check_deploy_warns_when_one_role_serves_the_application_and_migrations():
    app = "postgres://custos_app@127.0.0.1:5432/custos"
    owner = "postgres://custos_owner@127.0.0.1:5432/custos"

    alone = check_deploy(**PRODUCTION, DATABASE_URL=app)
    both = check_deploy(**PRODUCTION, DATABASE_URL=app, DATABASE_OWNER_URL=owner)
    laptop = check_deploy()

    assert "custos.W001" in alone
    assert "only as safe as that role" in alone
    assert "custos.W001" not in both
    assert "custos.W001" not in laptop


def test_an_owner_url_for_another_database_is_refused():
    output = check_deploy(
        **PRODUCTION,
        DATABASE_URL="postgres://custos_app@127.0.0.1:5432/custos",
        DATABASE_OWNER_URL="postgres://custos_owner@127.0.0.1:5432/elsewhere",
    )

    assert "DATABASE_OWNER_URL must name the same database as DATABASE_URL" in output


# --- the db_roles command on a fresh database ------------------------------------------------


def admin_url() -> str:
    url = os.environ.get("DATABASE_ADMIN_URL", "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("DATABASE_ADMIN_URL is missing on CI")
        pytest.skip("needs DATABASE_ADMIN_URL (a role that may create roles and databases)")
    return url


def url_for(config: dict, *, user: str, name: str) -> str:
    return f"postgres://{user}@{config['HOST']}:{config['PORT'] or 5432}/{name}"


def run_manage(*args, env: dict) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}}
    environment.update(env)
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.postgres
def test_db_roles_prepares_a_fresh_database_and_can_run_again():
    admin = admin_url()
    # Names derived from the configured ones, so parallel runs each keep to their own.
    configured = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    base = configured["USER"] if configured["USER"] != "postgres" else "custos"
    owner, app, name = f"{base}_fresh_owner", f"{base}_fresh_app", f"{configured['NAME']}_fresh"
    env = {
        "DATABASE_URL": url_for(configured, user=app, name=name),
        "DATABASE_OWNER_URL": url_for(configured, user=owner, name=name),
        "DATABASE_ADMIN_URL": admin,
    }
    admin_conninfo = dict(environ.Env.db_url_config(admin))

    def admin_do(*statements):
        with psycopg.connect(
            host=admin_conninfo["HOST"],
            port=admin_conninfo["PORT"] or 5432,
            user=admin_conninfo["USER"],
            password=admin_conninfo["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            for statement in statements:
                conn.execute(statement)

    def cleanup():
        admin_do(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{app}"',
            f'DROP ROLE IF EXISTS "{owner}"',
        )

    cleanup()
    try:
        first = run_manage("db_roles", env=env)
        assert first.returncode == 0, first.stderr
        assert f"{owner} owns database {name}" in first.stdout
        migrated = run_manage("migrate", "--noinput", env=env)
        assert migrated.returncode == 0, migrated.stderr
        again = run_manage("db_roles", env=env)
        assert again.returncode == 0, again.stderr

        with psycopg.connect(
            host=configured["HOST"], port=configured["PORT"] or 5432, user=app, dbname=name
        ) as conn:
            owned = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s",
                [owner],
            ).fetchone()[0]
            assert owned > 50
            for statement, allowed in (
                ("SELECT count(*) FROM governance_historicaldataset", True),
                ("UPDATE governance_dataset SET name = name", True),
                ("DELETE FROM governance_historicaldataset", False),
                ("TRUNCATE analytics_accessevent", False),
                ("UPDATE analytics_vote SET rationale = ''", False),
                ("SET session_replication_role = replica", False),
                ("CREATE TABLE intruder (id int)", False),
            ):
                try:
                    with conn.transaction():
                        conn.execute(statement)
                except psycopg.errors.InsufficientPrivilege:
                    assert not allowed, statement
                else:
                    assert allowed, statement
    finally:
        cleanup()


def test_db_roles_refuses_one_role_for_both(tmp_path):
    done = run_manage(
        "db_roles",
        env={
            "DATABASE_URL": "postgres://custos_hdb_same@127.0.0.1:5432/custos_hdb_same",
            "DATABASE_OWNER_URL": "postgres://custos_hdb_same@127.0.0.1:5432/custos_hdb_same",
            "DATABASE_ADMIN_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        },
    )

    assert done.returncode != 0
    assert "must be two different roles" in done.stderr
