"""The reviewers' pages: sign-off, votes, the decision, grants, the inbox and the rules.

Every flow goes through the web views as a user would, and checks what was (or was
not) written. The queues are also held to a fixed number of queries.
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import services
from analytics.models import (
    AnalyticsRequest,
    Decision,
    Grant,
    Obligation,
    RequestStatus,
    StewardSignoff,
    Vote,
)
from governance.models import Notification, Role, Rule
from governance.services import registry
from tests.factories import make_dataset, make_purpose, make_user

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(response) -> str:
    """The page's text with tags stripped and spaces collapsed, to match what users read."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


class World:
    """A steward's dataset, an analyst, a five-seat committee (quorum 3) and a DPO."""

    def __init__(self):
        self.steward = make_user(Role.STEWARD, clearance="personal")
        self.other_steward = make_user(Role.STEWARD)
        self.analyst = make_user(Role.ANALYST)
        self.outsider = make_user(Role.ANALYST)
        self.chair = make_user(Role.COMMITTEE)
        self.hr = make_user(Role.COMMITTEE)
        self.legal = make_user(Role.COMMITTEE)
        self.rep = make_user(Role.COMMITTEE)
        self.dpo = make_user(Role.DPO)
        self.committee = registry.committee_create(
            actor=self.dpo,
            slug="la-oversight",
            name="Learning Analytics Oversight Committee",
            quorum=3,
            rule="majority",
            is_default=True,
            members=[
                (self.chair, "chair"),
                (self.hr, "hr"),
                (self.legal, "legal"),
                (self.rep, "learner_representative"),
                (self.dpo, "data_protection"),
            ],
        )
        self.purpose = make_purpose(self.steward, name="Course improvement")
        self.dataset = make_dataset(
            self.steward,
            name="Module results",
            fields=[
                ("module", "category", "internal"),
                ("score", "integer", "personal"),
                ("region", "category", "internal"),
            ],
            purposes=[self.purpose],
            tags=["learning"],
        )
        self.members = [self.chair, self.hr, self.legal, self.rep]

    def request(self, *, requester=None, title="Which modules lose students?"):
        fields = list(self.dataset.fields.filter(name__in=["module", "score"]))
        return services.request_create(
            actor=requester or self.analyst,
            fields=fields,
            title=title,
            purpose=self.purpose,
            justification="Find the modules where learners drop out.",
            expected_benefit="Learners get better support where they struggle.",
            cohort=None,
            output_level="pseudonymised",
            starts_on=TODAY,
            ends_on=TODAY + datetime.timedelta(days=180),
        )

    def submitted(self, **kwargs) -> AnalyticsRequest:
        request = self.request(**kwargs)
        return services.request_submit(actor=request.requester, request=request)

    def in_review(self, **kwargs) -> AnalyticsRequest:
        request = self.submitted(**kwargs)
        services.signoff_record(
            actor=self.steward, request=request, dataset=self.dataset, approve=True, note="Fine."
        )
        request.refresh_from_db()
        return request

    def voted(self, voters, choice="approve", **kwargs) -> AnalyticsRequest:
        request = self.in_review(**kwargs)
        for member in voters:
            services.vote_cast(actor=member, request=request, choice=choice, rationale="Sound.")
        return request

    def approved(self) -> Grant:
        request = self.voted(self.members[:3])
        services.decision_record(
            actor=self.chair, request=request, outcome="approved", rationale="Agreed."
        )
        return Grant.objects.get(request=request)


@pytest.fixture
def world():
    return World()


# --- stewards -------------------------------------------------------------------------


def test_steward_signs_off_from_the_queue_and_the_committee_sees_the_request(world):
    request = world.submitted()
    steward = _client(world.steward)

    queue = steward.get("/reviews/stewards/")
    assert queue.status_code == 200
    assert request.title in _text(queue)
    assert f'href="/requests/{request.pk}/"' in queue.content.decode()
    assert f'href="/requests/{request.pk}/signoff/"' in queue.content.decode()

    form = steward.get(f"/requests/{request.pk}/signoff/")
    assert form.status_code == 200 and "Module results" in _text(form)

    response = steward.post(
        f"/requests/{request.pk}/signoff/",
        {"dataset": world.dataset.slug, "approve": "yes", "note": "Pseudonymised is fine."},
        follow=True,
    )
    assert response.redirect_chain[0] == (f"/requests/{request.pk}/", 302)
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_REVIEW
    signoff = StewardSignoff.objects.get(request=request)
    assert signoff.approve and signoff.steward == world.steward
    assert request.title not in _text(steward.get("/reviews/stewards/"))
    assert request.title in _text(_client(world.hr).get("/reviews/committee/"))


