"""The organisation's differential-privacy settings: one rule the DPO maintains.

Read by the decision (the default and the most ε a decision may give) and by the
disclosure control (what one aggregate spends, how many cells one person may count
in). A missing or disabled rule never turns the noise off: the built-in values apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.models import Rule, RuleKind

DEFAULTS = {
    "epsilon": 10.0,
    "max_epsilon": 20.0,
    "epsilon_per_query": 1.0,
    "max_cells_per_person": 5,
}


@dataclass(frozen=True)
class PrivacySettings:
    epsilon: float
    max_epsilon: float
    epsilon_per_query: float
    max_cells_per_person: int


def privacy_settings() -> PrivacySettings:
    rule = Rule.objects.filter(kind=RuleKind.PRIVACY_BUDGET, enabled=True).first()
    parameters = DEFAULTS | (rule.parameters if rule is not None else {})
    return PrivacySettings(
        epsilon=float(parameters["epsilon"]),
        max_epsilon=float(parameters["max_epsilon"]),
        epsilon_per_query=float(parameters["epsilon_per_query"]),
        max_cells_per_person=int(parameters["max_cells_per_person"]),
    )
