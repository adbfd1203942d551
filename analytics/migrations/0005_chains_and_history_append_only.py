"""On PostgreSQL, decisions, votes and every history table of the app refuse UPDATE and
DELETE (access events already do, since 0003): the hash-chained tables and history are
only ever added to (see governance/audit/chain.py)."""

from django.db import migrations

from governance.audit.chain import allow_changes, history_tables, refuse_changes

CHAINED = ["analytics_decision", "analytics_vote"]


def forwards(apps, schema_editor):
    refuse_changes(schema_editor, CHAINED + history_tables(schema_editor.connection, "analytics"))


def backwards(apps, schema_editor):
    allow_changes(schema_editor, CHAINED + history_tables(schema_editor.connection, "analytics"))


class Migration(migrations.Migration):
    dependencies = [("analytics", "0004_hash_chains")]

    operations = [migrations.RunPython(forwards, backwards)]
