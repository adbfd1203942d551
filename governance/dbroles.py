"""Two PostgreSQL roles, so that the application cannot rewrite its own audit trail.

- The **owner** (``DATABASE_OWNER_URL``) owns every table and runs the migrations.
- The **application** (``DATABASE_URL``) is no superuser and owns nothing. It may read
  and add to the protected tables (``chain.protected_tables``: the hash-chained tables,
  the history tables, the access log, the verifications) but not UPDATE, DELETE or
  TRUNCATE them; it has full use of every other table and of the sequences. Being
  neither owner nor superuser, it cannot switch the append-only triggers off
  (``ALTER TABLE … DISABLE TRIGGER``, ``SET session_replication_role``).

``grants_apply`` sets the application's rights; ``migrate`` (our override) runs it after
every migration, because a new protected table must lose the rights the default
privileges gave it (until then, within the migrate run, its trigger refuses what those
rights would allow), and ``db_roles`` runs it when it creates the roles.

Without ``DATABASE_OWNER_URL`` the one role of ``DATABASE_URL`` does everything, and the
trail is only as safe as that role: ``check --deploy`` says so (custos.W001).
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.core import checks

ROLE_KEYS = ("USER", "PASSWORD")


@contextlib.contextmanager
def connected_as(connection, credentials: dict):
    """``connection`` reconnected with ``credentials`` (USER, PASSWORD) until the block
    ends. Closes the connection on the way in and out, so never inside a transaction.

    The settings dict is shared by every thread's connection of the alias (Django keeps
    one per alias), which is what a management command or a test's setup wants."""
    if connection.in_atomic_block:
        raise RuntimeError("cannot change the database role inside a transaction")
    saved = {key: connection.settings_dict.get(key) for key in ROLE_KEYS}
    connection.close()
    connection.settings_dict.update({key: credentials.get(key) for key in ROLE_KEYS})
    try:
        yield connection
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def app_role() -> str:
    """The application's role (not the default connection's: ``connected_as`` swaps it)."""
    return settings.CUSTOS_DATABASE_APP["USER"]


def grants_apply(cursor, *, owner: str, app: str, protected: list[str]) -> None:
    """Give ``app`` its rights on every table of the current schema and on the tables
    ``owner`` creates later, then take UPDATE, DELETE and TRUNCATE on ``protected``
    away. Idempotent; run it in one transaction, so the rights change all at once."""
    from psycopg import sql

    owner_id, app_id = sql.Identifier(owner), sql.Identifier(app)
    cursor.execute("SELECT current_schema()")
    schema = sql.Identifier(cursor.fetchone()[0])
    tables = "SELECT, INSERT, UPDATE, DELETE"
    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, app_id),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(
            sql.SQL(tables), schema, app_id
        ),
        sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {} FROM {}").format(
            schema, app_id
        ),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, app_id),
    ]
    # Tables and sequences later migrations create: usable at once, the protected ones
    # then narrowed by the grants_apply that follows every migrate.
    for kind, rights in (("TABLES", tables), ("SEQUENCES", "USAGE, SELECT")):
        statements.append(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON {} TO {}"
            ).format(owner_id, schema, sql.SQL(rights), sql.SQL(kind), app_id)
        )
    if protected:
        statements.append(
            sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in protected), app_id
            )
        )
    for statement in statements:
        cursor.execute(statement.as_string(cursor.connection))


@checks.register(checks.Tags.security, deploy=True)
def check_database_roles(app_configs, **kwargs):
    """custos.W001: one database role both owns the tables and serves the application."""
    if settings.CUSTOS_DATABASE_OWNER is not None:
        return []
    sqlite = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    if sqlite and settings.DEBUG:
        return []  # `make run` on a laptop
    return [
        checks.Warning(
            "One database role owns the tables and serves the application, so anyone "
            "who gets hold of the application's connection can switch the append-only "
            "triggers off or empty a history table: the audit trail is then only as safe "
            "as that role.",
            hint="Create two roles with `python manage.py db_roles`, then set "
            "DATABASE_OWNER_URL (used by migrate) and DATABASE_URL (the application). "
            "See the README, section Database roles.",
            id="custos.W001",
        )
    ]
