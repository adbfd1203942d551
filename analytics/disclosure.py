"""Disclosure control: every number about a group of people that leaves Custos.

An aggregate is released under differential privacy, in this order:

1. **Declared groups.** Cells come from the registry, never from the data: a category's
   allowed values, a boolean's yes and no, a numeric field's declared groups, each with
   "Not recorded" for a missing value. Every answer lists every cell of that grid, so a
   group's presence or absence reveals nothing. A field with no declared groups cannot
   group an aggregate.
2. **Exact counts in the database.** One ``GROUP BY`` gives each person's cells (for a
   mean, the person's mean of the value in each cell, clamped to the field's declared
   minimum and maximum); each person counts in at most ``max_cells_per_person`` cells
   (their earliest records' cells), then a second ``GROUP BY`` counts the people of each
   cell and sums their values. One person therefore moves at most that many counts by
   one, and each sum by at most the field's largest absolute bound: the sensitivity.
3. **Noise from OpenDP.** The discrete Laplace mechanism on the vector of counts, the
   Laplace mechanism on the vector of sums; OpenDP finds the noise scale for the
   sensitivity and the ε spent, and its privacy map is the accounting.
4. **Budget.** Each aggregate spends the privacy-budget rule's ``epsilon_per_query``
   (a mean spends half on its counts and half on its sums); the grant's budget is the
   decision's ε, shared by every grant of the request's review round (a corrected
   decision does not reset it). When it is spent, aggregates are refused.
5. **Stored answers.** The noisy answer is stored; the same aggregate over the same
   data (no new load, correction or consent change since) returns it and spends
   nothing, so averaging repeated answers gains nothing.
6. **Small cells.** A cell whose noisy count is under k is suppressed (post-processing,
   which costs no privacy).

Every release writes an access event with its ε; nothing turns the noise off.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass

import opendp.prelude as dp
from django.db import connection, transaction
from django.db.models import (
    Avg,
    Case,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Greatest, Least

from consent.models import Consent, Correction
from consent.models import RequestStatus as CorrectionStatus
from governance.models import Field, FieldType, LoadStatus, RecordLoad

from .access import AccessDenied, Scope, _event_create, _log, records_for
from .models import AccessKind, AggregateRelease, Grant
from .privacy import privacy_settings

dp.enable_features("contrib")

MAX_GROUP_BY = 3
MAX_CELLS = 2000
CONFIDENCE = 0.95
NUMERIC = {FieldType.INTEGER, FieldType.DECIMAL}
NOT_RECORDED = "Not recorded"


class BadAggregate(ValueError):
    """The aggregate cannot be asked as put (shown as 400 with the reason)."""


class BudgetSpent(AccessDenied):
    """The grant's privacy budget cannot pay for another aggregate (shown as 403)."""


# --- declared groups ------------------------------------------------------------------


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else f"{value:g}"


def can_group(f: Field) -> bool:
    """Whether the registry declares the field's groups, so it may group an aggregate."""
    return bool(
        (f.type == FieldType.CATEGORY and f.values)
        or f.type == FieldType.BOOLEAN
        or (f.type in NUMERIC and f.bins)
    )


def can_average(f: Field) -> bool:
    """Whether a mean of the field may be asked: a number with declared bounds."""
    return f.type in NUMERIC and f.minimum is not None and f.maximum is not None


def declared_groups(f: Field) -> list[str]:
    """The labels of a field's declared groups, in order, then "Not recorded"."""
    if not can_group(f):
        raise BadAggregate(
            f"{f.display_label} has no declared groups, so it cannot group an aggregate: "
            "its steward must list its values (or, for a number, where its groups start)."
        )
    if f.type == FieldType.CATEGORY:
        labels = list(f.values)
    elif f.type == FieldType.BOOLEAN:
        labels = ["Yes", "No"]
    else:
        integer = f.type == FieldType.INTEGER
        labels = []
        for start, end in itertools.zip_longest(f.bins, f.bins[1:]):
            if end is None:
                labels.append(f"{_number(start, integer)} or more")
            elif integer and end - start == 1:
                labels.append(_number(start, integer))
            elif integer:
                labels.append(f"{_number(start, integer)} to {_number(end - 1, integer)}")
            else:
                labels.append(f"{_number(start, integer)} to under {_number(end, integer)}")
    return [*labels, NOT_RECORDED]


