"""On PostgreSQL, consent receipts and every history table of the app refuse TRUNCATE
too (a statement trigger: TRUNCATE fires no row trigger; see governance/audit/chain.py)."""

from django.db import migrations

from governance.audit.chain import allow_truncate, history_tables, refuse_truncate

APPEND_ONLY = ["consent_consentreceipt"]


def forwards(apps, schema_editor):
    refuse_truncate(
        schema_editor, APPEND_ONLY + history_tables(schema_editor.connection, "consent")
    )


def backwards(apps, schema_editor):
    allow_truncate(schema_editor, APPEND_ONLY + history_tables(schema_editor.connection, "consent"))


class Migration(migrations.Migration):
    dependencies = [("consent", "0005_text_limits")]

    operations = [migrations.RunPython(forwards, backwards)]
