"""The governed access layer (analytics/access.py, consent/selectors.py): who and what a
grant lets an analyst read at the moment of reading, and the access log each read leaves."""

from __future__ import annotations

import csv
import datetime
import io

import pytest

from analytics import access, disclosure, services
from analytics.models import AccessEvent, AccessEventSubject, Grant
from analytics.selectors import access_events_for_person
from consent.models import Consent
from governance.models import Clearance, Field, Record, User
from governance.services import registry
from tests.analytics.factories import (
    approve,
    make_analyst,
    make_board,
    make_oulad,
    make_ready_request,
    today,
)
from tests.factories import PersonFactory

MODULES = ["AAA"] * 7 + ["BBB"] * 5  # twelve people; the first also has a second record


def load(oulad, modules=MODULES, start=0):
    """One record per person, plus a second record for the first person loaded."""
    people = []
    for i, module in enumerate(modules, start=start):
        person = PersonFactory(external_id=f"S{i:05d}")
        people.append(person)
        Record.objects.create(
            dataset=oulad.dataset,
            person=person,
            values={
                "code_module": module,
                "code_presentation": "2013J",
                "gender": "F" if i % 2 else "M",
                "region": "Scotland",
                "imd_band": "20-30%",
                "age_band": "0-35",
                "studied_credits": 60 + i,
                "disability": "Y" if i % 3 == 0 else "N",
                "final_result": "Pass" if i % 4 else "Fail",
                "student_number": f"SN-{i:05d}",
            },
        )
    return people


@pytest.fixture
def world(db):
    board = make_board()
    oulad = make_oulad()
    registry.field_create(
        actor=oulad.steward,
        dataset=oulad.dataset,
        name="student_number",
        type="string",
        sensitivity="personal",
        is_identifier=True,
    )
    analyst = make_analyst(clearance=Clearance.PERSONAL)
    people = load(oulad)
    first = people[0]
    Record.objects.create(
        dataset=oulad.dataset,
        person=first,
        values={"code_module": "BBB", "code_presentation": "2014J", "studied_credits": 30},
    )
    return {"board": board, "oulad": oulad, "analyst": analyst, "people": people}


FIELDS = ("code_module", "final_result", "studied_credits")


def make_grant(world, *, fields=FIELDS, output_level="pseudonymised", analyst=None, **overrides):
    oulad = world["oulad"]
    analyst = analyst or world["analyst"]
    request = make_ready_request(
        analyst, oulad, fields=oulad.fields(*fields), output_level=output_level, **overrides
    )
    approve(request, oulad, world["board"], min_cohort=2)
    return Grant.objects.get(request=request)


def scope_of(grant, user=None):
    """As a view does it: the grant fetched afresh for its owner, then its scope now."""
    user = user or grant.grantee
    user = User.objects.get(pk=user.pk)
    return access.grant_scope(user=user, grant=access.grant_for_user(user=user, pk=grant.pk))


def extract(grant, user=None) -> list[dict]:
    body = b"".join(access.extract_csv(scope_of(grant, user))).decode()
    return list(csv.DictReader(io.StringIO(body)))


def people_in(rows, column="external_id") -> set[str]:
    return {row[column] for row in rows}


def total(scope) -> int:
    """Ask the ungrouped aggregate (logging its read), and return the exact number of
    people it counted before the noise (the figure released is noisy)."""
    disclosure.aggregate(scope, [])
    query = disclosure.parse_query(scope, [], "count")
    [(people, _)] = disclosure.exact_cells(scope, query, 5).values()
    return people


def subjects(event) -> set[int]:
    return set(AccessEventSubject.objects.filter(event=event).values_list("person_id", flat=True))


# --- who is left out at read time ---------------------------------------------------------


def test_a_withdrawn_person_disappears_from_the_next_read(world):
    grant = make_grant(world, output_level="identified")
    leaver = world["people"][3]
    assert leaver.external_id in people_in(extract(grant))
    assert total(scope_of(grant)) == 12

    Consent.objects.create(person=leaver, purpose=grant.request.purpose, state="withdrawn")

    rows = extract(grant)
    assert leaver.external_id not in people_in(rows)
    assert len(rows) == 12
    header, preview_rows = access.preview(scope_of(grant))
    assert leaver.external_id not in {row[header.index("external_id")] for row in preview_rows}
    assert total(scope_of(grant)) == 11
    # Nor is the leaver among the people the new reads are logged as including.
    newest = AccessEvent.objects.order_by("-id")[:3]
    assert all(leaver.pk not in subjects(event) for event in newest)
    assert [e.people for e in newest] == [11, 11, 11]


