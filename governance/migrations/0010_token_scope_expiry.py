"""API tokens carry a scope and an expiry (issue 11).

Tokens made before this migration keep what they could do (``read-write``) and expire
90 days after the migration runs: the column default is computed once, when the
column is added, and given to every existing row (their history rows too). Schema
operations only, so PostgreSQL's append-only history triggers see no UPDATE.
"""

from django.db import migrations, models

import governance.models

SCOPES = [("read", "Read only"), ("read-write", "Read and write")]


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0009_text_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(default=governance.models.api_token_default_expiry),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(choices=SCOPES, default="read-write", max_length=10),
        ),
        migrations.AddField(
            model_name="historicalapitoken",
            name="expires_at",
            field=models.DateTimeField(default=governance.models.api_token_default_expiry),
        ),
        migrations.AddField(
            model_name="historicalapitoken",
            name="scope",
            field=models.CharField(choices=SCOPES, default="read-write", max_length=10),
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.CheckConstraint(
                condition=models.Q(("scope__in", ["read", "read-write"])),
                name="apitoken_scope_valid",
            ),
        ),
    ]
