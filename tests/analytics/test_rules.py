"""The default rules: each fires when it should and only then, and says how to fix it."""

from __future__ import annotations

import pytest

from analytics import services
from analytics.models import Finding, RequestStatus
from governance.models import Rule
from governance.services import registry
from tests.factories import make_dataset, make_purpose, make_user

from .factories import (
    default_rules,
    make_analyst,
    make_board,
    make_dpo,
    make_oulad,
    make_ready_request,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rules():
    return default_rules()


@pytest.fixture
def oulad(rules):
    return make_oulad()


def preview(oulad, *names, purpose=None, **content) -> dict:
    """{rule slug: verdict} for a draft naming these fields of the OULAD-like dataset."""
    found = services.findings_preview(
        purpose=purpose or oulad.purpose, fields=oulad.fields(*names), **content
    )
    return {v.rule.slug: v for v in found}


def qualified(oulad, *names) -> list[str]:
    return sorted(f"{oulad.dataset.slug}.{n}" for n in names)


def permit(oulad, purpose) -> None:
    registry.dataset_update(
        actor=oulad.steward, dataset=oulad.dataset, purposes=[oulad.purpose, purpose]
    )


# --- the firewall between learning and performance --------------------------------------


@pytest.mark.parametrize("category", ["performance_management", "recruitment", "pay"])
def test_learning_data_never_serves_performance_recruitment_or_pay(oulad, category):
    purpose = make_purpose(oulad.steward, name="Annual appraisal", category=category)
    permit(oulad, purpose)  # even a dataset that lists the purpose cannot serve it

    found = preview(oulad, "code_module", "final_result", purpose=purpose)

    firewall = found["learning-firewall"]
    assert firewall.blocks
    assert firewall.rule.name.startswith("Learning data never serves performance")
    assert firewall.field_names == qualified(oulad, "code_module", "final_result")
    assert "Annual appraisal" in firewall.message
    assert "Choose a purpose that supports learning" in firewall.fix
    assert "field-purpose" not in found


def test_the_firewall_leaves_learning_purposes_and_non_learning_data_alone(oulad):
    assert "learning-firewall" not in preview(oulad, "code_module", "final_result")

    hr_steward = make_user("Data steward")
    appraisal = make_purpose(hr_steward, category="performance_management")
    hr_data = make_dataset(
        hr_steward,
        fields=[("grade", "category", "internal")],
        tags=["hr"],
        purposes=[appraisal],
    )
    found = services.findings_preview(
        purpose=appraisal, fields=list(hr_data.fields.all()), output_level="aggregate"
    )
    assert found == []


# --- minimisation of fields --------------------------------------------------------------


def test_an_excluded_field_blocks_and_is_named(oulad):
    found = preview(oulad, "code_module", "imd_band")

    excluded = found["excluded-fields"]
    assert excluded.blocks
    assert excluded.field_names == qualified(oulad, "imd_band")
    assert excluded.fix == "Remove them from the request."
    assert "excluded-fields" not in preview(oulad, "code_module", "gender")


def test_a_field_serves_only_the_purposes_its_dataset_permits(oulad):
    elsewhere = make_purpose(oulad.steward, name="Timetabling")

    found = preview(oulad, "code_module", "region", purpose=elsewhere)

    field_purpose = found["field-purpose"]
    assert field_purpose.blocks
    assert field_purpose.field_names == qualified(oulad, "code_module", "region")
    assert oulad.dataset.slug in field_purpose.message and "Timetabling" in field_purpose.message
    assert "ask its steward to register this purpose" in field_purpose.fix

    permit(oulad, elsewhere)
    assert "field-purpose" not in preview(oulad, "code_module", "region", purpose=elsewhere)


def test_more_than_twenty_fields_asks_for_a_minimisation_justification(oulad):
    steward = oulad.steward
    wide = make_dataset(
        steward,
        fields=[(f"item_{i:02}", "integer", "internal") for i in range(25)],
        purposes=[oulad.purpose],
    )
    fields = list(wide.fields.order_by("position"))

    twenty_one = services.findings_preview(
        purpose=oulad.purpose, fields=fields[:21], output_level="aggregate"
    )
    twenty = services.findings_preview(
        purpose=oulad.purpose, fields=fields[:20], output_level="aggregate"
    )

    assert [(v.rule.slug, v.blocks) for v in twenty_one] == [("minimisation", False)]
    assert "21 fields (more than 20)" in twenty_one[0].message
    assert "minimisation justification" in twenty_one[0].fix
    assert twenty == []


def test_every_field_of_a_dataset_asks_for_a_minimisation_justification(oulad):
    usable = [f.name for f in oulad.dataset.fields.all() if not f.excluded]

    every = preview(oulad, *usable, minimisation_justification="A whole-cohort profile.")
    all_but_one = preview(oulad, *usable[:-1])

    minimisation = every["minimisation"]
    assert not minimisation.blocks
    assert f"every field of {oulad.dataset.slug}" in minimisation.message
    assert "Minimisation justification: A whole-cohort profile." in minimisation.message
    assert "minimisation" not in all_but_one


# --- special categories ------------------------------------------------------------------


def test_special_category_identified_without_consent_blocks(oulad):
    found = preview(oulad, "code_module", "disability", output_level="identified")

    blocking = found["special-category-identified"]
    assert blocking.blocks
    assert blocking.field_names == qualified(oulad, "disability")
    assert "consent" in blocking.message
    assert "aggregate or pseudonymised output" in blocking.fix
    # The block says it all: the warning does not repeat it.
    assert "special-category" not in found


@pytest.mark.parametrize(
    ("output_level", "legal_basis"),
    [
        ("identified", "consent"),
        ("pseudonymised", "legitimate_interest"),
        ("aggregate", "legitimate_interest"),
    ],
)
def test_special_category_otherwise_warns(rules, output_level, legal_basis):
    consent = {"consent_text": "I agree."} if legal_basis == "consent" else {}
    oulad = make_oulad(legal_basis=legal_basis, **consent)

    found = preview(oulad, "code_module", "disability", output_level=output_level)

    assert "special-category-identified" not in found
    warning = found["special-category"]
    assert not warning.blocks
    assert warning.field_names == qualified(oulad, "disability")
    assert warning.fix.startswith("Keep them only if the benefit to learners needs them")


def test_no_special_category_field_no_special_finding(oulad):
    found = preview(oulad, "code_module", "gender", output_level="identified")

    assert "special-category" not in found
    assert "special-category-identified" not in found


# --- people decide; models are audited -------------------------------------------------


def test_an_automated_decision_without_a_human_reviewer_blocks(oulad):
    reviewer = make_user()

    without = preview(oulad, "code_module", automated_decision=True)
    with_reviewer = preview(oulad, "code_module", automated_decision=True, human_reviewer=reviewer)
    no_decision = preview(oulad, "code_module")

    finding = without["human-reviewer"]
    assert finding.blocks
    assert "no fully automated decision about a person" in finding.message
    assert finding.fix.startswith("Name the person who reviews each decision")
    assert "human-reviewer" not in with_reviewer
    assert "human-reviewer" not in no_decision


def test_a_model_warns_that_a_fairness_audit_is_needed(oulad):
    found = preview(oulad, "code_module", involves_model=True)

    warning = found["model-fairness-audit"]
    assert not warning.blocks
    assert "fairness audit" in warning.message
    assert "four-fifths" in warning.fix
    assert "model-fairness-audit" not in preview(oulad, "code_module")


# --- findings are stored with the request ---------------------------------------------------


def test_findings_are_stored_naming_the_rule_the_fields_and_the_fix(oulad):
    analyst = make_analyst()

    request = make_ready_request(
        analyst,
        oulad,
        fields=oulad.fields("code_module", "imd_band", "disability"),
        output_level="identified",
    )

    stored = {f.rule.slug: f for f in Finding.objects.filter(request=request)}
    assert set(stored) == {"excluded-fields", "special-category-identified"}
    excluded = stored["excluded-fields"]
    assert (excluded.round, excluded.severity) == (1, "block")
    assert excluded.field_names == qualified(oulad, "imd_band")
    assert excluded.fix == "Remove them from the request."
    assert stored["special-category-identified"].field_names == qualified(oulad, "disability")


def test_a_blocked_request_cannot_be_submitted_and_stays_a_draft(oulad):
    make_board()
    analyst = make_analyst()
    request = make_ready_request(analyst, oulad, fields=oulad.fields("code_module", "imd_band"))

    with pytest.raises(services.RequestBlocked) as caught:
        services.request_submit(actor=analyst, request=request)

    assert [f.rule.slug for f in caught.value.findings] == ["excluded-fields"]
    assert "excluded" in str(caught.value)
    request.refresh_from_db()
    assert (request.status, request.round) == (RequestStatus.DRAFT, 0)
    assert not request.versions.exists()


# --- the DPO maintains the rules ------------------------------------------------------------


def test_a_disabled_rule_does_not_fire(oulad, rules):
    dpo = make_dpo()
    assert "model-fairness-audit" in preview(oulad, "code_module", involves_model=True)

    registry.rule_update(actor=dpo, rule=rules["model-fairness-audit"], enabled=False)

    assert "model-fairness-audit" not in preview(oulad, "code_module", involves_model=True)


def test_a_dpo_raising_a_rules_severity_changes_the_verdict(oulad, rules):
    make_board()
    dpo = make_dpo()
    analyst = make_analyst()
    fields = oulad.fields("code_module", "disability")
    before = make_ready_request(analyst, oulad, fields=fields)
    services.request_submit(actor=analyst, request=before)  # a warning does not block

    registry.rule_update(actor=dpo, rule=rules["special-category"], severity="block")
    after = make_ready_request(analyst, oulad, fields=fields)

    with pytest.raises(services.RequestBlocked) as caught:
        services.request_submit(actor=analyst, request=after)
    assert [f.rule.slug for f in caught.value.findings] == ["special-category"]
    after.refresh_from_db()
    assert after.status == RequestStatus.DRAFT
    before.refresh_from_db()
    assert before.status == RequestStatus.SUBMITTED
    change = Rule.history.filter(slug="special-category").latest("history_date", "history_id")
    assert (change.severity, change.history_user) == ("block", dpo)
