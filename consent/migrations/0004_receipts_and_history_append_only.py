"""On PostgreSQL, consent receipts (the hash chain of consent changes) and every history
table of the app refuse UPDATE and DELETE (see governance/audit/chain.py)."""

from django.db import migrations

from governance.audit.chain import allow_changes, history_tables, refuse_changes

CHAINED = ["consent_consentreceipt"]


def forwards(apps, schema_editor):
    refuse_changes(schema_editor, CHAINED + history_tables(schema_editor.connection, "consent"))


def backwards(apps, schema_editor):
    allow_changes(schema_editor, CHAINED + history_tables(schema_editor.connection, "consent"))


class Migration(migrations.Migration):
    dependencies = [("consent", "0003_receipt_hash_chain")]

    operations = [migrations.RunPython(forwards, backwards)]
