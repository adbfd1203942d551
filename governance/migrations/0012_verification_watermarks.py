"""Each verification records every protected table's row count and highest id, so the
next one notices a table that lost rows. On PostgreSQL a finished verification cannot
be changed or deleted (a verification is a job that changes while it runs), so the
watermarks cannot be edited away."""

from django.db import migrations, models

from governance.audit.chain import allow_changes_once_finished, refuse_changes_once_finished

TABLE = "governance_auditverification"


def append_only(apps, schema_editor):
    refuse_changes_once_finished(schema_editor, TABLE)


def allow(apps, schema_editor):
    allow_changes_once_finished(schema_editor, TABLE)


class Migration(migrations.Migration):
    dependencies = [("governance", "0011_refuse_truncate")]

    operations = [
        migrations.AddField(
            model_name="auditverification",
            name="watermarks",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='Each protected table as seen: {table: {"rows": n, "max_id": m}}; '
                "the next verification fails if a table holds fewer of these rows.",
            ),
        ),
        migrations.RunPython(append_only, allow),
    ]
