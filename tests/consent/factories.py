"""A person with a login, records in a learning dataset, a consent-based purpose and an
approved grant that has read their data: the world the "my data" pages show.

``make_subject_world()`` builds it through the services; ``read(world)`` makes the
grant holder read once more (an extract, through the governed access layer).
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass

from analytics import access
from analytics.models import Grant
from consent import services as consent_services
from governance.models import Person, User
from governance.services import accounts
from governance.services.records import records_import
from tests.analytics.factories import (
    OULAD_FIELDS,
    Board,
    Oulad,
    approve,
    make_analyst,
    make_board,
    make_oulad,
    make_ready_request,
)
from tests.factories import make_purpose, make_user

_counter = itertools.count(1)
CONSENT_TEXT = "You agree that your study records may be used to offer you learning support."


@dataclass
class SubjectWorld:
    oulad: Oulad
    board: Board
    analyst: User
    grant: Grant
    user: User  # the learner's login
    person: Person
    other_user: User  # another learner, with their own data
    other_person: Person

    @property
    def purpose(self):
        return self.oulad.purpose


def _row(external_id: str, n: int) -> dict:
    return {
        "code_module": ["AAA", "BBB", "CCC"][n % 3],
        "code_presentation": "2014J",
        "gender": "F" if n % 2 else "M",
        "region": "Wales",
        "imd_band": "20-30%",
        "age_band": "0-35",
        "studied_credits": str(60 + n % 3 * 30),
        "disability": "Y" if n == 0 else "N",
        "final_result": "Pass" if n % 2 else "Fail",
    }


def make_subject_world(*, people: int = 12, output_level: str = "pseudonymised") -> SubjectWorld:
    """``people`` learners (L…-1 is the person, L…-2 the other), all consenting to a
    consent-based learning-support purpose; an approved grant on it that read them once."""
    n = next(_counter)
    steward = make_user("Data steward")
    purpose = make_purpose(
        steward,
        slug=f"learning-support-{n}",
        name=f"Learning support {n}",
        legal_basis="consent",
        consent_text=CONSENT_TEXT,
        category="learning_support",
    )
    oulad = make_oulad(purpose=purpose)
    names = [spec[0] for spec in OULAD_FIELDS]
    ids = [f"L{n}-{i}" for i in range(1, people + 1)]
    lines = [",".join(["external_id", *names])]
    for i, external_id in enumerate(ids):
        values = _row(external_id, i)
        lines.append(",".join([external_id, *(values[name] for name in names)]))
    records_import(
        actor=oulad.steward,
        dataset=oulad.dataset,
        stream=io.BytesIO("\n".join(lines).encode()),
        file_name="studentInfo.csv",
    )
    users = {}
    for external_id in ids:
        person = Person.objects.get(external_id=external_id)
        user = make_user(email=f"{external_id.lower()}@example.org")
        accounts.person_link_user(actor=None, person=person, user=user)
        consent_services.consent_give(actor=user, person=person, purpose=purpose)
        users[external_id] = (user, person)
    analyst = make_analyst()
    request = make_ready_request(
        analyst,
        oulad,
        output_level=output_level,
        fields=oulad.fields("code_module", "final_result", "studied_credits"),
    )
    board = make_board()
    _decision, request = approve(request, oulad, board)
    world = SubjectWorld(
        oulad=oulad,
        board=board,
        analyst=analyst,
        grant=request.grants.get(),
        user=users[ids[0]][0],
        person=users[ids[0]][1],
        other_user=users[ids[1]][0],
        other_person=users[ids[1]][1],
    )
    read(world)
    return world


def read(world: SubjectWorld) -> bytes:
    """The grant holder extracts once (an access event including every consenting
    person); returns the CSV."""
    scope = access.grant_scope(user=world.analyst, grant=world.grant)
    return b"".join(access.extract_csv(scope))
