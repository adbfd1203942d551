"""Committees and rules as code: ``committee:`` and ``rule:`` documents for ``apply``."""

from __future__ import annotations

import io
import textwrap

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.models import Committee, CommitteeMembership, Purpose, Rule
from tests.factories import make_user

pytestmark = pytest.mark.django_db

COMMITTEE = textwrap.dedent(
    """\
    committee:
      slug: la-oversight
      name: Learning Analytics Oversight Committee
      quorum: 3
      rule: majority
      default: true
      members:
        - {email: chair@example.org, seat: chair}
        - {email: hr@example.org, seat: hr}
        - {email: legal@example.org, seat: legal}
        - {email: dpo@example.org, seat: data_protection}
        - {email: rep@example.org, seat: learner_representative}
    """
)

# A purpose naming the committee, in a document before it: committees apply first.
PURPOSE = textwrap.dedent(
    """\
    purpose:
      slug: wellbeing-check
      name: Wellbeing check-ins
      category: wellbeing
      expected_benefit: Students under strain are offered help early
      legal_basis: legitimate_interest
      committee: la-oversight
    """
)

RULE = textwrap.dedent(
    """\
    rule:
      slug: small-minimisation
      name: More than 5 fields needs a minimisation justification
      kind: minimisation
      severity: warn
      description: A stricter limit for wellbeing data.
      parameters: {max_fields: 5}
      enabled: true
    """
)

VALID = PURPOSE + "---\n" + COMMITTEE + "---\n" + RULE
MEMBERS = ["chair", "hr", "legal", "dpo", "rep"]


@pytest.fixture
def people():
    return {name: make_user(email=f"{name}@example.org") for name in MEMBERS + ["editor"]}


