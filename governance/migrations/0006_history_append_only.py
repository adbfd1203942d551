"""On PostgreSQL, the history tables refuse UPDATE and DELETE: history is only ever
added to (see governance/audit/chain.py)."""

from django.db import migrations

from governance.audit.chain import allow_changes, history_tables, refuse_changes


def forwards(apps, schema_editor):
    refuse_changes(schema_editor, history_tables(schema_editor.connection, "governance"))


def backwards(apps, schema_editor):
    allow_changes(schema_editor, history_tables(schema_editor.connection, "governance"))


class Migration(migrations.Migration):
    dependencies = [("governance", "0005_audit_verification")]

    operations = [migrations.RunPython(forwards, backwards)]
