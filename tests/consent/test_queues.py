"""The stewards' correction queue and the committees' objection queue: who sees what,
decisions kept in history, and a fixed number of queries however long the queue."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from consent import services
from consent.models import Correction, Objection
from governance.models import Role
from tests.analytics.factories import make_board, make_oulad
from tests.consent.factories import make_subject_world
from tests.consent.test_pages import add_records
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client, path) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return html.unescape(response.content.decode())


@pytest.fixture
def world():
    return make_subject_world()


def propose(world, value="Pass", *, person=None, user=None, field="final_result"):
    person, user = person or world.person, user or world.user
    record = world.oulad.dataset.records.filter(person=person).order_by("pk").first()
    return services.correction_propose(
        actor=user,
        person=person,
        record=record,
        field=world.oulad.field(field),
        proposed_value=value,
        note=f"Please make it {value}.",
    )


def feedback(world, message="Why keep my data so long?", *, person=None, user=None):
    return services.objection_file(
        actor=user or world.user, person=person or world.person, kind="feedback", message=message
    )


def test_only_stewards_have_a_correction_queue_and_only_of_their_datasets(world):
    correction = propose(world)
    elsewhere = make_oulad()  # another steward, of another dataset

    assert login(make_user()).get("/reviews/corrections/").status_code == 403
    assert login(make_user(Role.ANALYST)).get("/reviews/corrections/").status_code == 403
    other = login(elsewhere.steward)
    assert f"/reviews/corrections/{correction.pk}/" not in page(other, "/reviews/corrections/")
    assert other.get(f"/reviews/corrections/{correction.pk}/").status_code == 404
    assert (
        other.post(f"/reviews/corrections/{correction.pk}/", {"decision": "accept"}).status_code
        == 404
    )
    own = page(login(world.oulad.steward), "/reviews/corrections/")
    assert f"/reviews/corrections/{correction.pk}/" in own
    assert Correction.objects.get(pk=correction.pk).status == "open"


def test_the_navigation_offers_each_queue_to_whom_it_concerns(world):
    steward_nav = page(login(world.oulad.steward), "/")
    member_nav = page(login(world.board.members[0]), "/")
    learner_nav = page(login(world.user), "/")

    assert '<a href="/reviews/corrections/">Corrections</a>' in steward_nav
    assert '<a href="/reviews/objections/">Objections</a>' not in steward_nav
    assert '<a href="/reviews/objections/">Objections</a>' in member_nav
    assert '<a href="/reviews/corrections/">Corrections</a>' not in member_nav
    assert "/reviews/" not in learner_nav
    assert '<a href="/me/">My data</a>' in learner_nav
    assert '<a href="/me/">My data</a>' not in steward_nav


def test_a_decided_correction_keeps_both_values_in_its_history(world):
    correction = propose(world)
    steward = login(world.oulad.steward)

    steward.post(
        f"/reviews/corrections/{correction.pk}/", {"decision": "accept", "reason": "Right."}
    )

    history = list(Correction.history.filter(id=correction.pk).order_by("history_date"))
    assert [h.status for h in history] == ["open", "accepted"]
    assert history[-1].history_user == world.oulad.steward
    assert (history[-1].current_value, history[-1].proposed_value) == ("Fail", "Pass")
    again = steward.post(
        f"/reviews/corrections/{correction.pk}/", {"decision": "decline", "reason": "No."}
    )
    assert "This correction was already accepted." in html.unescape(again.content.decode())
    assert Correction.objects.get(pk=correction.pk).status == "accepted"


def test_only_committee_members_have_an_objection_queue_and_only_of_their_committees(world):
    objection = services.objection_file(
        actor=world.user,
        person=world.person,
        kind="objection",
        message="Not for me.",
        request_id=world.grant.request_id,
    )
    outsider_board = make_board(is_default=False)

    assert login(make_user()).get("/reviews/objections/").status_code == 403
    assert login(world.oulad.steward).get("/reviews/objections/").status_code == 403
    outsider = login(outsider_board.members[0])
    assert f"/reviews/objections/{objection.pk}/" not in page(outsider, "/reviews/objections/")
    assert outsider.get(f"/reviews/objections/{objection.pk}/").status_code == 404
    assert (
        outsider.post(f"/reviews/objections/{objection.pk}/", {"answer": "Fine."}).status_code
        == 404
    )
    assert Objection.objects.get(pk=objection.pk).status == "open"

    chair = login(world.board.chair)
    assert f"/reviews/objections/{objection.pk}/" in page(chair, "/reviews/objections/")
    chair.post(f"/reviews/objections/{objection.pk}/", {"answer": "We stopped it."})
    answered = Objection.objects.get(pk=objection.pk)
    assert (answered.status, answered.answered_by) == ("answered", world.board.chair)
    assert [
        h.status for h in Objection.history.filter(id=objection.pk).order_by("history_date")
    ] == [
        "open",
        "answered",
    ]


def test_the_queues_run_a_fixed_number_of_queries(world):
    steward, member = login(world.oulad.steward), login(world.board.members[0])
    propose(world)
    feedback(world)
    counts = {}
    for client, path in [(steward, "/reviews/corrections/"), (member, "/reviews/objections/")]:
        client.get(path)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        counts[path] = len(captured.captured_queries)

    # More people asking, about more fields, some answered already.
    for index, (user, person) in enumerate(
        [(world.other_user, world.other_person), (world.user, world.person)]
    ):
        propose(world, "Withdrawn", person=person, user=user, field="final_result")
        add_records(world.oulad, person.external_id, 1)
        propose(world, "Scotland", person=person, user=user, field="region")
        feedback(world, f"Feedback {index}", person=person, user=user)
    first = Correction.objects.order_by("pk").first()
    services.correction_decline(actor=world.oulad.steward, correction=first, reason="No.")

    for client, path in [(steward, "/reviews/corrections/"), (member, "/reviews/objections/")]:
        with CaptureQueriesContext(connection) as captured:
            body = page(client, path)
        assert len(captured.captured_queries) == counts[path], path
        if "corrections" in path:
            links = set(re.findall(r'href="/reviews/corrections/(\d+)/"', body))
            assert len(links) == Correction.objects.count() == 5
        else:
            links = set(re.findall(r'href="/reviews/objections/(\d+)/"', body))
            assert len(links) == Objection.objects.count() == 3
