"""The database roles in tests (see governance/dbroles.py).

With DATABASE_OWNER_URL set, the suite connects as the application role, which cannot
change the audit trail. What needs more (emptying tables after a transactional test,
tampering with the trail to see it caught) is done as the tables' owner, past the
append-only triggers, the way a database superuser could.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.db import connection, transaction

from governance import dbroles


def two_roles() -> bool:
    return settings.CUSTOS_DATABASE_OWNER is not None


@contextlib.contextmanager
def as_owner():
    """The default connection, reconnected as the owner of the tables. Only between
    transactions (a transactional test's): it closes the connection first."""
    if not two_roles():
        yield connection
        return
    with dbroles.connected_as(connection, settings.CUSTOS_DATABASE_OWNER):
        yield connection


@contextlib.contextmanager
def past_the_triggers():
    """A cursor that writes past the append-only triggers and the foreign keys, as a
    superuser could: ``session_replication_role = replica`` for one transaction, as the
    owner (``db_roles --test-databases`` lets the owner of test databases set it)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    with as_owner(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        yield cursor
        cursor.execute("SET LOCAL session_replication_role = origin")
