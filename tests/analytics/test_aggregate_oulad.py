"""Acceptance: aggregates on the real OULAD student table match an independent pandas
computation on the same CSV, cell by cell, including which cells are suppressed."""

from __future__ import annotations

import io
import itertools

import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command

from analytics import access
from analytics.models import AccessEvent, Grant
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
]
MEASURES = ["count", "mean:studied_credits"]


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


def approved_grant(oulad: Oulad, board, analyst, min_cohort: int) -> Grant:
    request = make_ready_request(analyst, oulad, fields=oulad.fields(*FIELDS))
    approve(request, oulad, board, min_cohort=min_cohort)
    return Grant.objects.get(request=request)


# --- the independent computation ----------------------------------------------------------


def read_csv() -> pd.DataFrame:
    frame = pd.read_csv(STUDENT_INFO, dtype=str, keep_default_na=False)
    frame["studied_credits"] = frame["studied_credits"].astype(int)
    return frame


def expected_cells(frame: pd.DataFrame, group_by: tuple[str, ...], measure: str) -> dict:
    """{key tuple: (people, value)} computed by pandas."""
    grouped = frame.groupby(list(group_by), sort=True)
    people = grouped["id_student"].nunique()
    values = grouped.size() if measure == "count" else grouped["studied_credits"].mean()
    out = {}
    for key in people.index:
        key_tuple = key if isinstance(key, tuple) else (key,)
        out[key_tuple] = (int(people[key]), values[key])
    return out


def lines(keys: list[tuple], axis: int) -> dict[tuple, list[int]]:
    """Positions of the cells in each line along ``axis`` (all other coordinates fixed)."""
    out: dict[tuple, list[int]] = {}
    for position, key in enumerate(keys):
        out.setdefault(key[:axis] + key[axis + 1 :], []).append(position)
    return out


def expected_suppressed(keys: list[tuple], people: list[int], k: int) -> set[int]:
    """Primary: fewer than k people. Complementary: a line (along any axis) of two or
    more cells with exactly one suppressed cell also loses its unsuppressed cell with the
    fewest people (the earlier one on a tie); repeated until nothing changes."""
    hidden = {p for p, n in enumerate(people) if n < k}
    while True:
        before = set(hidden)
        for axis in range(len(keys[0])):
            for members in lines(keys, axis).values():
                if len(members) >= 2 and len([p for p in members if p in hidden]) == 1:
                    shown = [p for p in members if p not in hidden]
                    hidden.add(min(shown, key=lambda p: (people[p], p)))
        if hidden == before:
            return hidden


def single_suppressed_lines(keys: list[tuple], hidden: set[int]) -> list[tuple]:
    return [
        (axis, line)
        for axis in range(len(keys[0]))
        for line, members in lines(keys, axis).items()
        if len(members) >= 2 and len([p for p in members if p in hidden]) == 1
    ]


# --- the test -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_oulad_aggregates_match_pandas_cell_by_cell_including_suppression():
    oulad = register_and_load()
    board = make_board(is_default=False)
    registry.purpose_update(actor=oulad.steward, purpose=oulad.purpose, committee=board.committee)
    analyst = make_analyst(clearance=Clearance.PERSONAL)
    grants = [approved_grant(oulad, board, analyst, k) for k in (10, 50)]
    frame = read_csv()
    analyst = User.objects.get(pk=analyst.pk)
    suppressed_with = {}

    # Suppression does not depend on the measure: the k=50 grant is checked on counts.
    queries = [
        (grant, group_by, measure)
        for grant, group_by, measure in itertools.product(grants, GROUPINGS, MEASURES)
        if grant.k == 10 or measure == "count"
    ]
    for grant, group_by, measure in queries:
        where = f"k={grant.k} group_by={group_by} measure={measure}"
        scope = access.grant_scope(user=analyst, grant=grant)
        assert scope.k == grant.k, where
        result = access.aggregate(scope, list(group_by), measure)
        expected = expected_cells(frame, group_by, measure)

        width = len(group_by)
        value_column = "count" if measure == "count" else "mean_studied_credits"
        assert result.columns == [*group_by, "people", value_column], where
        keys = [tuple(row["cells"][:width]) for row in result.rows]
        assert sorted(keys) == sorted(expected), where
        assert len(set(keys)) == len(keys), where

        # Suppression, decided independently from pandas' people per cell (ties broken by
        # the cell's position in the result).
        people = [expected[key][0] for key in keys]
        hidden = expected_suppressed(keys, people, grant.k)
        actual = {p for p, row in enumerate(result.rows) if row["suppressed"]}
        assert actual == hidden, where
        assert result.suppressed == len(hidden), where
        assert single_suppressed_lines(keys, actual) == [], where

        for position, (key, row) in enumerate(zip(keys, result.rows, strict=True)):
            people_shown, value = row["cells"][width:]
            if position in hidden:
                assert (people_shown, value) == (None, None), f"{where} {key}"
                continue
            want_people, want_value = expected[key]
            assert people_shown == want_people, f"{where} {key}"
            assert people_shown >= grant.k, f"{where} {key}"
            assert value == pytest.approx(float(want_value), rel=1e-9), f"{where} {key}"
        complementary = len([p for p in hidden if people[p] >= grant.k])
        suppressed_with[(grant.k, group_by, measure)] = (len(hidden), complementary)

    # The data exercise the rule: k=50 hides more than k=10, and the three-way table
    # needs complementary suppression, not only the primary cells.
    three = GROUPINGS[2]
    assert suppressed_with[(50, three, "count")][0] > suppressed_with[(10, three, "count")][0]
    assert suppressed_with[(10, three, "count")][1] > 0
    assert suppressed_with[(50, three, "count")][1] > 0
    events = AccessEvent.objects.filter(kind="aggregate")
    assert events.count() == len(queries)
    assert set(events.values_list("people", flat=True)) == {frame["id_student"].nunique()}
