"""The organisation's differential-privacy settings, as a rule the DPO maintains.

Idempotent: a rule that exists (by slug) is left as the DPO has set it.
"""

from django.db import migrations
from django.utils import timezone

SLUG = "privacy-budget"
NAME = "Aggregates are released under differential privacy, within a budget per decision"
DESCRIPTION = (
    "epsilon: the budget (ε) a decision gives by default; max_epsilon: the most a "
    "decision may give; epsilon_per_query: what one aggregate spends; "
    "max_cells_per_person: how many cells of one aggregate a person may count in."
)
PARAMETERS = {
    "epsilon": 10.0,
    "max_epsilon": 20.0,
    "epsilon_per_query": 1.0,
    "max_cells_per_person": 5,
}


def create_rules(apps, schema_editor):
    Rule = apps.get_model("governance", "Rule")
    HistoricalRule = apps.get_model("governance", "HistoricalRule")
    rule, created = Rule.objects.get_or_create(
        slug=SLUG,
        defaults={
            "name": NAME,
            "kind": "privacy_budget",
            "severity": "block",
            "description": DESCRIPTION,
            "parameters": PARAMETERS,
        },
    )
    if created:
        HistoricalRule.objects.create(
            id=rule.id,
            slug=SLUG,
            name=NAME,
            kind="privacy_budget",
            severity="block",
            description=DESCRIPTION,
            parameters=PARAMETERS,
            enabled=True,
            history_date=timezone.now(),
            history_type="+",
            history_change_reason="default rule (migration)",
        )


class Migration(migrations.Migration):
    dependencies = [("governance", "0007_field_bounds_groups_privacy_rule")]

    operations = [migrations.RunPython(create_rules, migrations.RunPython.noop)]
