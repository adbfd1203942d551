"""The auditor's workspace pages: timeline, filters, keyset pages, redaction, object
history, as-of, grants as of, CSV export and bad input."""

from __future__ import annotations

import datetime
import html
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import services as flow
from analytics.models import Vote
from consent import services as consent_services
from governance.audit import timeline
from governance.models import Clearance, Person, Role, Tag
from governance.services import registry
from tests.consent.factories import make_subject_world
from tests.factories import make_purpose, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_subject_world(people=3)


@pytest.fixture
def auditor():
    return make_user(Role.AUDITOR, clearance=Clearance.INTERNAL, email="auditor@example.org")


@pytest.fixture
def client(auditor):
    c = Client()
    c.force_login(auditor)
    return c


def _rows(response) -> list[str]:
    """Each table row of the page as plain text."""
    body = response.content.decode()
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r))).strip() for r in rows]


def _error(response) -> str:
    found = re.search(r'<li class="error">(.*?)</li>', response.content.decode(), flags=re.S)
    return html.unescape(found.group(1)) if found else ""


def test_timeline_shows_a_vote_by_its_member_with_the_request(world, client):
    request = world.grant.request
    member = world.board.chair
    response = client.get("/audit/", {"kind": "request", "object": request.pk})
    assert response.status_code == 200
    votes = [r for r in _rows(response) if "vote" in r and member.email in r]
    assert votes, _rows(response)
    assert request.title in votes[0]
    assert "created" in votes[0]
    # The request's own history, its decision, its grant and the reads through it too.
    text = " ".join(_rows(response))
    assert "decision" in text and "access through grant" in text


def test_only_auditors_and_administrators_see_the_workspace(world):
    analyst = Client()
    analyst.force_login(world.analyst)
    assert analyst.get("/audit/").status_code == 403
    assert "/audit/" not in analyst.get("/").content.decode()
    admin = Client()
    admin.force_login(make_user(Role.ADMINISTRATOR))
    assert admin.get("/audit/").status_code == 200
    assert 'href="/audit/"' in admin.get("/").content.decode()
    # Read-only: a post is refused and writes nothing.
    auditor = Client()
    auditor.force_login(make_user(Role.AUDITOR))
    before = Vote.history.count()
    assert auditor.post("/audit/", {"kind": "vote"}).status_code in (403, 405)
    assert Vote.history.count() == before


def test_filters_by_kind_actor_action_and_dates(world, auditor):
    viewer = auditor
    chair = world.board.chair

    def events(**params):
        filters = timeline.parse_filters(params)
        return timeline.timeline_page(viewer=viewer, filters=filters, size=500).events

    votes = events(kind="vote")
    assert votes and {e.kind.name for e in votes} == {"vote"}
    assert len(votes) == Vote.history.count()
    mine = events(actor=chair.email.upper())
    assert mine and {e.actor for e in mine} == {chair.email}
    reads = events(action="accessed")
    assert [e.kind.name for e in reads] == ["access"]
    assert reads[0].actor == world.analyst.email
    assert reads[0].object_id == world.grant.pk
    created = events(action="created", kind="vote")
    assert len(created) == len(votes)
    assert events(action="deleted", kind="vote") == []
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
    yesterday = (timezone.localdate() - datetime.timedelta(days=1)).isoformat()
    assert events(since=tomorrow) == []
    # The day before the oldest event (not "yesterday": rows an installation's data
    # migrations made may date from before midnight when the suite crosses it).
    oldest = min(e.when for e in events())
    day_before = (timezone.localtime(oldest).date() - datetime.timedelta(days=1)).isoformat()
    assert events(until=day_before) == []
    assert events(until=timezone.localtime(oldest).date().isoformat())
    assert len(events(since=yesterday, until=timezone.localdate().isoformat(), kind="vote")) == len(
        votes
    )
    grant_events = events(kind="grant", object=str(world.grant.pk))
    assert {e.kind.name for e in grant_events} == {"grant", "access"}


