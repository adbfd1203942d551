"""Rule evaluation: what the organisation's rules say about a request's content.

A ``Rule`` row chooses a check (its ``kind``), its severity (block or warn) and its
limits; the checks are the functions below. Evaluation is pure: it reads the
request's content and returns findings, and the services store them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from governance.models import (
    Field,
    LegalBasis,
    Purpose,
    PurposeCategory,
    Rule,
    RuleKind,
    RuleSeverity,
    Sensitivity,
)

from .models import OutputLevel


@dataclass(frozen=True)
class Content:
    """What a request asks for: the input to every rule."""

    purpose: Purpose
    fields: list[Field]
    output_level: str
    involves_model: bool = False
    automated_decision: bool = False
    human_reviewer_id: int | None = None
    minimisation_justification: str = ""


@dataclass
class Verdict:
    rule: Rule
    message: str
    fix: str
    field_names: list[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return self.rule.severity

    @property
    def blocks(self) -> bool:
        return self.rule.severity == RuleSeverity.BLOCK


def _names(fields: Iterable[Field]) -> list[str]:
    return sorted(f"{f.dataset.slug}.{f.name}" for f in fields)


def _learning_firewall(rule: Rule, content: Content):
    tags = set(rule.parameters.get("tags", ["learning"]))
    categories = set(
        rule.parameters.get(
            "categories",
            [
                PurposeCategory.PERFORMANCE_MANAGEMENT,
                PurposeCategory.RECRUITMENT,
                PurposeCategory.PAY,
            ],
        )
    )
    if content.purpose.category not in categories:
        return None
    hit = [f for f in content.fields if tags & {t.name for t in f.dataset.tags.all()}]
    if not hit:
        return None
    return Verdict(
        rule,
        f"Learning data may not serve the purpose “{content.purpose.name}” "
        f"({content.purpose.get_category_display().lower()}): "
        "learning data never informs performance management, recruitment or pay.",
        "Choose a purpose that supports learning, or remove the learning-tagged fields.",
        _names(hit),
    )


def _excluded_fields(rule: Rule, content: Content):
    hit = [f for f in content.fields if f.excluded]
    if not hit:
        return None
    return Verdict(
        rule,
        "These fields are excluded: the organisation does not use them for analytics.",
        "Remove them from the request.",
        _names(hit),
    )


def _field_purpose(rule: Rule, content: Content):
    hit = [
        f
        for f in content.fields
        if content.purpose.pk not in {p.pk for p in f.dataset.purposes.all()}
    ]
    if not hit:
        return None
    datasets = sorted({f.dataset.slug for f in hit})
    return Verdict(
        rule,
        f"The dataset(s) {', '.join(datasets)} may not serve the purpose “{content.purpose.name}”.",
        "Choose a purpose the dataset permits, or ask its steward to register this purpose.",
        _names(hit),
    )


def _special(content: Content) -> list[Field]:
    return [f for f in content.fields if f.sensitivity == Sensitivity.SPECIAL]


def _special_identified_applies(content: Content) -> bool:
    return (
        content.output_level == OutputLevel.IDENTIFIED
        and content.purpose.legal_basis != LegalBasis.CONSENT
    )


def _special_identified(rule: Rule, content: Content):
    hit = _special(content)
    if not hit or not _special_identified_applies(content):
        return None
    return Verdict(
        rule,
        "Special-category fields with identified output need a purpose based on consent.",
        "Ask for aggregate or pseudonymised output, or use a consent-based purpose.",
        _names(hit),
    )


def _special_category(rule: Rule, content: Content):
    hit = _special(content)
    if not hit or _special_identified_applies(content):
        return None
    return Verdict(
        rule,
        "The request names special-category fields (for example ethnicity, disability or "
        "health): the committee must weigh them.",
        "Keep them only if the benefit to learners needs them, and say why in the justification.",
        _names(hit),
    )


def _human_reviewer(rule: Rule, content: Content):
    if not content.automated_decision or content.human_reviewer_id:
        return None
    return Verdict(
        rule,
        "Results would decide something about individuals, and no human reviewer is named: "
        "no fully automated decision about a person.",
        "Name the person who reviews each decision, or do not use the results for "
        "decisions about individuals.",
    )


def _model_fairness(rule: Rule, content: Content):
    if not content.involves_model:
        return None
    return Verdict(
        rule,
        "A predictive model is involved: a fairness audit must be attached before approval.",
        "Plan a fairness audit across the protected attributes (four-fifths rule).",
    )


def _minimisation(rule: Rule, content: Content):
    limit = int(rule.parameters.get("max_fields", 20))
    reasons = []
    if len(content.fields) > limit:
        reasons.append(f"{len(content.fields)} fields (more than {limit})")
    by_dataset: dict = {}
    for f in content.fields:
        by_dataset.setdefault(f.dataset, set()).add(f.pk)
    for dataset, chosen in by_dataset.items():
        usable = {f.pk for f in dataset.fields.all() if not f.excluded}
        if len(usable) > 1 and usable <= chosen:
            reasons.append(f"every field of {dataset.slug}")
    if not reasons:
        return None
    given = content.minimisation_justification.strip()
    return Verdict(
        rule,
        "The request asks for "
        + " and ".join(reasons)
        + "."
        + (f" Minimisation justification: {given}" if given else ""),
        "Name only the fields the analysis needs, or explain why each is needed in the "
        "minimisation justification.",
    )


CHECKS: dict[str, Callable[[Rule, Content], Verdict | None]] = {
    RuleKind.LEARNING_FIREWALL: _learning_firewall,
    RuleKind.EXCLUDED_FIELDS: _excluded_fields,
    RuleKind.FIELD_PURPOSE: _field_purpose,
    RuleKind.SPECIAL_IDENTIFIED: _special_identified,
    RuleKind.SPECIAL_CATEGORY: _special_category,
    RuleKind.HUMAN_REVIEWER: _human_reviewer,
    RuleKind.MODEL_FAIRNESS: _model_fairness,
    RuleKind.MINIMISATION: _minimisation,
    # Not a check of a request's content: its parameters are the differential-privacy
    # settings the decision and every aggregate read (analytics.privacy).
    RuleKind.PRIVACY_BUDGET: lambda rule, content: None,
    # Not a check of a request either: whether single sign-on may create data-subject
    # logins (governance.selectors.sso_signup_allowed).
    RuleKind.SSO_SIGNUP: lambda rule, content: None,
}


def evaluate(content: Content, rules: Iterable[Rule] | None = None) -> list[Verdict]:
    """Every enabled rule's verdict on the content, blocking ones first."""
    if rules is None:
        rules = Rule.objects.filter(enabled=True)
    verdicts = [v for rule in rules if (v := CHECKS[rule.kind](rule, content)) is not None]
    verdicts.sort(key=lambda v: (not v.blocks, v.rule.slug))
    return verdicts
