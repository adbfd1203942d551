"""Acceptance: aggregates on the real OULAD student table, under differential privacy.

The exact counts the database computes before the noise match an independent pandas
computation cell by cell; every answer lists exactly the declared groups; large cells
stay close to the truth; a repeated question costs nothing and returns the same answer;
the budget runs out with a clear refusal; and the differencing attack that recovered
small cells from suppressed tables no longer does.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command

from analytics import access, disclosure
from analytics.models import AccessEvent, AggregateRelease, Grant
from governance.models import Clearance, Dataset, Purpose, Role, User
from governance.services import registry
from tests.analytics.factories import Oulad, approve, make_analyst, make_board, make_ready_request
from tests.factories import make_user

STUDENT_INFO = settings.BASE_DIR.parent / "shared" / "data" / "oulad" / "studentInfo.csv"
FIELDS = (
    "code_module",
    "code_presentation",
    "gender",
    "age_band",
    "final_result",
    "studied_credits",
)
GROUPINGS = [
    ("code_module",),
    ("code_module", "gender"),
    ("code_presentation", "age_band", "final_result"),
    ("studied_credits",),
    ("code_module", "studied_credits"),
]
# Where studied_credits' declared groups start (docs/examples/oulad.yaml), and its bounds.
CREDIT_GROUPS = [0, 60, 120, 180, 240]
CREDIT_BOUNDS = (0, 660)
MAX_CELLS_PER_PERSON = 5


def register_and_load() -> Oulad:
    """docs/examples/oulad.yaml applied (its committee's logins exist first), then the
    whole studentInfo.csv imported, as a steward would."""
    steward = make_user(Role.STEWARD, email="steward@example.org")
    for seat in ("chair", "hr", "legal", "dpo", "rep", "committee"):
        make_user(email=f"{seat}@example.org")
    yaml = settings.BASE_DIR / "docs" / "examples" / "oulad.yaml"
    call_command("apply", str(yaml), "--as", steward.email, stdout=io.StringIO())
    call_command(
        "import_records",
        "oulad-student-info",
        str(STUDENT_INFO),
        "--as",
        steward.email,
        stdout=io.StringIO(),
    )
    dataset = Dataset.objects.get(slug="oulad-student-info")
    return Oulad(dataset, steward, Purpose.objects.get(slug="course-improvement"))


def approved_grant(oulad: Oulad, board, analyst, min_cohort: int, fields=FIELDS) -> Grant:
    request = make_ready_request(analyst, oulad, fields=oulad.fields(*fields))
    approve(request, oulad, board, min_cohort=min_cohort)
    return Grant.objects.get(request=request)


@pytest.fixture
def oulad_grants(db):
    """The OULAD table and a committee that approves; ``grant(k)`` makes a fresh grant
    with the default budget, for a personal-clearance analyst."""
    oulad = register_and_load()
    board = make_board(is_default=False)
    registry.purpose_update(actor=oulad.steward, purpose=oulad.purpose, committee=board.committee)
    analyst = make_analyst(clearance=Clearance.PERSONAL)

    def grant(k: int = 10, fields=FIELDS):
        made = approved_grant(oulad, board, analyst, k, fields)
        user = User.objects.get(pk=analyst.pk)
        return access.grant_scope(user=user, grant=made)

    return grant


# --- the independent computation ----------------------------------------------------------


def read_csv() -> pd.DataFrame:
    frame = pd.read_csv(STUDENT_INFO, dtype=str, keep_default_na=False)
    frame["studied_credits"] = frame["studied_credits"].astype(int)
    frame["row"] = range(len(frame))  # the file's order is the records' order
    return frame


def group_index(frame: pd.DataFrame, name: str, scope) -> pd.Series:
    """The declared group of each row, as an index into the field's declared groups."""
    if name == "studied_credits":
        edges = CREDIT_GROUPS[1:]
        return frame[name].apply(lambda v: sum(1 for edge in edges if v >= edge))
    values = scope.field(name).values
    return frame[name].map({v: i for i, v in enumerate(values)})


def expected_exact(frame: pd.DataFrame, scope, group_by, measure: str) -> dict:
    """{cell: (people, sum)}: each person's cells (earliest records first, at most five),
    the person's mean of the clamped value in each, then people and sums per cell."""
    cells = frame.assign(**{f"g{i}": group_index(frame, n, scope) for i, n in enumerate(group_by)})
    names = [f"g{i}" for i in range(len(group_by))]
    cells["x"] = cells["studied_credits"].clip(*CREDIT_BOUNDS).astype(float)
    per_person = (
        cells.groupby(["id_student", *names], sort=False)
        .agg(first=("row", "min"), v=("x", "mean"))
        .reset_index()
        .sort_values(["id_student", "first"])
    )
    per_person = per_person[per_person.groupby("id_student").cumcount() < MAX_CELLS_PER_PERSON]
    if not names:
        people, total = len(per_person), per_person["v"].sum()
        return {(): (people, total if measure != "count" else 0.0)}
    grouped = per_person.groupby(names)
    out = {}
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        total = group["v"].sum() if measure != "count" else 0.0
        out[tuple(int(k) for k in key)] = (len(group), float(total))
    return out


def true_people(frame: pd.DataFrame, scope, group_by) -> dict:
    """{labels: distinct people} per declared cell, the truth an analyst wants."""
    labels = {n: disclosure.declared_groups(scope.field(n)) for n in group_by}
    keyed = frame.assign(**{f"g{i}": group_index(frame, n, scope) for i, n in enumerate(group_by)})
    counts = keyed.groupby([f"g{i}" for i in range(len(group_by))])["id_student"].nunique()
    out = {}
    for key, people in counts.items():
        key = key if isinstance(key, tuple) else (key,)
        out[tuple(labels[n][int(i)] for n, i in zip(group_by, key, strict=True))] = int(people)
    return out


# --- the tests ----------------------------------------------------------------------------


def test_exact_counts_before_the_noise_match_pandas_cell_by_cell(oulad_grants):
    scope = oulad_grants()
    frame = read_csv()
    for group_by in [(), *GROUPINGS]:
        for measure in ("count", "mean:studied_credits"):
            query = disclosure.parse_query(scope, list(group_by), measure)
            got = disclosure.exact_cells(scope, query, MAX_CELLS_PER_PERSON)
            want = expected_exact(frame, scope, group_by, measure)
            where = f"group_by={group_by} measure={measure}"
            assert sorted(got) == sorted(want), where
            for key, (people, total) in want.items():
                assert got[key][0] == people, f"{where} {key}"
                assert got[key][1] == pytest.approx(total, rel=1e-9, abs=1e-6), f"{where} {key}"
    # No student here is in more than five modules, so no one lost a cell to the bound:
    # the people per module are pandas' distinct students per module.
    query = disclosure.parse_query(scope, ["code_module"], "count")
    got = disclosure.exact_cells(scope, query, MAX_CELLS_PER_PERSON)
    modules = frame.groupby("code_module")["id_student"].nunique()
    values = scope.field("code_module").values
    assert {values[k[0]]: v[0] for k, v in got.items()} == modules.to_dict()


def test_every_answer_lists_the_declared_groups_and_is_noisy_but_close(oulad_grants):
    frame = read_csv()
    close, large = 0, 0
    for _ in range(2):
        scope = oulad_grants(k=10)
        for group_by in GROUPINGS[:5]:
            result = disclosure.aggregate(scope, list(group_by), "count")
            declared = [disclosure.declared_groups(scope.field(n)) for n in group_by]
            keys = [tuple(r["cells"][: len(group_by)]) for r in result.rows]
            assert keys == list(itertools.product(*declared)), group_by
            truth = true_people(frame, scope, group_by)
            for key, row in zip(keys, result.rows, strict=True):
                people = row["cells"][len(group_by)]
                if row["suppressed"]:
                    assert people is None
                    continue
                assert people >= scope.k
                if truth.get(key, 0) >= 100:
                    large += 1
                    close += abs(people - truth[key]) <= 0.1 * truth[key]
    # Cells of 100 people or more, at the default budget's cost per aggregate.
    print(f"cells of 100+ within 10% of the truth: {close} of {large}")
    assert large > 100
    assert close / large >= 0.95


def test_a_repeated_aggregate_returns_the_stored_answer_and_spends_nothing(oulad_grants):
    scope = oulad_grants()
    first = disclosure.aggregate(scope, ["code_module", "gender"], "mean:studied_credits")
    assert (first.epsilon, first.spent, first.repeated) == (1.0, 1.0, False)
    again = disclosure.aggregate(scope, ["code_module", "gender"], "mean:studied_credits")
    assert again.rows == first.rows
    assert (again.epsilon, again.spent, again.repeated) == (0.0, 1.0, True)
    assert AggregateRelease.objects.count() == 1
    events = list(AccessEvent.objects.filter(kind="aggregate").order_by("id"))
    assert [e.detail["epsilon"] for e in events] == [1.0, 0.0]
    assert events[1].detail["repeat_of"] == events[0].pk


def test_the_budget_runs_out_with_a_clear_refusal(oulad_grants):
    scope = oulad_grants()
    groupings = [g for n in (1, 2) for g in itertools.combinations(FIELDS[:5], n)]
    for group_by in groupings[:10]:
        disclosure.aggregate(scope, list(group_by), "count")
    with pytest.raises(disclosure.BudgetSpent) as refused:
        disclosure.aggregate(scope, list(groupings[10]), "count")
    assert "privacy budget of this grant is spent (ε 10 of 10 used" in str(refused.value)
    # What was asked before still answers, at no cost.
    assert disclosure.aggregate(scope, list(groupings[0]), "count").repeated
    assert AggregateRelease.objects.count() == 10


ATTACK_FIELDS = ("code_module", "region", "highest_education", "age_band")


def least_squares_attack(answers: dict, labels: dict, truth: dict, k: int) -> np.ndarray:
    """The differencing attack of the finding. ``answers`` maps each asked combination
    of fields to {cell labels: released number, or None when suppressed}; a cell the
    answer does not list counts as 0 (the "absent group means zero" signal). For each
    three-field table asked, its cells are the unknowns, and every answer over a subset
    of its fields (the table itself, its two-way and one-way margins, the total) gives
    one equation per released cell; least squares solves each system. Returns the
    absolute error of the estimate of every cell of one to k - 1 people."""
    errors, judged = [], set()
    for table in [c for c in answers if len(c) == 3]:
        cells = list(itertools.product(*(labels[n] for n in table)))
        rows, observed = [], []
        subsets = [c for c in answers if set(c) <= set(table)]

        def members(combo, key, table=table, cells=cells):
            axes = [table.index(n) for n in combo]
            return np.array([tuple(c[a] for a in axes) == key for c in cells], dtype=float)

        for combo in subsets:
            for key in itertools.product(*(labels[n] for n in combo)):
                value = answers[combo].get(key, 0)
                if value is not None:
                    rows.append(members(combo, key))
                    observed.append(value)
        solution, *_ = np.linalg.lstsq(np.array(rows), np.array(observed, float), rcond=None)
        for combo in subsets:
            for key, true in truth[combo].items():
                if 0 < true < k and (combo, key) not in judged:
                    judged.add((combo, key))
                    errors.append(abs(members(combo, key) @ solution - true))
    return np.array(errors)


def test_the_differencing_attack_no_longer_recovers_small_cells(oulad_grants):
    """Every combination of up to three of four granted fields, as many as the budget
    allows (the most detailed first), solved by least squares. (Run against the
    suppression-only aggregates before differential privacy, this least-squares attacker
    did no better on these fields: 4% within half a person, none exact. The exact leak is
    replayed by the correction test below; see docs/access.md.)"""
    k = 5
    scope = oulad_grants(k=k, fields=ATTACK_FIELDS)
    frame = read_csv()
    labels = {n: disclosure.declared_groups(scope.field(n)) for n in ATTACK_FIELDS}
    combos = [c for n in (3, 2, 1, 0) for c in itertools.combinations(ATTACK_FIELDS, n)]
    answers, truth = {}, {}
    for combo in combos:
        try:
            result = disclosure.aggregate(scope, list(combo), "count")
        except disclosure.BudgetSpent:
            continue
        answers[combo] = {
            tuple(row["cells"][: len(combo)]): row["cells"][len(combo)] for row in result.rows
        }
        truth[combo] = (
            true_people(frame, scope, combo) if combo else {(): frame.id_student.nunique()}
        )
    assert len(answers) == 10  # the default budget pays for ten aggregates
    errors = least_squares_attack(answers, labels, truth, k)
    print(
        f"{len(errors)} cells under k; mean error {errors.mean():.2f} people; "
        f"{(errors <= 0.5).mean():.0%} within half a person"
    )
    assert len(errors) > 50
    assert errors.mean() >= 1
    assert (errors <= 0.5).mean() <= 1 / 3


def test_answers_before_and_after_an_accepted_correction_do_not_reveal_the_change(
    oulad_grants,
):
    """The finding: comparing answers before and after an accepted correction rebuilt one
    learner's row from cells all above k. Exact answers would differ by exactly the move
    (one person out of Pass, into Fail); a correction makes the next ask a new release,
    with fresh noise, paid from the budget, so the difference is the noise's."""
    from consent import services as consent_services
    from governance.models import Record

    scope = oulad_grants()
    record = Record.objects.filter(
        dataset=scope.dataset, values__final_result="Pass", person__user__isnull=True
    ).first()
    learner = make_user()
    record.person.user = learner
    record.person.save()
    query = disclosure.parse_query(scope, ["final_result"], "count")
    values = scope.field("final_result").values

    def exact():
        cells = disclosure.exact_cells(scope, query, MAX_CELLS_PER_PERSON)
        return {values[key[0]]: cells.get(key, (0, 0))[0] for key in [(i,) for i in range(4)]}

    def released(result):
        return {row["cells"][0]: row["cells"][1] or 0 for row in result.rows[:4]}

    exact_before, before = exact(), released(disclosure.aggregate(scope, ["final_result"]))
    correction = consent_services.correction_propose(
        actor=learner,
        person=record.person,
        record=record,
        field=scope.field("final_result"),
        proposed_value="Fail",
        note="I failed that module.",
    )
    steward = User.objects.get(email="steward@example.org")
    consent_services.correction_accept(actor=steward, correction=correction)
    result = disclosure.aggregate(scope, ["final_result"])
    exact_after, after = exact(), released(result)

    assert not result.repeated and result.spent == 2.0  # a new release, paid for
    move = {v: 0 for v in values} | {"Pass": -1, "Fail": 1}
    # Exact answers differ by exactly the move, as the finding's attacker saw ...
    assert {v: exact_after[v] - exact_before[v] for v in values} == move
    # ... the released ones do not (the chance that noise reproduces it is below 1e-4).
    assert {v: after[v] - before[v] for v in values} != move