def test_under_a_consent_basis_only_people_who_gave_consent_are_read(db):
    world = {
        "board": make_board(),
        "oulad": make_oulad(legal_basis="consent", consent_text="I agree to my data being used."),
        "analyst": make_analyst(),
    }
    people = load(world["oulad"])
    grant = make_grant(world, output_level="identified")
    purpose = grant.request.purpose
    for person in people[:4]:
        Consent.objects.create(person=person, purpose=purpose, state="given")
    Consent.objects.create(person=people[4], purpose=purpose, state="withdrawn")
    Consent.objects.create(person=people[5], purpose=purpose, state="refused")

    assert people_in(extract(grant)) == {p.external_id for p in people[:4]}
    assert total(scope_of(grant)) == 4
    # Consent given to another purpose does not count for this one.
    other = registry.purpose_create(
        actor=world["oulad"].steward,
        slug="other",
        name="Other",
        category="course_improvement",
        expected_benefit="Other",
        legal_basis="consent",
        consent_text="Other text.",
    )
    Consent.objects.create(person=people[6], purpose=other, state="given")
    assert people[6].external_id not in people_in(extract(grant))


# --- grants that allow nothing ------------------------------------------------------------


def revoke(world, grant):
    services.grant_revoke(actor=world["board"].chair, grant=grant, reason="Misused.")


def expire(world, grant):
    Grant.objects.filter(pk=grant.pk).update(valid_until=today() - datetime.timedelta(days=1))


def not_yet(world, grant):
    Grant.objects.filter(pk=grant.pk).update(valid_from=today() + datetime.timedelta(days=1))


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [(revoke, "revoked"), (expire, "ended on"), (not_yet, "valid from")],
    ids=["revoked", "expired", "not-yet-valid"],
)
def test_a_grant_not_usable_now_gives_nothing(world, spoil, reason):
    grant = make_grant(world)
    assert len(extract(grant)) == 13
    before = AccessEvent.objects.count()

    spoil(world, grant)

    with pytest.raises(access.AccessDenied, match=reason):
        scope_of(grant)
    assert AccessEvent.objects.count() == before


# --- which fields -------------------------------------------------------------------------


def test_special_fields_need_special_clearance_even_when_the_grant_names_them(world):
    analyst = world["analyst"]
    grant = make_grant(world, fields=("code_module", "disability"))
    assert grant.fields.filter(name="disability").exists()

    scope = scope_of(grant)
    assert scope.field_names == ["code_module"]
    assert "disability" not in extract(grant)[0]
    with pytest.raises(access.NotGranted, match="disability"):
        disclosure.aggregate(scope, ["disability"])
    with pytest.raises(access.NotGranted, match="disability"):
        disclosure.aggregate(scope, ["code_module"], "mean:disability")

    User.objects.filter(pk=analyst.pk).update(clearance=Clearance.SPECIAL)
    rows = extract(grant)
    assert {row["disability"] for row in rows} == {"Y", "N", ""}
    result = disclosure.aggregate(scope_of(grant), ["disability"])
    assert [r["cells"][0] for r in result.rows] == ["Y", "N", "Not recorded"]

    # Clearance is read at each access: lowering it takes the field away again.
    User.objects.filter(pk=analyst.pk).update(clearance=Clearance.PERSONAL)
    assert "disability" not in extract(grant)[0]


def test_a_field_added_to_the_grant_by_hand_is_not_readable(world):
    oulad = world["oulad"]
    grant = make_grant(world)
    grant.fields.add(oulad.field("region"), oulad.field("imd_band"))
    before = AccessEvent.objects.count()

    scope = scope_of(grant)
    assert sorted(scope.field_names) == sorted(FIELDS)
    for name in ("region", "imd_band"):
        with pytest.raises(access.NotGranted, match=name):
            disclosure.aggregate(scope, [name])
        with pytest.raises(access.NotGranted, match=name):
            disclosure.aggregate(scope, ["code_module", name])
    assert AccessEvent.objects.count() == before  # a refused query is not logged
    assert set(extract(grant)[0]) == {"pseudonym", *FIELDS}


def test_an_excluded_field_is_never_readable(world):
    grant = make_grant(world)
    Field.objects.filter(dataset=world["oulad"].dataset, name="final_result").update(excluded=True)

    scope = scope_of(grant)
    assert "final_result" not in scope.field_names
    with pytest.raises(access.NotGranted, match="final_result"):
        disclosure.aggregate(scope, ["final_result"])
    header, rows = access.preview(scope)
    assert header == ["pseudonym", "code_module", "studied_credits"]
    assert "final_result" not in extract(grant)[0]


def test_the_cohort_limits_the_people(world):
    oulad = world["oulad"]
    grant = make_grant(
        world, output_level="identified", cohort={f"{oulad.dataset.slug}.code_module": "AAA"}
    )
    aaa = {
        p.external_id for p, module in zip(world["people"], MODULES, strict=True) if module == "AAA"
    }

    rows = extract(grant)
    assert people_in(rows) == aaa
    assert {row["code_module"] for row in rows} == {"AAA"}
    assert total(scope_of(grant)) == 7


