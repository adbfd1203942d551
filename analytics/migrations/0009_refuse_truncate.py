"""On PostgreSQL, every append-only table of the app refuses TRUNCATE too (a statement
trigger: TRUNCATE fires no row trigger; see governance/audit/chain.py)."""

from django.db import migrations

from governance.audit.chain import allow_truncate, history_tables, refuse_truncate

APPEND_ONLY = [
    "analytics_accessevent",
    "analytics_accesseventsubject",
    "analytics_aggregaterelease",
    "analytics_decision",
    "analytics_vote",
]


def forwards(apps, schema_editor):
    refuse_truncate(
        schema_editor, APPEND_ONLY + history_tables(schema_editor.connection, "analytics")
    )


def backwards(apps, schema_editor):
    allow_truncate(
        schema_editor, APPEND_ONLY + history_tables(schema_editor.connection, "analytics")
    )


class Migration(migrations.Migration):
    dependencies = [("analytics", "0008_text_limits")]

    operations = [migrations.RunPython(forwards, backwards)]
