"""Registry as code: ``manage.py apply FILE.yaml`` and the service behind it."""

from __future__ import annotations

import io
import textwrap

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.models import Dataset, Field, Purpose, Tag
from governance.services.apply import ApplyRejected, apply_text
from tests.factories import make_user

PURPOSE = textwrap.dedent(
    """\
    purpose:
      slug: course-improvement
      name: Course improvement
      category: course_improvement
      expected_benefit: Better course design for future cohorts
      legal_basis: legitimate_interest
    """
)

DATASET = textwrap.dedent(
    """\
    dataset:
      slug: grades
      name: Grades
      description: Final grades per module
      lawful_basis: legitimate_interest
      retention_days: 365
      status: active
      tags: [learning]
      stewards: [steward@example.org]
      purposes: [course-improvement]
      person_column: student_id
      fields:
        - {name: score, label: Score, type: integer, sensitivity: internal}
        - name: gender
          type: category
          sensitivity: personal
          values: [F, M]
          protected_attribute: true
    """
)

VALID = PURPOSE + "---\n" + DATASET


@pytest.fixture
def steward(db):
    return make_user(email="steward@example.org")


@pytest.fixture
def editor(db):
    return make_user(email="editor@example.org")


def write(tmp_path, text, name="registry.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def apply(path, *args) -> str:
    out = io.StringIO()
    call_command("apply", str(path), *args, stdout=out)
    return out.getvalue()


def line_of(text: str, marker: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``marker``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    return hits[occurrence - 1]


def registry_state() -> dict:
    """Every count a failed apply must leave as it was."""
    return {
        "purposes": Purpose.objects.count(),
        "datasets": Dataset.objects.count(),
        "fields": Field.objects.count(),
        "tags": Tag.objects.count(),
        "purpose history": Purpose.history.count(),
        "dataset history": Dataset.history.count(),
        "field history": Field.history.count(),
        "tag history": Tag.history.count(),
    }


# --- creating ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_apply_creates_purposes_datasets_and_fields(tmp_path, steward, editor):
    output = apply(write(tmp_path, VALID), "--as", editor.email)

    assert "purpose course-improvement: created" in output
    assert "dataset grades: created" in output
    assert "2 of 2 documents changed" in output

    purpose = Purpose.objects.get(slug="course-improvement")
    assert purpose.name == "Course improvement"
    assert purpose.category == "course_improvement"
    assert purpose.legal_basis == "legitimate_interest"
    assert purpose.consent_text == ""

    dataset = Dataset.objects.get(slug="grades")
    assert dataset.name == "Grades"
    assert dataset.description == "Final grades per module"
    assert dataset.retention_days == 365
    assert dataset.status == "active"
    assert dataset.person_column == "student_id"
    assert list(dataset.stewards.all()) == [steward]
    assert [t.name for t in dataset.tags.all()] == ["learning"]
    assert list(dataset.purposes.all()) == [purpose]

    score, gender = dataset.fields.order_by("position")
    assert (score.name, score.label, score.type, score.sensitivity) == (
        "score",
        "Score",
        "integer",
        "internal",
    )
    assert score.values == []
    assert not score.is_protected_attribute
    assert (gender.name, gender.type, gender.sensitivity) == ("gender", "category", "personal")
    assert gender.values == ["F", "M"]
    assert gender.is_protected_attribute

    # The changes are attributed to the --as login.
    assert Dataset.history.filter(id=dataset.pk, history_type="+").get().history_user == editor
    assert Purpose.history.get(id=purpose.pk).history_user == editor
    assert {h.history_user for h in Field.history.filter(dataset_id=dataset.pk)} == {editor}


@pytest.mark.django_db
def test_apply_the_oulad_example(steward):
    for seat in ("chair", "hr", "legal", "dpo", "rep", "committee"):
        make_user(email=f"{seat}@example.org")  # the oversight committee's members
    output = apply(settings.BASE_DIR / "docs" / "examples" / "oulad.yaml")

    assert "6 of 6 documents changed" in output
    assert set(Purpose.objects.values_list("slug", flat=True)) == {
        "course-improvement",
        "learning-support",
        "performance-review",
    }
    support = Purpose.objects.get(slug="learning-support")
    assert support.legal_basis == "consent"
    assert support.consent_text.startswith("I agree that my study activity")
    assert support.consent_version == 1
    info = Dataset.objects.get(slug="oulad-student-info")
    assert info.person_column == "id_student"
    assert info.fields.count() == 11
    assert info.fields.get(name="disability").sensitivity == "special"
    assert info.fields.get(name="imd_band").excluded
    assert Dataset.objects.get(slug="oulad-assessments").fields.count() == 4


@pytest.mark.django_db
def test_apply_service_returns_an_outcome_per_document(steward, editor):
    outcomes = apply_text(VALID, actor=editor)

    assert [(o.kind, o.key, o.action) for o in outcomes] == [
        ("purpose", "course-improvement", "created"),
        ("dataset", "grades", "created"),
    ]


# --- idempotence and updates ------------------------------------------------------------


@pytest.mark.django_db
def test_a_second_apply_changes_nothing_and_writes_no_history(tmp_path, steward, editor):
    path = write(tmp_path, VALID)
    apply(path, "--as", editor.email)
    before = registry_state()

    output = apply(path, "--as", editor.email)

    assert "Nothing changed" in output
    assert "purpose course-improvement: unchanged" in output
    assert "dataset grades: unchanged" in output
    assert "created" not in output and "updated" not in output
    assert registry_state() == before


@pytest.mark.django_db
def test_changing_one_sensitivity_updates_only_that_field(tmp_path, steward, editor):
    path = write(tmp_path, VALID)
    apply(path)  # as the system account
    dataset = Dataset.objects.get(slug="grades")
    before = registry_state()

    path.write_text(
        VALID.replace(
            "{name: score, label: Score, type: integer, sensitivity: internal}",
            "{name: score, label: Score, type: integer, sensitivity: personal}",
        ),
        encoding="utf-8",
    )
    output = apply(path, "--as", editor.email)

    assert "dataset grades: updated (field score changed)" in output
    assert "purpose course-improvement: unchanged" in output
    assert "Nothing changed" not in output
    assert dataset.fields.get(name="score").sensitivity == "personal"
    assert dataset.fields.get(name="gender").sensitivity == "personal"

    after = registry_state()
    assert after["field history"] == before["field history"] + 1
    assert {k: v for k, v in after.items() if k != "field history"} == {
        k: v for k, v in before.items() if k != "field history"
    }
    change = Field.history.latest("history_date", "history_id")
    assert change.name == "score"
    assert change.history_type == "~"
    assert change.sensitivity == "personal"
    assert change.history_user == editor


@pytest.mark.django_db
def test_apply_with_an_unknown_as_login_is_refused(tmp_path, steward):
    with pytest.raises(CommandError, match="nobody@example.org"):
        apply(write(tmp_path, VALID), "--as", "nobody@example.org")
    assert Dataset.objects.count() == 0


# --- errors: reported with document, line and reason; nothing changes --------------------


def _field_line(sensitivity="internal", type_="integer"):
    return f"{{name: score, label: Score, type: {type_}, sensitivity: {sensitivity}}}"


BAD_SECOND_DOCUMENTS = {
    "unknown sensitivity": (
        DATASET.replace(_field_line(), _field_line(sensitivity="secret")),
        "sensitivity: secret",
        "unknown sensitivity 'secret'",
    ),
    "unknown type": (
        DATASET.replace(_field_line(), _field_line(type_="text")),
        "type: text",
        "unknown type 'text'",
    ),
    "unknown key": (
        DATASET.replace("  status: active\n", "  status: active\n  owner: someone\n"),
        "owner: someone",
        "unknown key 'owner'",
    ),
    "unknown purpose": (
        DATASET.replace("purposes: [course-improvement]", "purposes: [marketing]"),
        "purposes: [marketing]",
        "unknown purpose 'marketing'",
    ),
    "unknown steward": (
        DATASET.replace("stewards: [steward@example.org]", "stewards: [ghost@example.org]"),
        "stewards: [ghost@example.org]",
        "unknown steward 'ghost@example.org'",
    ),
    "consent basis without consent text": (
        PURPOSE.replace("course-improvement", "learning-support").replace(
            "legitimate_interest", "consent"
        ),
        "legal_basis: consent",
        "consent_text is required when legal_basis is consent",
    ),
    "duplicate key": (
        DATASET.replace("  name: Grades\n", "  name: Grades\n  name: Marks\n"),
        "name: Marks",
        "key 'name' appears twice",
    ),
    "invalid YAML": (
        DATASET.replace("  name: Grades\n", "  name: Grades: extra\n"),
        "name: Grades: extra",
        "not valid YAML",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_SECOND_DOCUMENTS))
def test_a_bad_second_document_is_reported_and_nothing_is_applied(tmp_path, steward, case):
    second, marker, reason = BAD_SECOND_DOCUMENTS[case]
    text = PURPOSE + "---\n" + second
    path = write(tmp_path, text)
    before = registry_state()

    with pytest.raises(CommandError) as caught:
        apply(path, "--as", steward.email)

    message = str(caught.value)
    assert "nothing changed" in message
    assert f"document 2, line {line_of(text, marker)}: " in message
    assert reason in message
    # The valid first document was not applied either: all or nothing.
    assert registry_state() == before
    assert not Purpose.objects.filter(slug="course-improvement").exists()


@pytest.mark.django_db
def test_a_bad_file_leaves_an_applied_registry_as_it_was(tmp_path, steward, editor):
    apply(write(tmp_path, VALID))
    before = registry_state()
    changed_but_bad = (
        PURPOSE.replace("Better course design", "Better design")
        + "---\n"
        + DATASET.replace(_field_line(), _field_line(sensitivity="special")).replace(
            "retention_days: 365", "retention_days: soon"
        )
    )

    with pytest.raises(CommandError) as caught:
        apply(write(tmp_path, changed_but_bad, "bad.yaml"), "--as", editor.email)

    assert f"line {line_of(changed_but_bad, 'retention_days: soon')}" in str(caught.value)
    assert "retention_days must be a whole number" in str(caught.value)
    assert registry_state() == before
    assert Purpose.objects.get().expected_benefit == "Better course design for future cohorts"
    assert Field.objects.get(name="score").sensitivity == "internal"


@pytest.mark.django_db
def test_the_service_rejects_with_every_error_located(steward):
    text = (
        PURPOSE
        + "---\n"
        + DATASET.replace(_field_line(), _field_line(sensitivity="secret"))
        + "---\n"
        + PURPOSE.replace("course-improvement", "wellbeing-check").replace(
            "legitimate_interest", "consent"
        )
    )

    with pytest.raises(ApplyRejected) as caught:
        apply_text(text, actor=steward)

    located = sorted((e.document, e.line) for e in caught.value.errors)
    assert located == [
        (2, line_of(text, "sensitivity: secret")),
        (3, line_of(text, "legal_basis: consent")),
    ]
    assert registry_state()["purposes"] == 0


@pytest.mark.django_db
def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        apply(tmp_path / "missing.yaml")