def test_page_two_continues_exactly_where_page_one_ended(world, auditor):
    # Rows sharing one timestamp across sources and within one: the cursor must still
    # neither skip nor repeat any.
    moment = timezone.now()
    for i in range(4):
        tag = Tag(name=f"tied-{i}")
        tag._history_date = moment
        tag.save()
    purpose = make_purpose(world.oulad.steward)
    purpose.name = "Tied purpose"
    purpose._history_date = moment
    purpose.save()

    filters = timeline.parse_filters({})
    everything = timeline.timeline_page(viewer=auditor, filters=filters, size=10_000).events
    keys = [(e.kind.name, e.id) for e in everything]
    assert len(keys) == len(set(keys)) > 40

    paged, cursor = [], None
    while True:
        page = timeline.timeline_page(
            viewer=auditor, filters=timeline.parse_filters({"cursor": cursor or ""}), size=7
        )
        paged += [(e.kind.name, e.id) for e in page.events]
        if page.next is None:
            break
        cursor = page.next
    assert paged == keys
    whens = [e.when for e in everything]
    assert whens == sorted(whens, reverse=True)


def test_page_two_link_on_the_page(world, client):
    first = client.get("/audit/")
    link = re.search(r'rel="next" href="\?([^"]*)"', first.content.decode())
    assert link, "a full first page links to the next"
    second = client.get("/audit/?" + html.unescape(link.group(1)))
    assert second.status_code == 200
    last_on_first = _rows(first)[-1]
    assert last_on_first not in _rows(second)[1:]


def _page_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/audit/")
    assert response.status_code == 200
    return len(queries)


def test_query_count_is_fixed_whatever_the_history(world, client):
    few = _page_queries(client)
    steward = world.oulad.steward
    for i in range(30):
        purpose = make_purpose(steward)
        registry.purpose_update(actor=steward, purpose=purpose, name=f"Renamed {i}")
        Tag.objects.create(name=f"tag-{i}")
    many = _page_queries(client)
    assert few == many
    # session, user, roles, navigation flags; the page; actors; labels
    assert many <= 7


def test_redaction_for_a_low_clearance_auditor(world, auditor):
    person = world.person
    person.name = "Ada Lovelace"
    person.email = "ada@example.org"
    person.save()
    field = world.oulad.field("final_result")  # personal
    record = person.records.get(dataset=world.oulad.dataset)
    held = record.values["final_result"]
    proposed = "Pass" if held != "Pass" else "Fail"
    correction = consent_services.correction_propose(
        actor=world.user,
        person=person,
        record=record,
        field=field,
        proposed_value=proposed,
        note="Wrong.",
    )
    low = Client()
    low.force_login(auditor)
    high_user = make_user(Role.AUDITOR, clearance=Clearance.PERSONAL)
    high = Client()
    high.force_login(high_user)

    page = low.get(f"/audit/objects/person/{person.pk}/").content.decode()
    assert "Ada Lovelace" not in page and "ada@example.org" not in page
    assert "redacted" in page and person.external_id in page
    assert "Ada Lovelace" in high.get(f"/audit/objects/person/{person.pk}/").content.decode()

    corrected = low.get(f"/audit/objects/correction/{correction.pk}/").content.decode()
    assert f"<ins>{proposed}</ins>" not in corrected and "redacted" in corrected
    assert "Ada Lovelace" not in corrected
    shown = high.get(f"/audit/objects/correction/{correction.pk}/").content.decode()
    assert f"<ins>{proposed}</ins>" in shown

    consent = person.consents.get()
    consent_page = low.get(f"/audit/objects/consent/{consent.pk}/").content.decode()
    assert "Ada Lovelace" not in consent_page and person.external_id in consent_page

    as_of = low.get(
        f"/audit/objects/person/{person.pk}/as-of/", {"at": timezone.now().isoformat()}
    ).content.decode()
    assert "Ada Lovelace" not in as_of and "redacted" in as_of

    export = b"".join(low.get("/audit/export.csv", {"kind": "person"}).streaming_content)
    assert b"Ada Lovelace" not in export and b"redacted" in export
    export = b"".join(high.get("/audit/export.csv", {"kind": "person"}).streaming_content)
    assert b"Ada Lovelace" in export