def _group_index(f: Field, alias: str):
    """SQL: the index of a record's declared group for ``f`` (NULL when not recorded)."""
    raw = KeyTextTransform(f.name, "values")
    if f.type == FieldType.CATEGORY:
        raw = Cast(raw, TextField())  # compared as text, not as JSON
        whens = [When(**{alias: v}, then=Value(i)) for i, v in enumerate(f.values)]
        return raw, Case(*whens, default=Value(None), output_field=IntegerField())
    if f.type == FieldType.BOOLEAN:
        # Booleans are JSON true/false: compared as JSON, the same on every database.
        whens = [
            When(Q(**{f"values__{f.name}": True}), then=Value(0)),
            When(Q(**{f"values__{f.name}": False}), then=Value(1)),
        ]
        return None, Case(*whens, default=Value(None), output_field=IntegerField())
    number = Cast(raw, FloatField())
    whens = [When(**{f"{alias}__isnull": True}, then=Value(None))]
    whens += [When(**{f"{alias}__lt": edge}, then=Value(i)) for i, edge in enumerate(f.bins[1:])]
    # Values below the first start count in the first group, like clamping to the bounds.
    return number, Case(*whens, default=Value(len(f.bins) - 1), output_field=IntegerField())


# --- the query ------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    group_by: list[Field]
    measured: Field | None

    @property
    def groups(self) -> list[list[str]]:
        """Each grouping field's declared groups (labels), in order."""
        return [declared_groups(f) for f in self.group_by]

    @property
    def cells(self) -> int:
        return math.prod(len(labels) for labels in self.groups)

    @property
    def measure(self) -> str:
        return f"mean:{self.measured.name}" if self.measured else "count"

    def as_dict(self) -> dict:
        return {"group_by": [f.name for f in self.group_by], "measure": self.measure}


def parse_query(scope: Scope, group_by: list[str], measure: str) -> Query:
    """The aggregate asked, checked: granted fields with declared groups, at most three,
    and a mean only of a numeric field with a declared minimum and maximum."""
    group_by = [g for g in group_by if g]
    if len(group_by) > MAX_GROUP_BY:
        raise BadAggregate(f"Group by at most {MAX_GROUP_BY} fields.")
    if len(set(group_by)) != len(group_by):
        raise BadAggregate("Each field can group an aggregate once.")
    fields = [scope.field(name) for name in group_by]
    cells = Query(fields, None).cells
    if cells > MAX_CELLS:
        raise BadAggregate(
            f"These groups make {cells:,} cells; at most {MAX_CELLS:,} can be asked at once."
        )
    measured = None
    if measure not in ("", "count"):
        kind, _, name = measure.partition(":")
        if kind != "mean" or not name:
            raise BadAggregate(f"Unknown measure {measure!r}: ask for count or mean:<field>.")
        measured = scope.field(name)
        if measured.type not in NUMERIC:
            raise BadAggregate(f"{measured.display_label} is not a number: it has no mean.")
        if not can_average(measured):
            raise BadAggregate(
                f"{measured.display_label} has no declared minimum and maximum, which a mean "
                "needs: its steward must declare them."
            )
    return Query(fields, measured)


