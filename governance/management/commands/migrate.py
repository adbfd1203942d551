"""Django's ``migrate``, run as the owner of the tables when DATABASE_OWNER_URL is set,
and followed by the application role's grants (governance/dbroles.py): a migration
that adds a protected table must not leave the application able to change it."""

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ... import dbroles
from ...audit.chain import protected_tables


class Command(DjangoMigrate):
    help = (
        DjangoMigrate.help
        + " With DATABASE_OWNER_URL set, runs as that role and then re-applies the "
        "application role's rights (no UPDATE, DELETE or TRUNCATE on the audit trail)."
    )

    def handle(self, *args, **options):
        owner = settings.CUSTOS_DATABASE_OWNER
        if owner is None or options["database"] != DEFAULT_DB_ALIAS:
            return super().handle(*args, **options)
        connection = connections[DEFAULT_DB_ALIAS]
        with dbroles.connected_as(connection, owner):
            super().handle(*args, **options)
            if options["plan"] or options["check_unapplied"]:
                return  # nothing was migrated
            with transaction.atomic(), connection.cursor() as cursor:
                protected = protected_tables(connection)
                dbroles.grants_apply(
                    cursor, owner=owner["USER"], app=dbroles.app_role(), protected=protected
                )
            if options["verbosity"] >= 1:
                self.stdout.write(
                    f"Rights of {dbroles.app_role()} applied: read and add only on "
                    f"{len(protected)} audit tables."
                )