def test_object_history_shows_old_and_new_and_who(world, client):
    dpo = make_user(Role.DPO, clearance=Clearance.SPECIAL, email="dpo@example.org")
    policy = registry.policy_create(
        actor=dpo, slug="ethics", title="Ethics v1", body="Be good.", owner=dpo
    )
    registry.policy_update(actor=dpo, policy=policy, title="Ethics v2")
    response = client.get(f"/audit/objects/policy/{policy.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<del>Ethics v1</del> → <ins>Ethics v2</ins>" in body
    assert "dpo@example.org</strong> changed" in body
    assert "dpo@example.org</strong> created" in body
    # A vote's diff (its creation) with the member.
    vote = Vote.objects.filter(request=world.grant.request).first()
    vote_page = client.get(f"/audit/objects/vote/{vote.pk}/").content.decode()
    assert vote.member.email in vote_page and "Approve" in vote_page
    assert client.get("/audit/objects/policy/999999/").status_code == 404
    assert client.get("/audit/objects/nonsense/1/").status_code == 404


def test_as_of_before_and_after_a_change(world, client):
    steward = world.oulad.steward
    purpose = make_purpose(steward, name="Old name")
    between = timezone.now()
    registry.purpose_update(actor=steward, purpose=purpose, name="New name")
    after = timezone.now()
    url = f"/audit/objects/purpose/{purpose.pk}/as-of/"
    before_page = client.get(url, {"at": between.isoformat()}).content.decode()
    assert "Old name" in before_page and "New name" not in before_page
    after_page = client.get(url, {"at": after.isoformat()}).content.decode()
    assert "New name" in after_page and "Old name" not in after_page
    earlier = (between - datetime.timedelta(days=1)).isoformat()
    assert "did not exist yet" in client.get(url, {"at": earlier}).content.decode()


def test_grants_active_as_of_a_moment(world, client):
    grant = world.grant
    created = grant.history.earliest().history_date
    url = "/audit/grants/as-of/"
    before = client.get(url, {"at": (created - datetime.timedelta(seconds=1)).isoformat()})
    assert f"grant {grant.pk}<" not in before.content.decode()
    while_active = timezone.now()
    flow.grant_revoke(actor=world.board.chair, grant=grant, reason="Conditions broken.")
    during = client.get(url, {"at": while_active.isoformat()}).content.decode()
    assert f"grant {grant.pk}<" in during and grant.request.title in during
    assert world.analyst.email in during
    after = client.get(url, {"at": timezone.now().isoformat()}).content.decode()
    assert f"grant {grant.pk}<" not in after and "No grant was active then" in after
    # Outside its validity window (a date after it ends) it is not active either.
    later = (grant.valid_until + datetime.timedelta(days=1)).isoformat()
    assert f"grant {grant.pk}<" not in client.get(url, {"at": later}).content.decode()


def test_csv_export_has_header_lines_then_rows(world, client):
    response = client.get("/audit/export.csv", {"kind": "vote", "action": "created"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    headers = [line for line in lines if line.startswith("# ")]
    assert lines[: len(headers)] == headers and len(headers) >= 3
    assert any(line.startswith("# exported at: ") for line in headers)
    assert "# filters: kind=vote, action=created" in headers
    assert lines[len(headers)].startswith("at,action,kind")
    rows = lines[len(headers) + 1 :]
    assert len(rows) == Vote.history.count()
    assert all(",created,vote," in row for row in rows)
    member_emails = {v.member.email for v in Vote.objects.all()}
    assert {row.rsplit(",", 1)[1] for row in rows} == member_emails


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "is not a valid “since” date"),
        ({"until": "2025-02-30"}, "is not a valid “until” date"),
        ({"kind": "spaceship"}, "Unknown kind “spaceship”"),
        ({"actor": "nobody@example.org"}, "No user has the e-mail “nobody@example.org”"),
        ({"object": "3"}, "Choose a kind"),
        ({"kind": "vote", "object": "x"}, "is not an object id"),
        ({"action": "stolen"}, "Unknown action"),
        ({"cursor": "not-a-cursor"}, "bad cursor"),
        ({"since": "2025-03-02", "until": "2025-03-01"}, "must be after"),
    ],
)
def test_bad_filters_get_a_clear_message(client, params, message):
    response = client.get("/audit/", params)
    assert response.status_code == 400
    assert message in _error(response)
    export = client.get("/audit/export.csv", params)
    assert export.status_code == 400 and message in _error(export)


def test_bad_moments_get_a_clear_message(world, client):
    purpose = world.oulad.purpose
    response = client.get(f"/audit/objects/purpose/{purpose.pk}/as-of/", {"at": "soon"})
    assert response.status_code == 400 and "is not a valid date and time" in _error(response)
    grants = client.get("/audit/grants/as-of/", {"at": "2025-13-01"})
    assert grants.status_code == 400 and "is not a valid" in _error(grants)


def test_person_history_kind_is_filterable(world, auditor):
    filters = timeline.parse_filters({"kind": "person", "object": str(world.person.pk)})
    events = timeline.timeline_page(viewer=auditor, filters=filters).events
    assert events and all(e.object_id == world.person.pk or e.kind.name != "person" for e in events)
    assert Person.objects.filter(pk=world.person.pk).exists()
