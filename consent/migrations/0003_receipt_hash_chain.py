"""Consent receipts form the hash chain of consent changes (tamper evidence, see
governance/audit/chain.py): the chain fields, then the receipts already issued chained
in the order they were issued (their ids are random)."""

from django.db import migrations, models

from governance.audit.chain import backfill


def chain_existing(apps, schema_editor):
    backfill(apps.get_model("consent", "ConsentReceipt"), order_by=("issued_at", "pk"))


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0002_receipts_corrections_objections_exports"),
    ]

    operations = [
        migrations.AddField(
            model_name="consentreceipt",
            name="chain_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="consentreceipt",
            name="chain_prev",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="consentreceipt",
            name="chain_seq",
            field=models.PositiveBigIntegerField(
                blank=True, editable=False, help_text="Place in the chain.", null=True, unique=True
            ),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
    ]
