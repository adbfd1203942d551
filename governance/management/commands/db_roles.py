"""Create the two database roles and the application's rights (governance/dbroles.py).

Run it once on a fresh database, and again whenever you like: it changes only what is
not as it should be. It needs a superuser's connection (DATABASE_ADMIN_URL or
--admin-url) and takes the two roles from DATABASE_OWNER_URL and DATABASE_URL.
"""

from __future__ import annotations

import environ
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ... import dbroles
from ...audit.chain import REFUSING_FUNCTIONS, TRIGGERED_TABLES_SQL, protected_among


class Command(BaseCommand):
    help = (
        "Create the owner role (DATABASE_OWNER_URL: owns the tables, runs migrate) and "
        "the application role (DATABASE_URL: may read and add to the audit trail but "
        "not change, delete or empty it), the database if it is missing, and the "
        "application's rights. Needs a superuser: DATABASE_ADMIN_URL or --admin-url. "
        "Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--admin-url",
            default=environ.Env().str("DATABASE_ADMIN_URL", default=""),
            help="A PostgreSQL superuser's URL (default: DATABASE_ADMIN_URL). Only this "
            "command uses it; the application never should.",
        )
        parser.add_argument(
            "--test-databases",
            action="store_true",
            help="For running the test suite only: also let the owner create databases "
            "(test_<name>) and switch triggers off as a superuser would (the tests tamper "
            "with the audit trail to see it caught).",
        )

    def handle(self, *args, admin_url, test_databases, **options):
        import psycopg
        from psycopg import sql

        owner, app, target = self._roles()
        if not admin_url:
            raise CommandError(
                "No superuser to create the roles with: set DATABASE_ADMIN_URL or give "
                "--admin-url postgres://postgres@host:5432/postgres."
            )
        admin = environ.Env.db_url_config(admin_url)
        if admin["USER"] in (owner["USER"], app["USER"]):
            raise CommandError(
                "The superuser of --admin-url cannot be the owner or the application role."
            )

        def connect(dbname, **kwargs):
            try:
                return psycopg.connect(
                    host=target["HOST"] or None,
                    port=target["PORT"] or None,
                    user=admin["USER"] or None,
                    password=admin["PASSWORD"] or None,
                    dbname=dbname,
                    **kwargs,
                )
            except psycopg.OperationalError as exc:
                raise CommandError(f"Cannot connect as {admin['USER']}: {exc}") from exc

        name = target["NAME"]
        with connect(admin["NAME"] or "postgres", autocommit=True) as conn:
            if not conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()[0]:
                raise CommandError(
                    f"{admin['USER']} is not a superuser: it cannot create the roles."
                )
            for role, may_create_databases in ((owner, test_databases), (app, False)):
                self._role(conn, role, createdb=may_create_databases)
            # Test databases only: the suite tampers with the trail as a superuser
            # would, to see it caught (tests/database.py). Never for production.
            conn.execute(
                sql.SQL("{} SET ON PARAMETER session_replication_role {} {}").format(
                    sql.SQL("GRANT" if test_databases else "REVOKE"),
                    sql.SQL("TO" if test_databases else "FROM"),
                    sql.Identifier(owner["USER"]),
                )
            )
            conn.execute(
                sql.SQL("REVOKE {} FROM {}").format(
                    sql.Identifier(owner["USER"]), sql.Identifier(app["USER"])
                )
            )
            exists = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if exists is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(owner["USER"])
                    )
                )
            elif exists[0] != owner["USER"]:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(name), sql.Identifier(owner["USER"])
                    )
                )

        with connect(name) as conn, conn.transaction(), conn.cursor() as cursor:
            adopted = self._adopt(cursor, owner["USER"])
            cursor.execute("SELECT current_schema()")
            schema = sql.Identifier(cursor.fetchone()[0])
            cursor.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema))
            cursor.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(name), sql.Identifier(app["USER"])
                )
            )
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            existing = [row[0] for row in cursor.fetchall()]
            cursor.execute(TRIGGERED_TABLES_SQL, [list(REFUSING_FUNCTIONS)])
            protected = protected_among(existing, [row[0] for row in cursor.fetchall()])
            dbroles.grants_apply(cursor, owner=owner["USER"], app=app["USER"], protected=protected)

        self.stdout.write(
            f"{owner['USER']} owns database {name} and runs migrate (DATABASE_OWNER_URL); "
            f"{app['USER']} is the application (DATABASE_URL): it may read and add to the "
            f"{len(protected)} audit tables but not change, delete or empty them."
            + (f" Now owned by {owner['USER']}: {adopted} objects." if adopted else "")
        )

    def _roles(self):
        owner = settings.CUSTOS_DATABASE_OWNER
        target = settings.DATABASES["default"]
        if owner is None or target["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError(
                "Set DATABASE_OWNER_URL (the owner of the tables) and DATABASE_URL (the "
                "application), both postgres://… URLs naming the same database and two "
                "different roles."
            )
        app = settings.CUSTOS_DATABASE_APP
        if owner["USER"] == app["USER"]:
            raise CommandError("The owner and the application must be two different roles.")
        return owner, app, target

    def _role(self, conn, role, *, createdb):
        """Create or correct one login role: no superuser, no role creation, no RLS bypass."""
        from psycopg import sql

        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", [role["USER"]]
        ).fetchone()
        options = "LOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT " + (
            "CREATEDB" if createdb else "NOCREATEDB"
        )
        statement = sql.SQL("{} ROLE {} " + options).format(
            sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role["USER"])
        )
        if role["PASSWORD"]:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(role["PASSWORD"]))
        conn.execute(statement)

    def _adopt(self, cursor, owner: str) -> int:
        """Give ``owner`` every table, view, sequence and function of the schema someone
        else owns (a database migrated before the roles existed)."""
        from psycopg import sql

        adopted = 0
        for kind, relkinds in (("TABLE", "rpvmf"), ("SEQUENCE", "S")):
            cursor.execute(
                "SELECT c.relname FROM pg_class c"
                " WHERE c.relnamespace = current_schema()::regnamespace"
                " AND c.relkind::text = ANY(%s) AND pg_get_userbyid(c.relowner) <> %s"
                # sequences that belong to a column follow their table
                " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid"
                " AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))",
                [list(relkinds), owner],
            )
            for (relname,) in cursor.fetchall():
                cursor.execute(
                    sql.SQL("ALTER {} {} OWNER TO {}").format(
                        sql.SQL(kind), sql.Identifier(relname), sql.Identifier(owner)
                    )
                )
                adopted += 1
        cursor.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = current_schema()::regnamespace"
            " AND pg_get_userbyid(p.proowner) <> %s",
            [owner],
        )
        for (signature,) in cursor.fetchall():
            cursor.execute(
                sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(
                    sql.SQL(signature), sql.Identifier(owner)
                )
            )
            adopted += 1
        return adopted
