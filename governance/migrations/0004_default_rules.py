"""The rules every installation starts with: principles 2-6 of the ethics policy.

Idempotent: a rule that exists (by slug) is left as the DPO has set it.
"""

from django.db import migrations

DEFAULT_RULES = [
    (
        "learning-firewall",
        "Learning data never serves performance management, recruitment or pay",
        "learning_firewall",
        "block",
        {
            "tags": ["learning"],
            "categories": ["performance_management", "recruitment", "pay"],
        },
    ),
    ("excluded-fields", "Excluded fields may not be requested", "excluded_fields", "block", {}),
    (
        "field-purpose",
        "A field may serve only the purposes its dataset permits",
        "field_purpose",
        "block",
        {},
    ),
    (
        "special-category-identified",
        "Special-category fields with identified output need a consent-based purpose",
        "special_identified",
        "block",
        {},
    ),
    (
        "special-category",
        "Special-category fields are flagged to the committee",
        "special_category",
        "warn",
        {},
    ),
    (
        "human-reviewer",
        "Results that decide about individuals need a named human reviewer",
        "human_reviewer",
        "block",
        {},
    ),
    (
        "model-fairness-audit",
        "A request involving a model carries a fairness audit before approval",
        "model_fairness",
        "warn",
        {},
    ),
    (
        "minimisation",
        "More than 20 fields, or every field of a dataset, needs a minimisation justification",
        "minimisation",
        "warn",
        {"max_fields": 20},
    ),
]


def create_rules(apps, schema_editor):
    Rule = apps.get_model("governance", "Rule")
    HistoricalRule = apps.get_model("governance", "HistoricalRule")
    for slug, name, kind, severity, parameters in DEFAULT_RULES:
        rule, created = Rule.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "kind": kind, "severity": severity, "parameters": parameters},
        )
        if created:
            HistoricalRule.objects.create(
                id=rule.id,
                slug=slug,
                name=name,
                kind=kind,
                severity=severity,
                description="",
                parameters=parameters,
                enabled=True,
                history_date=rule_history_date(),
                history_type="+",
                history_change_reason="default rule (migration)",
            )


def rule_history_date():
    from django.utils import timezone

    return timezone.now()


class Migration(migrations.Migration):
    dependencies = [("governance", "0003_committees_rules_notifications")]

    operations = [migrations.RunPython(create_rules, migrations.RunPython.noop)]
