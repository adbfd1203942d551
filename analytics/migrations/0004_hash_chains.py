"""Hash chains over decisions, votes and access events (tamper evidence, see
governance/audit/chain.py): the chain fields, then the rows already held chained in id
order.

Access events already refuse UPDATE on PostgreSQL (0003's trigger). The backfill has to
write their chain fields once, so it disables that trigger for the backfill only,
inside this migration's transaction: ALTER TABLE holds an exclusive lock on the table
until the migration commits, so no other session can change an event meanwhile, and
if anything fails the whole migration, the trigger included, rolls back. (Chaining the
rows in a new table and swapping it in would avoid the trigger but lose the table's
id sequence, grants and indexes for no gain.)
"""

from django.db import migrations, models

from governance.audit.chain import backfill

TABLE, TRIGGER = "analytics_accessevent", "analytics_accessevent_append_only"


def chain_existing(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    with schema_editor.connection.cursor() as cursor:
        if postgres:
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
        for name in ("Decision", "Vote", "AccessEvent"):
            backfill(apps.get_model("analytics", name), order_by=("pk",))
        if postgres:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_access_events_append_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="accessevent",
            name="chain_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="accessevent",
            name="chain_prev",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="accessevent",
            name="chain_seq",
            field=models.PositiveBigIntegerField(
                blank=True, editable=False, help_text="Place in the chain.", null=True, unique=True
            ),
        ),
        migrations.AddField(
            model_name="decision",
            name="chain_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="decision",
            name="chain_prev",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="decision",
            name="chain_seq",
            field=models.PositiveBigIntegerField(
                blank=True, editable=False, help_text="Place in the chain.", null=True, unique=True
            ),
        ),
        migrations.AddField(
            model_name="historicaldecision",
            name="chain_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="historicaldecision",
            name="chain_prev",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="historicaldecision",
            name="chain_seq",
            field=models.PositiveBigIntegerField(
                blank=True,
                db_index=True,
                editable=False,
                help_text="Place in the chain.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="historicalvote",
            name="chain_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="historicalvote",
            name="chain_prev",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="historicalvote",
            name="chain_seq",
            field=models.PositiveBigIntegerField(
                blank=True,
                db_index=True,
                editable=False,
                help_text="Place in the chain.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="vote",
            name="chain_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="vote",
            name="chain_prev",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="vote",
            name="chain_seq",
            field=models.PositiveBigIntegerField(
                blank=True, editable=False, help_text="Place in the chain.", null=True, unique=True
            ),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
    ]