# --- pseudonyms and identifiers -----------------------------------------------------------


def test_pseudonyms_are_stable_within_a_grant_and_differ_across_grants(world):
    first = make_grant(world, fields=("code_module", "studied_credits", "student_number"))
    second = make_grant(world, fields=("code_module", "studied_credits", "student_number"))

    rows = extract(first)
    assert rows == extract(first)  # the same pseudonyms on every read
    by_credits = {row["studied_credits"]: row["pseudonym"] for row in rows}
    # Person 0 has two records (60 and 30 credits): one pseudonym for both.
    assert by_credits["60"] == by_credits["30"]
    key = bytes(first.pseudonym_key)
    expected = {access.pseudonym(key, p.external_id) for p in world["people"]}
    assert {row["pseudonym"] for row in rows} == expected
    assert len(expected) == 12

    other = {row["pseudonym"] for row in extract(second)}
    assert len(other) == 12
    assert not other & expected

    # Identifier fields and identities never appear in a pseudonymised extract.
    assert set(rows[0]) == {"pseudonym", "code_module", "studied_credits"}
    text = b"".join(access.extract_csv(scope_of(first))).decode()
    assert "SN-" not in text
    assert not any(p.external_id in text for p in world["people"])
    header, preview_rows = access.preview(scope_of(first))
    assert "student_number" not in header
    assert "SN-" not in repr(preview_rows)


def test_an_identified_extract_shows_identities_and_identifier_fields(world):
    grant = make_grant(world, fields=("code_module", "student_number"), output_level="identified")

    rows = extract(grant)
    assert set(rows[0]) == {"external_id", "code_module", "student_number"}
    assert people_in(rows) == {p.external_id for p in world["people"]}
    first = world["people"][0].external_id
    assert {r["student_number"] for r in rows if r["external_id"] == first} == {"SN-00000", ""}


# --- the access log -----------------------------------------------------------------------


def test_each_read_logs_who_which_fields_and_exactly_the_people_included(world):
    analyst = world["analyst"]
    oulad = world["oulad"]
    people = world["people"] + load(oulad, ["CCC"] * 60, start=100)
    grant = make_grant(world)
    everyone = {p.pk for p in people}

    list(access.extract_csv(scope_of(grant)))
    event = AccessEvent.objects.get()
    assert (event.kind, event.grant, event.user, event.dataset) == (
        "extract",
        grant,
        analyst,
        oulad.dataset,
    )
    assert sorted(event.field_names) == sorted(FIELDS)
    assert event.output_level == "pseudonymised"
    assert (event.people, event.rows) == (72, 73)
    assert subjects(event) == everyone
    assert AccessEventSubject.objects.filter(event=event).count() == 72

    list(access.extract_csv(scope_of(grant), kind="download"))
    assert AccessEvent.objects.latest("id").kind == "download"

    header, rows = access.preview(scope_of(grant))
    assert len(rows) == access.PREVIEW_ROWS == 50
    event = AccessEvent.objects.latest("id")
    shown = set(
        Record.objects.filter(dataset=oulad.dataset)
        .order_by("id")
        .values_list("person_id", flat=True)[:50]
    )
    assert event.kind == "preview"
    # The first 50 rows hold 49 people (one has two records among them).
    assert (event.people, event.rows) == (49, 50)
    assert subjects(event) == shown
    assert len(shown) == 49

    disclosure.aggregate(scope_of(grant), ["code_module"], "mean:studied_credits")
    event = AccessEvent.objects.latest("id")
    assert event.kind == "aggregate"
    assert event.people == 72
    assert subjects(event) == everyone
    assert event.detail["group_by"] == ["code_module"]
    assert event.detail["measure"] == "mean:studied_credits"


def test_events_including_a_person_are_read_in_a_fixed_number_of_queries(
    world, django_assert_num_queries
):
    grant = make_grant(world)
    leaver, stayer = world["people"][1], world["people"][2]
    list(access.extract_csv(scope_of(grant)))
    Consent.objects.create(person=leaver, purpose=grant.request.purpose, state="withdrawn")
    for _ in range(5):
        list(access.extract_csv(scope_of(grant)))
    disclosure.aggregate(scope_of(grant), ["code_module"])

    def read(person):
        return [
            (e.kind, e.grant.request.purpose.slug, e.user.email, e.dataset.slug)
            for e in access_events_for_person(person_id=person.pk)
        ]

    # Four queries however many events: the events, then grants, users, datasets.
    with django_assert_num_queries(4):
        few = read(leaver)
    with django_assert_num_queries(4):
        many = read(stayer)
    assert [kind for kind, *_ in few] == ["extract"]
    assert [kind for kind, *_ in many] == ["aggregate"] + ["extract"] * 6
    assert {(purpose, user) for _, purpose, user, _ in many} == {
        (grant.request.purpose.slug, world["analyst"].email)
    }