def exact_cells(scope: Scope, query: Query, max_cells_per_person: int) -> dict[tuple, tuple]:
    """The exact (people, sum) of every non-empty cell, keyed by the cells' group
    indexes (None for "Not recorded"), computed by the database before any noise.

    Each person counts in at most ``max_cells_per_person`` cells (those of their
    earliest records); in a mean, a person's value in a cell is their mean there,
    clamped to the field's bounds."""
    records = records_for(scope).order_by()
    raws, groups = {}, {}
    for i, f in enumerate(query.group_by):
        raw, index = _group_index(f, f"raw{i}")
        if raw is not None:
            raws[f"raw{i}"] = raw
        groups[f"g{i}"] = index
    records = records.annotate(**raws).annotate(**groups)
    value = Value(0.0)
    if query.measured is not None:
        m = query.measured
        records = records.annotate(
            x=Least(
                Greatest(Cast(KeyTextTransform(m.name, "values"), FloatField()), Value(m.minimum)),
                Value(m.maximum),
            )
        ).filter(x__isnull=False)
        value = F("x")
    names = list(groups)
    per_person = (
        records.values("person_id", *names)
        .annotate(first_id=Min("id"), v=Avg(value, output_field=FloatField()))
        .order_by()
    )
    sql, params = per_person.query.sql_with_params()
    columns = ", ".join(f"pc.{connection.ops.quote_name(n)}" for n in names)
    select = f"{columns}, " if names else ""
    group = f" GROUP BY {columns}" if names else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {select}COUNT(*), COALESCE(SUM(pc.v), 0) FROM ("  # noqa: S608
            f"SELECT p.*, ROW_NUMBER() OVER (PARTITION BY p.person_id ORDER BY p.first_id) AS rn"
            f" FROM ({sql}) AS p) AS pc WHERE pc.rn <= %s{group}",
            [*params, max_cells_per_person],
        )
        rows = cursor.fetchall()
    return {
        tuple(row[: len(names)]): (int(row[len(names)]), float(row[len(names) + 1]))
        for row in rows
        if row[len(names)]
    }


# --- noise ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """The mechanisms of one release, with the scales OpenDP chose."""

    epsilon: float
    count_sensitivity: int
    count_scale: float
    sum_sensitivity: float | None = None
    sum_scale: float | None = None

    def count_margin(self) -> float:
        """Half the width of the 95% interval of a noisy count."""
        return dp.discrete_laplacian_scale_to_accuracy(self.count_scale, 1 - CONFIDENCE)

    def sum_margin(self) -> float | None:
        if self.sum_scale is None:
            return None
        return dp.laplacian_scale_to_accuracy(self.sum_scale, 1 - CONFIDENCE)


def _count_mechanism(scale: float):
    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), scale=scale
    )


def _sum_mechanism(scale: float):
    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.l1_distance(T=float),
        scale=scale,
    )


def _scale(make, d_in, epsilon: float) -> float:
    """The smallest noise scale whose privacy loss (OpenDP's map) is within ``epsilon``."""
    return dp.binary_search_param(make, d_in=d_in, d_out=epsilon)


def plan_noise(query: Query, epsilon: float, max_cells_per_person: int) -> Noise:
    count_sensitivity = min(max_cells_per_person, query.cells)
    if query.measured is None:
        return Noise(
            epsilon, count_sensitivity, _scale(_count_mechanism, count_sensitivity, epsilon)
        )
    bound = max(abs(query.measured.minimum), abs(query.measured.maximum)) or 1.0
    sum_sensitivity = count_sensitivity * bound
    half = epsilon / 2
    return Noise(
        epsilon,
        count_sensitivity,
        _scale(_count_mechanism, count_sensitivity, half),
        sum_sensitivity,
        _scale(_sum_mechanism, sum_sensitivity, half),
    )


def add_noise(noise: Noise, counts: list[int], sums: list[float] | None):
    """OpenDP's mechanisms applied to the exact vectors; nothing else adds noise."""
    noisy_counts = _count_mechanism(noise.count_scale)(counts)
    noisy_sums = _sum_mechanism(noise.sum_scale)(sums) if sums is not None else None
    return noisy_counts, noisy_sums


# --- the release ----------------------------------------------------------------------


@dataclass
class AggregateResult:
    columns: list[str]
    labels: list[str]
    rows: list[dict]
    suppressed: int
    k: int
    epsilon: float
    budget: float
    spent: float
    repeated: bool
    count_margin: float
    is_mean: bool = False

    @property
    def left(self) -> float:
        return max(0.0, self.budget - self.spent)

    def as_dict(self) -> dict:
        return {
            "columns": self.columns,
            "rows": [r["cells"] for r in self.rows],
            "suppressed_rows": [r["suppressed"] for r in self.rows],
            "suppressed": self.suppressed,
            "k": self.k,
            "epsilon": self.epsilon,
            "budget": {"total": self.budget, "spent": self.spent, "left": self.left},
            "repeated": self.repeated,
            "margin_95": round(self.count_margin, 1),
        }


