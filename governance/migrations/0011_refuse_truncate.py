"""On PostgreSQL, the history tables refuse TRUNCATE too (a statement trigger: TRUNCATE
fires no row trigger, so 0006's did not stop it; see governance/audit/chain.py)."""

from django.db import migrations

from governance.audit.chain import allow_truncate, history_tables, refuse_truncate


def forwards(apps, schema_editor):
    refuse_truncate(schema_editor, history_tables(schema_editor.connection, "governance"))


def backwards(apps, schema_editor):
    allow_truncate(schema_editor, history_tables(schema_editor.connection, "governance"))


class Migration(migrations.Migration):
    dependencies = [("governance", "0010_token_scope_expiry")]

    operations = [migrations.RunPython(forwards, backwards)]