def write(tmp_path, text, name="committee.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def apply(path, *args) -> str:
    out = io.StringIO()
    call_command("apply", str(path), *args, stdout=out)
    return out.getvalue()


def line_of(text: str, marker: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    return hits[occurrence - 1]


def state() -> dict:
    """Every count a failed or repeated apply must leave as it was."""
    return {
        "committees": Committee.objects.count(),
        "memberships": CommitteeMembership.objects.count(),
        "purposes": Purpose.objects.count(),
        "rules": Rule.objects.count(),
        "committee history": Committee.history.count(),
        "membership history": CommitteeMembership.history.count(),
        "purpose history": Purpose.history.count(),
        "rule history": Rule.history.count(),
    }


def seats(committee: Committee) -> dict[str, str]:
    return {m.user.email: m.seat for m in committee.memberships.select_related("user")}


# --- creating --------------------------------------------------------------------------------


def test_apply_creates_the_committee_the_purpose_naming_it_and_the_rule(tmp_path, people):
    editor = people["editor"]

    output = apply(write(tmp_path, VALID), "--as", editor.email)

    assert "committee la-oversight: created" in output
    assert "purpose wellbeing-check: created" in output
    assert "rule small-minimisation: created" in output
    assert "3 of 3 documents changed" in output
    committee = Committee.objects.get(slug="la-oversight")
    assert (committee.name, committee.quorum, committee.rule, committee.is_default) == (
        "Learning Analytics Oversight Committee",
        3,
        "majority",
        True,
    )
    assert seats(committee) == {
        "chair@example.org": "chair",
        "hr@example.org": "hr",
        "legal@example.org": "legal",
        "dpo@example.org": "data_protection",
        "rep@example.org": "learner_representative",
    }
    assert Purpose.objects.get(slug="wellbeing-check").committee == committee
    rule = Rule.objects.get(slug="small-minimisation")
    assert (rule.kind, rule.severity, rule.parameters, rule.enabled) == (
        "minimisation",
        "warn",
        {"max_fields": 5},
        True,
    )
    assert rule.description == "A stricter limit for wellbeing data."
    # Every change is attributed to the --as login.
    assert {h.history_user for h in Committee.history.all()} == {editor}
    assert {h.history_user for h in CommitteeMembership.history.all()} == {editor}
    assert Rule.history.get(slug="small-minimisation").history_user == editor


def test_a_purpose_without_a_committee_is_left_to_the_default(tmp_path, people):
    apply(write(tmp_path, COMMITTEE + "---\n" + PURPOSE.replace("  committee: la-oversight\n", "")))

    assert Purpose.objects.get(slug="wellbeing-check").committee is None


def test_a_second_apply_changes_nothing_and_writes_no_history(tmp_path, people):
    path = write(tmp_path, VALID)
    apply(path, "--as", people["editor"].email)
    before = state()

    output = apply(path, "--as", people["editor"].email)

    assert "Nothing changed: 3 documents already up to date." in output
    assert "committee la-oversight: unchanged" in output
    assert "rule small-minimisation: unchanged" in output
    assert state() == before


# --- updating --------------------------------------------------------------------------------


def test_members_not_in_the_file_are_removed(tmp_path, people):
    path = write(tmp_path, COMMITTEE)
    apply(path)
    before = state()

    path.write_text(
        COMMITTEE.replace("    - {email: rep@example.org, seat: learner_representative}\n", ""),
        encoding="utf-8",
    )
    output = apply(path, "--as", people["editor"].email)

    assert "committee la-oversight: updated (member rep@example.org removed)" in output
    committee = Committee.objects.get()
    assert "rep@example.org" not in seats(committee)
    assert len(seats(committee)) == 4
    removal = CommitteeMembership.history.latest("history_date", "history_id")
    assert (removal.history_type, removal.user, removal.history_user) == (
        "-",
        people["rep"],
        people["editor"],
    )
    after = state()
    assert after["membership history"] == before["membership history"] + 1
    assert after["committee history"] == before["committee history"]


def test_the_chair_can_be_handed_over_and_settings_changed(tmp_path, people):
    path = write(tmp_path, COMMITTEE)
    apply(path)

    path.write_text(
        COMMITTEE.replace("chair@example.org, seat: chair", "chair@example.org, seat: hr")
        .replace("hr@example.org, seat: hr", "hr@example.org, seat: chair")
        .replace("quorum: 3", "quorum: 4")
        .replace("rule: majority", "rule: two_thirds"),
        encoding="utf-8",
    )
    output = apply(path)

    assert "committee la-oversight: updated (quorum; rule;" in output
    committee = Committee.objects.get()
    assert (committee.quorum, committee.rule) == (4, "two_thirds")
    assert seats(committee)["hr@example.org"] == "chair"
    assert seats(committee)["chair@example.org"] == "hr"


def test_a_rule_document_changes_a_default_rule(tmp_path, people):
    text = textwrap.dedent(
        """\
        rule:
          slug: special-category
          name: Special-category fields are flagged to the committee
          kind: special_category
          severity: block
        """
    )

    output = apply(write(tmp_path, text), "--as", people["dpo"].email)

    assert "rule special-category: updated (severity)" in output
    rule = Rule.objects.get(slug="special-category")
    assert rule.severity == "block"
    change = Rule.history.filter(slug="special-category").latest("history_date", "history_id")
    assert (change.history_type, change.history_user) == ("~", people["dpo"])


# --- errors: document, line and reason; nothing changes -------------------------------------


def _member(email, seat):
    return f"- {{email: {email}, seat: {seat}}}"


BAD = {
    "unknown e-mail": (
        "committee",
        (
            _member("rep@example.org", "learner_representative"),
            _member("ghost@example.org", "member"),
        ),
        "ghost@example.org",
        "unknown member 'ghost@example.org': no active login has that e-mail",
    ),
    "two chairs": (
        "committee",
        (_member("hr@example.org", "hr"), _member("hr@example.org", "chair")),
        "hr@example.org, seat: chair",
        "a committee has exactly one chair: 'hr@example.org' is a second one",
    ),
    "no chair": (
        "committee",
        (_member("chair@example.org", "chair"), _member("chair@example.org", "member")),
        "members:",
        "a committee has exactly one chair: give one member seat: chair",
    ),
    "unknown seat": (
        "committee",
        (_member("legal@example.org", "legal"), _member("legal@example.org", "treasurer")),
        "seat: treasurer",
        "unknown seat 'treasurer'; expected one of chair, hr, legal",
    ),
    "member listed twice": (
        "committee",
        (_member("legal@example.org", "legal"), _member("hr@example.org", "legal")),
        "hr@example.org, seat: legal",
        "member 'hr@example.org' is listed twice",
    ),
    "quorum of zero": ("committee", ("quorum: 3", "quorum: 0"), "quorum: 0", "quorum must be"),
    "quorum above the members": (
        "committee",
        ("quorum: 3", "quorum: 6"),
        "quorum: 6",
        "quorum 6 can never be met by 5 member(s)",
    ),
    "unknown decision rule": (
        "committee",
        ("rule: majority", "rule: plurality"),
        "rule: plurality",
        "unknown decision rule 'plurality'",
    ),
    "unknown rule kind": (
        "rule",
        ("kind: minimisation", "kind: mind_reading"),
        "kind: mind_reading",
        "unknown rule kind 'mind_reading'",
    ),
    "bad severity": (
        "rule",
        ("severity: warn", "severity: fatal"),
        "severity: fatal",
        "unknown severity 'fatal'; expected one of block, warn",
    ),
    "unknown parameter": (
        "rule",
        ("{max_fields: 5}", "{max_feilds: 5}"),
        "max_feilds",
        "Unknown parameter 'max_feilds'",
    ),
    "bad parameter value": (
        "rule",
        ("{max_fields: 5}", "{max_fields: many}"),
        "max_fields: many",
        "'max_fields' must be a whole number of at least 1",
    ),
    "enabled not a flag": (
        "rule",
        ("enabled: true", "enabled: sometimes"),
        "enabled: sometimes",
        "enabled must be true or false",
    ),
    "unknown committee on a purpose": (
        "purpose",
        ("committee: la-oversight", "committee: ethics-board"),
        "committee: ethics-board",
        "unknown committee 'ethics-board'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_document_is_located_and_nothing_is_applied(tmp_path, people, case):
    kind, (old, new), marker, reason = BAD[case]
    documents = {"purpose": PURPOSE, "committee": COMMITTEE, "rule": RULE}
    assert old in documents[kind]
    documents[kind] = documents[kind].replace(old, new, 1)
    text = "---\n".join(documents.values())
    number = list(documents).index(kind) + 1
    before = state()

    with pytest.raises(CommandError) as caught:
        apply(write(tmp_path, text), "--as", people["editor"].email)

    message = str(caught.value)
    assert "nothing changed" in message
    assert f"document {number}, line {line_of(text, marker)}: " in message
    assert reason in message
    assert state() == before
    assert not Committee.objects.exists()


def test_a_second_default_committee_is_refused(tmp_path, people):
    apply(write(tmp_path, COMMITTEE))
    other = COMMITTEE.replace("slug: la-oversight", "slug: research-ethics")
    before = state()

    with pytest.raises(CommandError) as caught:
        apply(write(tmp_path, other, "other.yaml"))

    message = str(caught.value)
    assert f"document 1, line {line_of(other, 'default: true')}: " in message
    assert "only one committee can be the default, and 'la-oversight' is" in message
    assert state() == before


def test_the_default_moves_when_the_old_one_gives_it_up_first(tmp_path, people):
    apply(write(tmp_path, COMMITTEE))
    text = (
        COMMITTEE.replace("default: true", "default: false")
        + "---\n"
        + COMMITTEE.replace("slug: la-oversight", "slug: research-ethics")
    )

    output = apply(write(tmp_path, text, "move.yaml"))

    assert "committee la-oversight: updated (default)" in output
    assert "committee research-ethics: created" in output
    assert Committee.objects.get(is_default=True).slug == "research-ethics"


def test_a_rules_kind_never_changes(tmp_path, people):
    apply(write(tmp_path, RULE))
    changed = RULE.replace("kind: minimisation", "kind: special_category").replace(
        "  parameters: {max_fields: 5}\n", ""
    )
    before = state()

    with pytest.raises(CommandError) as caught:
        apply(write(tmp_path, changed, "changed.yaml"))

    message = str(caught.value)
    assert f"line {line_of(changed, 'kind: special_category')}: " in message
    assert "a rule's kind never changes" in message
    assert state() == before
    assert Rule.objects.get(slug="small-minimisation").kind == "minimisation"
