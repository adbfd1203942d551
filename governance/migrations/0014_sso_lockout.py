"""Single sign-on and lockout: the audit trail of sign-ins, lockouts and unlocks
(``AccountEvent``, append-only and hash-chained like the access log), and the DPO's rule
on whether single sign-on may create data-subject logins (off until the DPO turns it on).

The rule is created idempotently: one that exists (by slug) is left as the DPO set it.
"""

import django.db.models.deletion
import django.utils.timezone
import simple_history.models
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

from governance.audit.chain import allow_changes, refuse_changes

SLUG = "sso-signup"
NAME = "Single sign-on may create a data-subject login for a new verified address"
DESCRIPTION = (
    "Enabled: someone whose organisation account is unknown to Custos, with an e-mail "
    "address the provider has verified, gets a login with no roles and the default "
    "clearance, linked to the person with that address. Disabled: they are refused. "
    'domains: if given, only addresses in these domains (e.g. ["example.org"]).'
)
APPEND_ONLY = ["governance_accountevent", "governance_historicalaccountevent"]


def create_rules(apps, schema_editor):
    Rule = apps.get_model("governance", "Rule")
    HistoricalRule = apps.get_model("governance", "HistoricalRule")
    rule, created = Rule.objects.get_or_create(
        slug=SLUG,
        defaults={
            "name": NAME,
            "kind": "sso_signup",
            "severity": "block",
            "description": DESCRIPTION,
            "parameters": {},
            "enabled": False,
        },
    )
    if created:
        HistoricalRule.objects.create(
            id=rule.id,
            slug=SLUG,
            name=NAME,
            kind="sso_signup",
            severity="block",
            description=DESCRIPTION,
            parameters={},
            enabled=False,
            history_date=timezone.now(),
            history_type="+",
            history_change_reason="default rule (migration)",
        )


def append_only(apps, schema_editor):
    refuse_changes(schema_editor, APPEND_ONLY)


def append_only_undo(apps, schema_editor):
    allow_changes(schema_editor, APPEND_ONLY)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0013_job_claims"),
    ]

    operations = [
        migrations.AlterField(
            model_name="historicalrule",
            name="kind",
            field=models.CharField(
                choices=[
                    ("learning_firewall", "Learning data never serves performance decisions"),
                    ("excluded_fields", "Excluded fields may not be requested"),
                    ("field_purpose", "A field serves only its dataset's purposes"),
                    ("special_identified", "Special-category fields, identified, need consent"),
                    ("special_category", "Special-category fields are flagged"),
                    ("human_reviewer", "Decisions about individuals need a human reviewer"),
                    ("model_fairness", "Models need a fairness audit before approval"),
                    ("minimisation", "Many or all fields need a minimisation justification"),
                    ("privacy_budget", "Aggregates are released under differential privacy"),
                    ("sso_signup", "Single sign-on may create data-subject logins"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="rule",
            name="kind",
            field=models.CharField(
                choices=[
                    ("learning_firewall", "Learning data never serves performance decisions"),
                    ("excluded_fields", "Excluded fields may not be requested"),
                    ("field_purpose", "A field serves only its dataset's purposes"),
                    ("special_identified", "Special-category fields, identified, need consent"),
                    ("special_category", "Special-category fields are flagged"),
                    ("human_reviewer", "Decisions about individuals need a human reviewer"),
                    ("model_fairness", "Models need a fairness audit before approval"),
                    ("minimisation", "Many or all fields need a minimisation justification"),
                    ("privacy_budget", "Aggregates are released under differential privacy"),
                    ("sso_signup", "Single sign-on may create data-subject logins"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="HistoricalAccountEvent",
            fields=[
                (
                    "id",
                    models.BigIntegerField(
                        auto_created=True, blank=True, db_index=True, verbose_name="ID"
                    ),
                ),
                (
                    "chain_seq",
                    models.PositiveBigIntegerField(
                        blank=True,
                        db_index=True,
                        editable=False,
                        help_text="Place in the chain.",
                        null=True,
                    ),
                ),
                (
                    "chain_prev",
                    models.CharField(blank=True, default="", editable=False, max_length=64),
                ),
                (
                    "chain_hash",
                    models.CharField(blank=True, default="", editable=False, max_length=64),
                ),
                (
                    "event",
                    models.CharField(
                        choices=[
                            ("signed_in", "Signed in"),
                            ("sso_refused", "Single sign-on refused"),
                            ("locked_out", "Sign-in locked after failed attempts"),
                            ("unlocked", "Sign-in unlocked by an administrator"),
                        ],
                        max_length=16,
                    ),
                ),
                ("at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                (
                    "email",
                    models.EmailField(blank=True, max_length=254, verbose_name="e-mail address"),
                ),
                (
                    "ip_address",
                    models.GenericIPAddressField(
                        blank=True, null=True, verbose_name="network address"
                    ),
                ),
                (
                    "method",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("password", "Password"),
                            ("sso", "Single sign-on"),
                            ("other", "Other"),
                        ],
                        max_length=16,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=300)),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.CharField(max_length=100, null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "history_user",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "historical account event",
                "verbose_name_plural": "historical account events",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="AccountEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "chain_seq",
                    models.PositiveBigIntegerField(
                        blank=True,
                        editable=False,
                        help_text="Place in the chain.",
                        null=True,
                        unique=True,
                    ),
                ),
                (
                    "chain_prev",
                    models.CharField(blank=True, default="", editable=False, max_length=64),
                ),
                (
                    "chain_hash",
                    models.CharField(blank=True, default="", editable=False, max_length=64),
                ),
                (
                    "event",
                    models.CharField(
                        choices=[
                            ("signed_in", "Signed in"),
                            ("sso_refused", "Single sign-on refused"),
                            ("locked_out", "Sign-in locked after failed attempts"),
                            ("unlocked", "Sign-in unlocked by an administrator"),
                        ],
                        max_length=16,
                    ),
                ),
                ("at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                (
                    "email",
                    models.EmailField(blank=True, max_length=254, verbose_name="e-mail address"),
                ),
                (
                    "ip_address",
                    models.GenericIPAddressField(
                        blank=True, null=True, verbose_name="network address"
                    ),
                ),
                (
                    "method",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("password", "Password"),
                            ("sso", "Single sign-on"),
                            ("other", "Other"),
                        ],
                        max_length=16,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=300)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="account_events",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [models.Index(fields=["event", "-at"], name="account_event_kind_at")],
            },
        ),
        migrations.RunPython(append_only, append_only_undo),
        migrations.RunPython(create_rules, migrations.RunPython.noop),
    ]