def _data_state(scope: Scope) -> dict:
    """What the answer depends on besides the query: the dataset's loads and
    corrections, and the consents for the purpose. A change makes a new answer."""
    dataset, purpose = scope.dataset, scope.grant.request.purpose
    load = (
        RecordLoad.objects.filter(dataset=dataset, status=LoadStatus.SUCCEEDED)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    corrected = Correction.objects.filter(
        dataset=dataset, status=CorrectionStatus.ACCEPTED
    ).aggregate(last=Max("decided_at"))["last"]
    consents = Consent.objects.filter(purpose=purpose).aggregate(last=Max("changed_at"))["last"]
    return {
        "load": load,
        "records": dataset.record_count,
        "corrected": corrected.isoformat() if corrected else None,
        "consents": consents.isoformat() if consents else None,
        "cohort": scope.cohort,
    }


def _query_key(scope: Scope, query: Query, state: dict) -> str:
    content = {"dataset": scope.dataset.pk, **query.as_dict(), "state": state}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def budget_spent(grant: Grant) -> float:
    """ε spent by the request's aggregates in the grant's review round."""
    return float(sum(releases_for_grant(grant).values_list("epsilon", flat=True)))


def aggregate_cost(scope: Scope) -> dict:
    """What the next aggregate costs and what the grant has left, shown before running."""
    spent = budget_spent(scope.grant)
    return {
        "cost": privacy_settings().epsilon_per_query,
        "budget": scope.grant.epsilon,
        "spent": spent,
        "left": max(0.0, scope.grant.epsilon - spent),
    }


def _release(scope: Scope, query: Query, epsilon: float, max_cells: int) -> dict:
    """Exact cells from the database, noise from OpenDP, as stored (unsuppressed)."""
    groups = query.groups
    grid = list(itertools.product(*(range(len(labels)) for labels in groups)))
    exact = exact_cells(scope, query, max_cells)
    not_recorded = [len(labels) - 1 for labels in groups]

    def key(indexes):  # the grid's "Not recorded" is the database's NULL
        return tuple(None if i == nr else i for i, nr in zip(indexes, not_recorded, strict=True))

    counts = [exact.get(key(cell), (0, 0.0))[0] for cell in grid]
    sums = [exact.get(key(cell), (0, 0.0))[1] for cell in grid] if query.measured else None
    noise = plan_noise(query, epsilon, max_cells)
    noisy_counts, noisy_sums = add_noise(noise, counts, sums)
    cells = []
    for i, cell in enumerate(grid):
        people = max(0, int(noisy_counts[i]))
        mean = None
        if query.measured is not None and people > 0:
            m = query.measured
            mean = min(m.maximum, max(m.minimum, noisy_sums[i] / people))
        cells.append({"groups": list(cell), "people": people, "mean": mean})
    return {
        "cells": cells,
        "count_margin": noise.count_margin(),
        "sum_margin": noise.sum_margin(),
        "count_scale": noise.count_scale,
        "sum_scale": noise.sum_scale,
        "sensitivity": noise.count_sensitivity,
        "max_cells_per_person": max_cells,
    }


@transaction.atomic
def aggregate(scope: Scope, group_by: list[str], measure: str = "count") -> AggregateResult:
    """An aggregate through the grant, under differential privacy (see the module's
    docstring): declared groups, exact counts by GROUP BY, OpenDP's noise, the budget
    spent once per distinct question, small noisy cells suppressed, logged with its ε."""
    query = parse_query(scope, group_by, measure)
    # The grant row is the budget's lock: two aggregates at once cannot both spend the
    # last of it. Only that row: the decision is append-only, and the application's
    # database role may not lock it for update (governance/dbroles.py).
    grant = (
        Grant.objects.select_for_update(of=("self",))
        .select_related("decision")
        .get(pk=scope.grant.pk)
    )
    state = _data_state(scope)
    key = _query_key(scope, query, state)
    settings = privacy_settings()
    stored = AggregateRelease.objects.filter(
        request_id=grant.request_id, round=grant.decision.round, query_key=key
    ).first()
    released = [f.name for f in query.group_by] + ([query.measured.name] if query.measured else [])
    spent = budget_spent(grant)
    if stored is not None:
        answer = stored.answer
        _event_create(
            scope,
            AccessKind.AGGREGATE,
            people=0,
            rows=len(answer["cells"]),
            detail=query.as_dict() | {"epsilon": 0.0, "repeat_of": stored.event_id},
            released=released,
        )
        return _result(scope, query, answer, 0.0, grant.epsilon, spent, repeated=True)
    cost = settings.epsilon_per_query
    if cost > grant.epsilon - spent + 1e-9:
        raise BudgetSpent(
            f"The privacy budget of this grant is spent (ε {spent:g} of {grant.epsilon:g} "
            f"used; an aggregate costs ε {cost:g}). Aggregates asked before still show "
            "their answers; a new decision of the committee can add budget."
        )
    answer = _release(scope, query, cost, settings.max_cells_per_person)
    suppressed = sum(1 for c in answer["cells"] if c["people"] < scope.k)
    event = _log(
        scope,
        AccessKind.AGGREGATE,
        records_for(scope),
        len(answer["cells"]),
        query.as_dict() | {"epsilon": cost, "suppressed": suppressed},
        released=released,
    )
    AggregateRelease.objects.create(
        request_id=grant.request_id,
        round=grant.decision.round,
        grant=grant,
        dataset=scope.dataset,
        query_key=key,
        query=query.as_dict(),
        epsilon=cost,
        answer=answer,
        event=event,
    )
    return _result(scope, query, answer, cost, grant.epsilon, spent + cost, repeated=False)


def _result(scope, query, answer, cost, budget, spent, *, repeated) -> AggregateResult:
    """The stored answer as the analyst sees it: labels, and cells under k suppressed."""
    labels = query.groups
    value_column = f"mean_{query.measured.name}" if query.measured else None
    columns = [f.name for f in query.group_by] + ["people"] + ([value_column] * bool(value_column))
    rows, suppressed = [], 0
    for cell in answer["cells"]:
        hidden = cell["people"] < scope.k
        suppressed += hidden
        groups = [labels[d][i] for d, i in enumerate(cell["groups"])]
        values = [None if hidden else cell["people"]]
        if query.measured is not None:
            values.append(None if hidden or cell["mean"] is None else round(cell["mean"], 2))
        rows.append({"cells": groups + values, "suppressed": hidden})
    return AggregateResult(
        columns=columns,
        labels=[f.display_label for f in query.group_by],
        rows=rows,
        suppressed=suppressed,
        k=scope.k,
        epsilon=cost,
        budget=budget,
        spent=spent,
        repeated=repeated,
        count_margin=answer["count_margin"],
        is_mean=query.measured is not None,
    )


def releases_for_grant(grant: Grant):
    """The round's releases, oldest first."""
    return AggregateRelease.objects.filter(request_id=grant.request_id, round=grant.decision.round)


def budget_over_time(grant: Grant) -> list[dict]:
    """The budget spent over time: each release of the round, oldest first, described in
    plain words (the fields' labels), with the ε left after it."""
    labels = {f.name: f.display_label for f in grant.fields.all()}
    left = grant.epsilon
    rows = []
    for release in releases_for_grant(grant).select_related("event__user", "dataset"):
        left -= release.epsilon
        groups = [labels.get(n, n) for n in release.query["group_by"]]
        measure = release.query["measure"]
        asked = (
            f"Mean {labels.get(measure[5:], measure[5:]).lower()}"
            if measure != "count"
            else "Number of people"
        )
        asked += f" by {', '.join(groups)}" if groups else ", everyone"
        rows.append({"release": release, "left": max(0.0, left), "asked": asked})
    return rows
