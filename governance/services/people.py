"""Importing people (data subjects) from CSV, all or nothing."""

from __future__ import annotations

import csv
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from ..csvio import MAX_ERRORS, ImportRejected, RowError, open_csv, read_header, row_problem
from ..models import Person, User

PEOPLE_COLUMNS = ("external_id", "name", "email", "org_unit")
_LIMITS = {name: Person._meta.get_field(name).max_length for name in PEOPLE_COLUMNS}


@dataclass(frozen=True)
class PeopleImportResult:
    created: int
    updated: int
    unchanged: int
    linked: int


def people_import(*, actor, stream) -> PeopleImportResult:
    """Create or update people from CSV (external_id, name, email, org_unit).

    Rule: every row is checked before anything is written; one bad row rejects the file.
    A person is linked to the login with the same e-mail when neither is linked yet.
    """
    _, rows, line_number = open_csv(stream)
    header = read_header(rows)
    errors = [
        RowError(0, name, f"unknown column: expected {', '.join(PEOPLE_COLUMNS)}")
        for name in header
        if name not in PEOPLE_COLUMNS
    ]
    if "external_id" not in header:
        errors.append(RowError(0, "external_id", "the external_id column is missing"))
    if errors:
        raise ImportRejected(errors)

    incoming: dict[str, dict] = {}
    number = 0
    try:
        for row in rows:
            number += 1
            line = line_number()
            if len(row) != len(header):
                errors.append(
                    RowError(
                        number, None, f"expected {len(header)} columns, found {len(row)}", line
                    )
                )
            elif problem := row_problem(row):
                errors.append(RowError(number, None, problem, line))
            else:
                values = {name: cell.strip() for name, cell in zip(header, row, strict=True)}
                errors.extend(_check(values, number, line, incoming))
                incoming[values["external_id"]] = values
            if len(errors) >= MAX_ERRORS:
                break
    except csv.Error as exc:
        errors.append(RowError(number + 1, None, f"malformed CSV: {exc}", line_number()))
    if not errors and number == 0:
        errors.append(RowError(0, None, "the file has a header but no data rows"))
    if errors:
        raise ImportRejected(errors[:MAX_ERRORS])
    return _write(actor=actor, incoming=incoming, columns=[c for c in header if c != "external_id"])


def _check(values, number, line, incoming) -> list[RowError]:
    errors = []
    if not values["external_id"]:
        errors.append(RowError(number, "external_id", "the external id is empty", line))
    elif values["external_id"] in incoming:
        errors.append(
            RowError(number, "external_id", "this external id appears twice in the file", line)
        )
    for name, limit in _LIMITS.items():
        if name in values and len(values[name]) > limit:
            errors.append(RowError(number, name, f"longer than {limit} characters", line))
    if values.get("email"):
        try:
            validate_email(values["email"])
        except ValidationError:
            errors.append(RowError(number, "email", "not a valid e-mail address", line))
    return errors


@transaction.atomic
def _write(*, actor, incoming: dict[str, dict], columns: list[str]) -> PeopleImportResult:
    existing = {p.external_id: p for p in Person.objects.filter(external_id__in=incoming)}
    to_create, to_update = [], []
    for external_id, values in incoming.items():
        if "email" in values:
            values["email"] = values["email"].lower()
        person = existing.get(external_id)
        if person is None:
            to_create.append(Person(**{c: values.get(c, "") for c in PEOPLE_COLUMNS}))
            continue
        changed = False
        for column in columns:
            if getattr(person, column) != values[column]:
                setattr(person, column, values[column])
                changed = True
        if changed:
            to_update.append(person)
    if to_create:
        bulk_create_with_history(to_create, Person, batch_size=1000, default_user=actor)
    if to_update:
        bulk_update_with_history(to_update, Person, columns, batch_size=1000, default_user=actor)
    linked = person_link_by_email(actor=actor, external_ids=list(incoming))
    return PeopleImportResult(
        created=len(to_create),
        updated=len(to_update),
        unchanged=len(incoming) - len(to_create) - len(to_update),
        linked=linked,
    )


def person_link_by_email(*, actor, external_ids: list[str]) -> int:
    """Link unlinked people to unlinked logins that share their e-mail address."""
    people = list(
        Person.objects.filter(external_id__in=external_ids, user__isnull=True).exclude(email="")
    )
    if not people:
        return 0
    users = {
        u.email: u
        for u in User.objects.filter(email__in={p.email for p in people}, person__isnull=True)
    }
    linked = []
    for person in people:
        user = users.pop(person.email, None)
        if user is not None:
            person.user = user
            linked.append(person)
    if linked:
        bulk_update_with_history(linked, Person, ["user"], batch_size=1000, default_user=actor)
    return len(linked)
