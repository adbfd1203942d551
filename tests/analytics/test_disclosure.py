"""The disclosure control's parts: the noise is OpenDP's at the stated scale, no setting
turns it off, and the registry declares what aggregates may group by and clamp to."""

from __future__ import annotations

import math

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from analytics import disclosure
from analytics.privacy import privacy_settings
from governance.models import Field, FieldType, Rule, RuleKind
from governance.services import registry
from tests.analytics.factories import make_oulad
from tests.factories import make_user

DRAWS = 200_000


def discrete_laplace_variance(scale: float) -> float:
    p = math.exp(-1 / scale)
    return 2 * p / (1 - p) ** 2


def test_count_noise_spread_matches_the_mechanisms_stated_scale():
    """OpenDP's sampler is seeded from the operating system and cannot be fixed (by
    design: a settable seed would be a way to turn the noise off). The draws are many
    enough that a false failure is far rarer than one in a billion: the sample variance's
    relative error is about sqrt(5 / n) = 0.5%, against a 3% tolerance."""
    noise = disclosure.plan_noise(disclosure.Query([], None), epsilon=0.5, max_cells_per_person=5)
    assert noise.count_sensitivity == 1  # one cell: a person counts once
    assert noise.count_scale == pytest.approx(2.0, rel=1e-6)  # sensitivity / ε
    draws, _ = disclosure.add_noise(noise, [0] * DRAWS, None)
    draws = np.array(draws, dtype=float)
    assert abs(draws.mean()) < 0.05
    assert draws.var() == pytest.approx(discrete_laplace_variance(noise.count_scale), rel=0.03)
    inside = (np.abs(draws) <= noise.count_margin()).mean()
    assert 0.95 <= inside <= 0.965  # the stated 95% interval holds, and is not loose


def test_sum_noise_spread_matches_the_stated_scale():
    measured = Field(name="score", type=FieldType.DECIMAL, minimum=0, maximum=100)
    grouped = Field(name="result", type=FieldType.CATEGORY, values=["Pass", "Fail"])
    query = disclosure.Query([grouped], measured)
    noise = disclosure.plan_noise(query, epsilon=1.0, max_cells_per_person=5)
    # Three cells (two values and "Not recorded"): a person counts in at most three.
    assert noise.count_sensitivity == 3
    assert noise.sum_sensitivity == 300
    assert noise.sum_scale == pytest.approx(300 / 0.5, rel=1e-3)  # half the ε on the sums
    _, sums = disclosure.add_noise(noise, [0] * 10, [0.0] * DRAWS)
    sums = np.array(sums)
    assert sums.var() == pytest.approx(2 * noise.sum_scale**2, rel=0.03)


@pytest.mark.django_db
def test_no_setting_turns_the_noise_off():
    rule = Rule.objects.get(kind=RuleKind.PRIVACY_BUDGET)
    dpo = make_user()
    for parameters in (
        {"epsilon_per_query": 0},
        {"epsilon_per_query": -1},
        {"epsilon": 0},
        {"max_cells_per_person": 0},
        {"noise": False},
    ):
        with pytest.raises(ValidationError):
            registry.rule_update(actor=dpo, rule=rule, parameters=parameters)
    # A disabled rule, or none at all, leaves the built-in settings in force.
    registry.rule_update(actor=dpo, rule=rule, enabled=False)
    assert privacy_settings().epsilon_per_query == 1.0
    Rule.objects.filter(pk=rule.pk).delete()
    assert privacy_settings().epsilon_per_query == 1.0
    noise = disclosure.plan_noise(disclosure.Query([], None), 1.0, 5)
    draws, _ = disclosure.add_noise(noise, [1000] * 1000, None)
    assert len(set(draws)) > 10


@pytest.mark.django_db
def test_the_registry_declares_groups_and_bounds_and_refuses_nonsense():
    oulad = make_oulad()
    credits = oulad.field("studied_credits")
    assert disclosure.declared_groups(credits) == ["0 to 59", "60 to 119", "120 or more"] + [
        "Not recorded"
    ]
    one_each = Field(name="n", type=FieldType.INTEGER, bins=[0, 1, 2])
    assert disclosure.declared_groups(one_each)[:3] == ["0", "1", "2 or more"]
    decimal = Field(name="s", type=FieldType.DECIMAL, bins=[0, 40.5])
    assert disclosure.declared_groups(decimal)[:2] == ["0 to under 40.5", "40.5 or more"]
    assert disclosure.declared_groups(Field(name="b", type=FieldType.BOOLEAN))[:2] == [
        "Yes",
        "No",
    ]
    with pytest.raises(disclosure.BadAggregate, match="Region has no declared groups"):
        disclosure.declared_groups(oulad.field("region"))

    steward = oulad.steward
    for changes, message in [
        ({"bins": [60, 0]}, "rise"),
        ({"bins": [0, 0.5]}, "whole numbers"),
        ({"minimum": 10, "maximum": 5}, "minimum must not be above"),
        ({"minimum": 100, "bins": [0, 60]}, "within the minimum and maximum"),
    ]:
        with pytest.raises(ValidationError, match=message):
            registry.field_update(actor=steward, field=oulad.field("studied_credits"), **changes)
    with pytest.raises(ValidationError, match="Only a numeric field"):
        registry.field_update(actor=steward, field=oulad.field("region"), minimum=0)