def test_a_steward_decline_returns_the_request_to_the_analyst(world):
    request = world.submitted()
    response = _client(world.steward).post(
        f"/requests/{request.pk}/signoff/",
        {"dataset": world.dataset.slug, "approve": "no", "note": "Scores are not needed."},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == RequestStatus.CHANGES_REQUESTED
    note = Notification.objects.get(user=world.analyst)
    assert "Scores are not needed." in note.body


def test_a_signoff_without_a_note_is_a_form_error_and_writes_nothing(world):
    request = world.submitted()
    response = _client(world.steward).post(
        f"/requests/{request.pk}/signoff/",
        {"dataset": world.dataset.slug, "approve": "yes", "note": "  "},
    )
    assert response.status_code == 200
    assert "required" in _text(response)
    assert not StewardSignoff.objects.exists()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED


def test_only_the_datasets_steward_signs_off(world):
    request = world.submitted()
    post = {"dataset": world.dataset.slug, "approve": "yes", "note": "ok"}
    # Another steward cannot even see the request; the analyst sees it but may not sign.
    assert (
        _client(world.other_steward).post(f"/requests/{request.pk}/signoff/", post).status_code
        == 404
    )
    assert _client(world.analyst).post(f"/requests/{request.pk}/signoff/", post).status_code == 403
    assert _client(world.analyst).get("/reviews/stewards/").status_code == 403
    assert not StewardSignoff.objects.exists()


# --- committee ------------------------------------------------------------------------


def test_members_vote_from_the_committee_queue(world):
    request = world.in_review()
    queue = _client(world.hr).get("/reviews/committee/")
    assert queue.status_code == 200
    assert f'href="/requests/{request.pk}/vote/"' in queue.content.decode()

    for member, choice in [(world.hr, "approve"), (world.legal, "approve_with_conditions")]:
        response = _client(member).post(
            f"/requests/{request.pk}/vote/", {"choice": choice, "rationale": "Clear benefit."}
        )
        assert response.status_code == 302 and response["Location"] == f"/requests/{request.pk}/"
    assert set(Vote.objects.values_list("member__email", "choice")) == {
        (world.hr.email, "approve"),
        (world.legal.email, "approve_with_conditions"),
    }
    row = re.search(
        rf"<tr>\s*<td><a href=\"/requests/{request.pk}/\">.*?</tr>",
        _client(world.chair).get("/reviews/committee/").content.decode(),
        re.DOTALL,
    ).group(0)
    assert "<td>2</td>" in row  # votes cast so far
    assert f'href="/requests/{request.pk}/decide/"' in row  # the chair may decide


def test_a_second_vote_is_rejected_with_the_reason_and_the_first_stands(world):
    request = world.in_review()
    member = _client(world.hr)
    member.post(f"/requests/{request.pk}/vote/", {"choice": "approve", "rationale": "Yes."})
    response = member.post(
        f"/requests/{request.pk}/vote/", {"choice": "reject", "rationale": "Changed my mind."}
    )
    assert response.status_code == 200
    assert "You have already voted in this round; your first vote stands." in _text(response)
    assert list(Vote.objects.values_list("choice", flat=True)) == ["approve"]


def test_a_vote_needs_a_rationale(world):
    request = world.in_review()
    response = _client(world.hr).post(
        f"/requests/{request.pk}/vote/", {"choice": "approve", "rationale": ""}
    )
    assert response.status_code == 200 and "This field is required." in _text(response)
    assert not Vote.objects.exists()


def test_the_requester_cannot_vote_even_as_a_committee_member(world):
    member_analyst = make_user(Role.ANALYST, Role.COMMITTEE)
    registry.committee_set_members(
        actor=world.dpo,
        committee=world.committee,
        members=[(m, "member") for m in world.members[1:]]
        + [(world.chair, "chair"), (member_analyst, "member")],
    )
    own = world.in_review(requester=member_analyst, title="My own request")
    other = world.in_review()
    vote = {"choice": "approve", "rationale": "Mine is good."}
    assert _client(member_analyst).post(f"/requests/{own.pk}/vote/", vote).status_code == 403
    assert _client(world.analyst).post(f"/requests/{other.pk}/vote/", vote).status_code == 403
    assert _client(world.analyst).get(f"/requests/{other.pk}/vote/").status_code == 403
    assert not Vote.objects.exists()


def test_a_non_member_cannot_vote(world):
    request = world.in_review()
    vote = {"choice": "approve", "rationale": "Looks fine."}
    # An analyst with no part in the request cannot see it; the steward sees it, may not vote.
    assert _client(world.outsider).post(f"/requests/{request.pk}/vote/", vote).status_code == 404
    assert _client(world.steward).post(f"/requests/{request.pk}/vote/", vote).status_code == 403
    assert _client(world.outsider).get("/reviews/committee/").status_code == 403
    assert not Vote.objects.exists()


def test_no_vote_after_the_decision(world):
    grant = world.approved()
    response = _client(world.rep).post(
        f"/requests/{grant.request_id}/vote/", {"choice": "reject", "rationale": "Too late."}
    )
    assert response.status_code == 403
    assert Vote.objects.filter(member=world.rep).count() == 0


# --- the chair's decision ---------------------------------------------------------------


def _decision_post(**overrides) -> dict:
    data = {
        "outcome": "approved",
        "rationale": "Clear benefit; pseudonymised output is not needed.",
        "aggregate_only": "on",
        "min_cohort": "15",
        "expires_on": (TODAY + datetime.timedelta(days=90)).isoformat(),
        "obligations-TOTAL_FORMS": "2",
        "obligations-INITIAL_FORMS": "0",
        "obligations-MIN_NUM_FORMS": "0",
        "obligations-MAX_NUM_FORMS": "20",
        "obligations-0-text": "",
        "obligations-0-owner": "",
        "obligations-0-due_on": "",
        "obligations-1-text": "",
        "obligations-1-owner": "",
        "obligations-1-due_on": "",
    }
    return data | overrides


def test_the_decision_page_shows_the_tally_and_what_it_supports(world):
    request = world.voted([world.hr, world.legal, world.rep])
    response = _client(world.chair).get(f"/requests/{request.pk}/decide/")
    assert response.status_code == 200
    text = _text(response)
    assert "3 of a quorum of 3 — quorum met" in text
    assert "Approved: supported" in text
    assert "Rejected: not supported" in text


def test_the_chair_decides_with_conditions_and_an_obligation(world):
    request = world.voted([world.hr, world.legal, world.rep])
    due = TODAY + datetime.timedelta(days=30)
    response = _client(world.chair).post(
        f"/requests/{request.pk}/decide/",
        _decision_post(
            **{
                "obligations-1-text": "Publish the aggregate findings to learners.",
                "obligations-1-owner": world.analyst.email.upper(),
                "obligations-1-due_on": due.isoformat(),
            }
        ),
    )
    assert response.status_code == 302 and response["Location"] == f"/requests/{request.pk}/"
    decision = Decision.objects.get(request=request)
    assert (
        decision.aggregate_only and decision.min_cohort == 15 and decision.decided_by == world.chair
    )
    assert list(Obligation.objects.values_list("text", "owner", "due_on")) == [
        ("Publish the aggregate findings to learners.", world.analyst.pk, due)
    ]
    grant = Grant.objects.get(decision=decision)
    assert grant.output_level == "aggregate" and grant.k == 15

    page = _client(world.analyst).get(f"/grants/{grant.pk}/")
    assert page.status_code == 200
    text = _text(page)
    assert "Minimum cohort k 15" in text
    assert "Output level Aggregate" in text
    assert "Aggregate only yes" in text
    assert f"{world.dataset.slug}.module" in text and "Personal" in text
    assert "Publish the aggregate findings to learners." in text
    assert "Revoke grant" not in text  # the grantee may not revoke


def test_a_decision_before_quorum_is_rejected_with_the_reason(world):
    request = world.voted([world.hr, world.legal])
    response = _client(world.chair).post(f"/requests/{request.pk}/decide/", _decision_post())
    assert response.status_code == 200
    assert "No quorum: 2 non-recused vote(s), 3 needed." in _text(response)
    assert not Decision.objects.exists() and not Grant.objects.exists()
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_REVIEW


def test_an_outcome_the_votes_do_not_support_is_rejected(world):
    request = world.voted([world.hr, world.legal, world.rep])
    response = _client(world.chair).post(
        f"/requests/{request.pk}/decide/", _decision_post(outcome="rejected")
    )
    assert response.status_code == 200
    assert "do not support “Rejected” under the majority rule" in _text(response)
    assert not Decision.objects.exists()


def test_an_unknown_obligation_owner_is_a_form_error_and_nothing_is_written(world):
    request = world.voted([world.hr, world.legal, world.rep])
    response = _client(world.chair).post(
        f"/requests/{request.pk}/decide/",
        _decision_post(
            **{
                "obligations-0-text": "Report back.",
                "obligations-0-owner": "nobody@example.org",
                "obligations-0-due_on": TODAY.isoformat(),
            }
        ),
    )
    assert response.status_code == 200
    assert "No active user has the e-mail address nobody@example.org." in _text(response)
    assert not Decision.objects.exists() and not Obligation.objects.exists()


def test_only_the_chair_decides(world):
    request = world.voted([world.hr, world.legal, world.rep])
    assert _client(world.hr).get(f"/requests/{request.pk}/decide/").status_code == 403
    assert (
        _client(world.hr).post(f"/requests/{request.pk}/decide/", _decision_post()).status_code
        == 403
    )
    assert _client(world.outsider).get(f"/requests/{request.pk}/decide/").status_code == 404
    assert not Decision.objects.exists()


# --- grants ---------------------------------------------------------------------------


def test_the_dpo_revokes_a_grant_with_a_reason(world):
    grant = world.approved()
    dpo = _client(world.dpo)
    assert "Revoke grant" in _text(dpo.get(f"/grants/{grant.pk}/"))

    blank = dpo.post(f"/grants/{grant.pk}/revoke/", {"reason": ""})
    assert blank.status_code == 200 and "This field is required." in _text(blank)
    grant.refresh_from_db()
    assert grant.status == "active"

    response = dpo.post(
        f"/grants/{grant.pk}/revoke/", {"reason": "Consent withdrawn."}, follow=True
    )
    assert response.redirect_chain[0] == (f"/grants/{grant.pk}/", 302)
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.revoked_by == world.dpo
    assert "Consent withdrawn." in _text(response)
    assert not grant.is_usable()


def test_the_grantee_and_members_may_not_revoke(world):
    grant = world.approved()
    assert (
        _client(world.analyst).post(f"/grants/{grant.pk}/revoke/", {"reason": "x"}).status_code
        == 403
    )
    assert _client(world.hr).post(f"/grants/{grant.pk}/revoke/", {"reason": "x"}).status_code == 403
    assert _client(world.outsider).get(f"/grants/{grant.pk}/").status_code == 404
    grant.refresh_from_db()
    assert grant.status == "active"


# --- inbox ----------------------------------------------------------------------------


def test_the_steward_finds_the_submission_in_the_inbox_and_marks_it_read(world):
    request = world.submitted()
    steward = _client(world.steward)
    assert re.search(r"Inbox\s*<span class=\"badge\">1", steward.get("/").content.decode())

    inbox = steward.get("/inbox/")
    assert inbox.status_code == 200
    assert f"unread Sign-off needed: {request.title}" in _text(inbox)
    note = Notification.objects.get(user=world.steward)
    assert f'href="/requests/{request.pk}/"' in inbox.content.decode()

    response = steward.post(f"/inbox/{note.pk}/read/")
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    note.refresh_from_db()
    assert note.read_at is not None
    after = steward.get("/inbox/")
    assert "unread" not in _text(after) and f"Sign-off needed: {request.title}" in _text(after)
    assert "Inbox</a>" in steward.get("/").content.decode()


def test_someone_elses_notification_is_404_and_stays_unread(world):
    world.submitted()
    note = Notification.objects.get(user=world.steward)
    assert _client(world.analyst).post(f"/inbox/{note.pk}/read/").status_code == 404
    assert _client(world.analyst).get(f"/inbox/{note.pk}/read/").status_code == 405
    note.refresh_from_db()
    assert note.read_at is None
    assert "Sign-off needed" not in _text(_client(world.analyst).get("/inbox/"))


def test_the_inbox_lists_newest_first(world):
    first = world.submitted(title="First request")
    second = world.submitted(title="Second request")
    Notification.objects.filter(url=f"/requests/{first.pk}/").update(
        created_at=timezone.now() - datetime.timedelta(hours=1)
    )
    text = _text(_client(world.steward).get("/inbox/"))
    assert text.index(second.title) < text.index(first.title)


# --- rules ----------------------------------------------------------------------------


def test_everyone_signed_in_reads_the_rules(world):
    response = _client(make_user()).get("/rules/")
    assert response.status_code == 200
    text = _text(response)
    assert "Learning data never serves performance management, recruitment or pay" in text
    assert '{"max_fields": 20}' in response.content.decode().replace("&quot;", '"')
    assert "/rules/minimisation/edit/" not in response.content.decode()
    assert Client().get("/rules/").status_code == 302


def test_the_dpo_edits_a_rule_and_history_records_it(world):
    rule = Rule.objects.get(slug="special-category")
    dpo = _client(world.dpo)
    form = dpo.get(f"/rules/{rule.slug}/edit/")
    assert form.status_code == 200 and "Timeline" in _text(form)
    response = dpo.post(
        f"/rules/{rule.slug}/edit/",
        {
            "severity": "block",
            "enabled": "on",
            "description": "No special data.",
            "parameters": "{}",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/rules/"
    rule.refresh_from_db()
    assert rule.severity == "block" and rule.description == "No special data."
    last = rule.history.latest()
    assert last.history_user == world.dpo and last.severity == "block"
    page = _text(dpo.get(f"/rules/{rule.slug}/edit/"))
    assert f"{world.dpo.email} changed rule" in page

    # The same values again write nothing.
    count = rule.history.count()
    dpo.post(
        f"/rules/{rule.slug}/edit/",
        {
            "severity": "block",
            "enabled": "on",
            "description": "No special data.",
            "parameters": "{}",
        },
    )
    assert rule.history.count() == count


def test_bad_rule_parameters_are_form_errors(world):
    rule = Rule.objects.get(slug="minimisation")
    dpo = _client(world.dpo)
    base = {"severity": "warn", "enabled": "on", "description": ""}
    for parameters, message in [
        ('{"max_fields": 20', "Enter a valid JSON."),
        ("[1, 2]", "Parameters must be a JSON object"),
        ('{"max_fields": "many"}', "'max_fields' must be a whole number of at least 1."),
        ('{"max_field": 5}', "Unknown parameter 'max_field'"),
    ]:
        response = dpo.post(f"/rules/{rule.slug}/edit/", base | {"parameters": parameters})
        assert response.status_code == 200, parameters
        assert message in _text(response).replace("&#x27;", "'"), parameters
    rule.refresh_from_db()
    assert rule.parameters == {"max_fields": 20} and rule.history.count() == 1


def test_only_the_dpo_edits_rules(world):
    rule = Rule.objects.get(slug="special-category")
    post = {"severity": "block", "enabled": "on", "description": "", "parameters": "{}"}
    for user in (world.chair, world.steward, world.analyst):
        assert _client(user).get(f"/rules/{rule.slug}/edit/").status_code == 403
        assert _client(user).post(f"/rules/{rule.slug}/edit/", post).status_code == 403
    rule.refresh_from_db()
    assert rule.severity == "warn"
    assert _client(world.dpo).get("/rules/no-such-rule/edit/").status_code == 404


# --- navigation -----------------------------------------------------------------------


def _nav(user) -> set[str]:
    html = _client(user).get("/").content.decode()
    main_nav = html[html.index('<nav aria-label="Main">') : html.index("</nav>")]
    return set(re.findall(r'href="[^"]*"[^>]*>([A-Za-z -]+?)\s*(?:<span|</a>)', main_nav))


def test_navigation_links_follow_roles_and_committee_seats(world):
    assert {"My requests", "Rules", "Inbox"} <= _nav(world.analyst)
    assert "Sign-offs" not in _nav(world.analyst) and "Committee" not in _nav(world.analyst)
    assert "Sign-offs" in _nav(world.steward) and "My requests" not in _nav(world.steward)
    assert "Committee" in _nav(world.hr) and "Committee" in _nav(world.dpo)
    assert "Committee" not in _nav(make_user(Role.COMMITTEE))  # the role alone, no seat


def test_navigation_query_count_does_not_grow_with_notifications(world, django_assert_num_queries):
    client = _client(world.steward)
    world.submitted(title="One")
    client.get("/")  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    for n in range(5):
        world.submitted(title=f"More {n}")
    with django_assert_num_queries(len(few.captured_queries)):
        page = _text(client.get("/"))
    assert "Inbox 6 unread" in page


# --- queries --------------------------------------------------------------------------


def test_steward_queue_query_count_does_not_grow(world, django_assert_num_queries):
    client = _client(world.steward)
    world.submitted(title="The first")
    client.get("/reviews/stewards/")
    with CaptureQueriesContext(connection) as few:
        first = client.get("/reviews/stewards/")
    assert "The first" in _text(first)
    for n in range(6):
        world.submitted(title=f"Queued {n}")
    with django_assert_num_queries(len(few.captured_queries)):
        many = client.get("/reviews/stewards/")
    assert _text(many).count("Sign off or decline") == 7


def test_committee_queue_query_count_does_not_grow(world, django_assert_num_queries):
    client = _client(world.chair)
    world.voted([world.hr], title="The first")
    client.get("/reviews/committee/")
    with CaptureQueriesContext(connection) as few:
        first = client.get("/reviews/committee/")
    assert "The first" in _text(first)
    for n in range(5):
        world.voted([world.hr, world.legal, world.rep], choice="reject", title=f"Queued {n}")
    with django_assert_num_queries(len(few.captured_queries)):
        many = client.get("/reviews/committee/")
    assert _text(many).count("Decide on Queued") == 5
    assert _text(many).count("Decide on") == 6
