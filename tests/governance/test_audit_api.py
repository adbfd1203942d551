"""The audit API: events with filters and cursor, object history, as-of, verification."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import Vote
from governance.audit import chain
from governance.models import Clearance, Person, Role
from governance.services import registry
from tests.consent.factories import make_subject_world
from tests.factories import make_purpose, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_subject_world(people=3)


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(make_user(Role.AUDITOR, clearance=Clearance.INTERNAL))
    return client


def test_events_with_filters_and_next_cursor(world, api):
    response = api.get("/api/v1/audit/events", {"kind": "vote"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next"}
    assert body["next"] is None
    assert len(body["results"]) == Vote.history.count()
    vote = body["results"][0]
    assert vote["kind"] == "vote" and vote["action"] == "created"
    assert vote["context_kind"] == "request"
    assert vote["context"] == world.grant.request.title
    assert vote["actor"] in {v.member.email for v in Vote.objects.all()}

    reads = api.get("/api/v1/audit/events", {"action": "accessed"}).json()["results"]
    assert [(r["kind"], r["object_kind"], r["object_id"]) for r in reads] == [
        ("access", "grant", world.grant.pk)
    ]
    assert reads[0]["actor"] == world.analyst.email


def test_following_next_walks_the_whole_timeline_once(world, api):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        body = api.get("/api/v1/audit/events", params).json()
        seen += [(r["kind"], r["cursor"], r["at"]) for r in body["results"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages >= 2
    assert len(seen) == len(set(seen))
    times = [datetime.datetime.fromisoformat(at) for _, _, at in seen]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "31/12/2024"}, "is not a valid “since” date"),
        ({"kind": "spaceship"}, "Unknown kind"),
        ({"actor": "nobody@example.org"}, "No user has the e-mail"),
        ({"cursor": "###"}, "bad cursor"),
    ],
)
def test_bad_filters_answer_400(api, params, message):
    response = api.get("/api/v1/audit/events", params)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_object_history_and_as_of(api):
    steward = make_user(Role.STEWARD, email="steward@example.org")
    purpose = make_purpose(steward, name="Old name")
    between = timezone.now()
    registry.purpose_update(actor=steward, purpose=purpose, name="New name")

    history = api.get(f"/api/v1/audit/objects/purpose/{purpose.pk}/history").json()
    assert history["kind"] == "purpose" and history["id"] == purpose.pk
    latest = history["results"][0]
    assert latest["action"] == "changed" and latest["actor"] == "steward@example.org"
    assert {"field": "name", "old": "Old name", "new": "New name"} in latest["changes"]

    url = f"/api/v1/audit/objects/purpose/{purpose.pk}/as-of"
    before = api.get(url, {"at": between.isoformat()}).json()
    assert before["exists"] is True and before["fields"]["name"] == "Old name"
    after = api.get(url, {"at": timezone.now().isoformat()}).json()
    assert after["fields"]["name"] == "New name"
    assert after["version_by"] == "steward@example.org"
    gone = api.get(url, {"at": (between - datetime.timedelta(days=1)).isoformat()}).json()
    assert gone["exists"] is False and "did not exist yet" in gone["message"]

    assert api.get(url).status_code == 400
    bad = api.get(url, {"at": "tomorrow"})
    assert bad.status_code == 400 and "is not a valid date and time" in bad.json()["message"]
    assert api.get("/api/v1/audit/objects/purpose/999999/history").status_code == 404
    assert api.get("/api/v1/audit/objects/spaceship/1/as-of", {"at": "2025-01-01"}).status_code == (
        404
    )


def test_history_redacts_person_names_below_personal_clearance(api):
    dpo = make_user(Role.DPO, clearance=Clearance.SPECIAL)
    person = Person.objects.create(external_id="X1", name="Grace Hopper", email="g@example.org")
    person.org_unit = "Navy"
    person.save()
    body = api.get(f"/api/v1/audit/objects/person/{person.pk}/history").json()
    values = [c["new"] for e in body["results"] for c in e["changes"]]
    assert "Grace Hopper" not in values and "Navy" not in values and "g@example.org" not in values
    assert "redacted" in values and "X1" in values
    not_an_auditor = APIClient()
    not_an_auditor.force_authenticate(dpo)
    assert (
        not_an_auditor.get(f"/api/v1/audit/objects/person/{person.pk}/history").status_code == 403
    )
    cleared = APIClient()
    cleared.force_authenticate(make_user(Role.AUDITOR, clearance=Clearance.PERSONAL))
    body = cleared.get(f"/api/v1/audit/objects/person/{person.pk}/history").json()
    assert "Grace Hopper" in [c["new"] for e in body["results"] for c in e["changes"]]


def test_only_auditors_and_administrators(world):
    anonymous = APIClient()
    assert anonymous.get("/api/v1/audit/events").status_code == 401
    analyst = APIClient()
    analyst.force_authenticate(world.analyst)
    assert analyst.get("/api/v1/audit/events").status_code == 403
    assert analyst.get("/api/v1/audit/verify").status_code == 403
    admin = APIClient()
    admin.force_authenticate(make_user(Role.ADMINISTRATOR))
    assert admin.get("/api/v1/audit/events").status_code == 200


def test_auditor_writes_nothing(world, api):
    before = Vote.history.count()
    response = api.post("/api/v1/audit/events", {"kind": "vote"}, format="json")
    assert response.status_code in (403, 405)
    assert Vote.history.count() == before


def test_verify_returns_the_latest_verification(world, api):
    nothing = api.get("/api/v1/audit/verify").json()
    assert nothing["ok"] is None and "No verification" in nothing["message"]
    chain.verify(triggered_by="web")
    body = api.get("/api/v1/audit/verify").json()
    assert body["ok"] is True
    assert body["triggered_by"] == "web"
    assert body["problems"] == []
    assert {"decision", "vote", "access", "consent"} <= set(body["heads"])
    assert body["entries"] >= Vote.objects.count()
