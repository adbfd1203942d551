"""Access events are append-only: on PostgreSQL a trigger refuses UPDATE and DELETE
on the events and their subjects. Also gives every existing grant its own key."""

import secrets

from django.db import migrations

TABLES = ["analytics_accessevent", "analytics_accesseventsubject"]

CREATE = """
CREATE OR REPLACE FUNCTION custos_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'access events are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    Grant = apps.get_model("analytics", "Grant")
    for grant in Grant.objects.all():
        grant.pseudonym_key = secrets.token_bytes(32)
        grant.save(update_fields=["pseudonym_key"])
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # No parameters: the function body's '%' placeholders belong to plpgsql.
        cursor.execute(CREATE)
        for table in TABLES:
            cursor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION custos_refuse_change()"
            )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")


class Migration(migrations.Migration):
    dependencies = [("analytics", "0002_access_events")]

    operations = [migrations.RunPython(forwards, backwards)]
