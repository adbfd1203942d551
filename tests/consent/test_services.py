"""Every rule of the consent services, as the people concerned would notice it: what a
person can give, withdraw, correct and object to; what stewards and committees can
answer; who is told; and that a refused act changes nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from analytics import access, disclosure
from analytics import services as analytics_services
from analytics.models import AccessEvent, AccessEventSubject
from consent import selectors, services
from consent.models import (
    Consent,
    ConsentReceipt,
    ConsentState,
    Correction,
    Objection,
    RequestStatus,
)
from consent.tasks import consent_withdrawn_task
from governance.models import Notification, Role
from governance.services import registry
from tests.analytics.factories import (
    approve,
    make_analyst,
    make_board,
    make_dpo,
    make_oulad,
    make_ready_request,
)
from tests.consent.factories import CONSENT_TEXT, make_subject_world, read
from tests.factories import make_purpose, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager():
    """Tasks enqueued after commit run in-process, whatever broker REDIS_URL names, so
    captured on_commit callbacks do the work a worker would."""
    from governance.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def world():
    return make_subject_world(people=6)


def receipts_of(person) -> int:
    return ConsentReceipt.objects.filter(person=person).count()


def consent_of(world) -> Consent:
    return Consent.objects.get(person=world.person, purpose=world.purpose)


def notices(user, prefix: str) -> list[Notification]:
    return list(Notification.objects.filter(user=user, key__startswith=prefix))


def canonical_sha256(content: dict) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --- consent ------------------------------------------------------------------------


def test_giving_consent_twice_is_refused_and_issues_no_receipt(world):
    before = consent_of(world)
    receipts = receipts_of(world.person)

    with pytest.raises(ValidationError, match="already given consent"):
        services.consent_give(actor=world.user, person=world.person, purpose=world.purpose)

    after = consent_of(world)
    assert receipts_of(world.person) == receipts
    assert (after.state, after.changed_at) == (before.state, before.changed_at)


def test_a_new_consent_text_flags_the_old_answer_and_giving_again_renews_it(world):
    registry.purpose_update(
        actor=world.oulad.steward,
        purpose=world.purpose,
        consent_text="You agree that tutors may contact you about your study records.",
    )
    world.purpose.refresh_from_db()
    assert world.purpose.consent_version == 2
    (row,) = [r for r in selectors.consents_for(person=world.person) if r.purpose == world.purpose]
    assert row.is_given and row.outdated

    receipt = services.consent_give(actor=world.user, person=world.person, purpose=world.purpose)

    consent = consent_of(world)
    assert (consent.state, consent.text_version) == (ConsentState.GIVEN, 2)
    assert consent.text_hash == hashlib.sha256(world.purpose.consent_text.encode()).hexdigest()
    assert receipt.content["previous_state"] == "given"
    assert receipt.content["consent_text"]["version"] == 2
    (row,) = [r for r in selectors.consents_for(person=world.person) if r.purpose == world.purpose]
    assert not row.outdated


def test_withdrawing_a_consent_never_given_is_refused_and_changes_nothing(world):
    other = make_purpose(
        world.oulad.steward, legal_basis="consent", consent_text="Research on your results."
    )
    receipts = receipts_of(world.person)

    with pytest.raises(ValidationError, match="nothing to withdraw"):
        services.consent_withdraw(actor=world.user, person=world.person, purpose=other)

    assert not Consent.objects.filter(person=world.person, purpose=other).exists()
    services.consent_withdraw(actor=world.user, person=world.person, purpose=world.purpose)
    with pytest.raises(ValidationError, match="nothing to withdraw"):
        services.consent_withdraw(actor=world.user, person=world.person, purpose=world.purpose)
    assert receipts_of(world.person) == receipts + 1
    assert consent_of(world).state == ConsentState.WITHDRAWN


def test_only_the_person_themselves_gives_or_withdraws(world):
    research = make_purpose(
        world.oulad.steward, legal_basis="consent", consent_text="Research on your results."
    )
    admin = make_user(Role.ADMINISTRATOR, is_superuser=True)
    for actor in (world.other_user, make_dpo(), admin):
        with pytest.raises(PermissionDenied):
            services.consent_withdraw(actor=actor, person=world.person, purpose=world.purpose)
        with pytest.raises(PermissionDenied):
            services.consent_give(actor=actor, person=world.person, purpose=research)
    assert consent_of(world).state == ConsentState.GIVEN
    assert not Consent.objects.filter(purpose=research).exists()
    assert receipts_of(world.person) == 1


def test_a_purpose_not_based_on_consent_has_no_consent_to_give(world):
    interest = make_purpose(world.oulad.steward, legal_basis="legitimate_interest")

    with pytest.raises(ValidationError, match="does not rest on consent"):
        services.consent_give(actor=world.user, person=world.person, purpose=interest)

    assert not Consent.objects.filter(purpose=interest).exists()


def test_the_receipt_says_who_what_which_text_and_is_hashed_as_canonical_json(world):
    receipt = services.consent_withdraw(
        actor=world.user, person=world.person, purpose=world.purpose
    )

    content = receipt.content
    assert content["format"] == "custos-consent-receipt/1"
    assert content["receipt_id"] == str(receipt.pk)
    assert content["organisation"]["name"] == settings.CUSTOS_ORGANISATION
    assert content["subject"] == {"external_id": world.person.external_id, "name": ""}
    assert content["changed_by"] == world.user.email
    assert content["purpose"]["slug"] == world.purpose.slug
    assert content["purpose"]["legal_basis"] == "consent"
    assert content["consent_text"] == {
        "version": 1,
        "sha256": hashlib.sha256(CONSENT_TEXT.encode()).hexdigest(),
    }
    assert (content["previous_state"], content["state"]) == ("given", "withdrawn")
    assert content["issued_at"] == consent_of(world).changed_at.isoformat()
    assert receipt.content_hash == canonical_sha256(content)
    first = ConsentReceipt.objects.filter(person=world.person).order_by("issued_at").first()
    assert (first.content["previous_state"], first.content["state"]) == ("not_asked", "given")
    assert first.content_hash == canonical_sha256(first.content)


def test_a_withdrawal_tells_each_active_grant_holder_once_and_a_redelivery_adds_nothing(
    world, django_capture_on_commit_callbacks
):
    board, analyst = world.board, world.analyst
    second = approve(make_ready_request(analyst, world.oulad), world.oulad, board)[1]
    other_analyst = make_analyst()
    approve(make_ready_request(other_analyst, world.oulad), world.oulad, board)
    revoked_holder = make_analyst()
    revoked = approve(make_ready_request(revoked_holder, world.oulad), world.oulad, board)[1]
    analytics_services.grant_revoke(
        actor=board.chair, grant=revoked.grants.get(), reason="Ended early."
    )
    elsewhere, other_oulad = make_analyst(), make_oulad()  # a grant for another purpose
    approve(make_ready_request(elsewhere, other_oulad), other_oulad, board)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        receipt = services.consent_withdraw(
            actor=world.user, person=world.person, purpose=world.purpose
        )
    assert callbacks, "the notice is sent by a task after commit"

    key = f"consent-withdrawn:{receipt.pk}"
    told = Notification.objects.filter(key=key)
    assert sorted(n.user_id for n in told) == sorted([analyst.pk, other_analyst.pk])
    notice = told.get(user=analyst)
    assert (
        f"grant {world.grant.pk}" in notice.body
        and f"grant {second.grants.get().pk}" in notice.body
    )
    assert world.person.external_id not in notice.subject + notice.body  # never says who

    consent_withdrawn_task.apply(args=[str(receipt.pk)])  # redelivered
    assert Notification.objects.filter(key=key).count() == 2


def test_the_next_extract_leaves_out_a_person_who_withdrew(world):
    services.consent_withdraw(actor=world.user, person=world.person, purpose=world.purpose)

    extract = read(world)

    event = AccessEvent.objects.filter(grant=world.grant).order_by("-at", "-id").first()
    included = set(
        AccessEventSubject.objects.filter(event=event).values_list("person_id", flat=True)
    )
    assert world.person.pk not in included and world.other_person.pk in included
    key = bytes(world.grant.pseudonym_key)
    pseudonyms = {row[0] for row in csv.reader(io.StringIO(extract.decode()))}
    assert access.pseudonym(key, world.person.external_id) not in pseudonyms
    assert access.pseudonym(key, world.other_person.external_id) in pseudonyms


# --- corrections --------------------------------------------------------------------


def my_record(world, person=None):
    return world.oulad.dataset.records.get(person=person or world.person)


def propose(world, field: str, value: str, note: str = "It is wrong.", **kwargs):
    return services.correction_propose(
        actor=kwargs.pop("actor", world.user),
        person=kwargs.pop("person", world.person),
        record=kwargs.pop("record", None) or my_record(world),
        field=world.oulad.field(field),
        proposed_value=value,
        note=note,
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("studied_credits", "sixty", "is not a whole number"),
        ("studied_credits", "60.5", "is not a whole number"),
        ("final_result", "Merit", "is not one of the allowed values"),
        ("studied_credits", " 60 ", "already held"),
        ("final_result", "Fail", "already held"),
    ],
)
def test_a_proposed_value_must_fit_the_field_and_differ_from_what_is_held(
    world, field, value, reason
):
    assert my_record(world).values["studied_credits"] == 60
    assert my_record(world).values["final_result"] == "Fail"

    with pytest.raises(ValidationError) as refused:
        propose(world, field, value)

    assert reason in " ".join(refused.value.message_dict["proposed_value"])
    assert not Correction.objects.exists()


def test_a_correction_needs_a_note_and_a_value_held_about_the_person(world):
    with pytest.raises(ValidationError) as refused:
        propose(world, "studied_credits", "90", note="  ")
    assert "note" in refused.value.message_dict
    with pytest.raises(PermissionDenied):
        propose(world, "studied_credits", "90", record=my_record(world, world.other_person))
    with pytest.raises(PermissionDenied):
        propose(world, "studied_credits", "90", actor=world.other_user)
    assert not Correction.objects.exists()


def test_accepting_a_correction_changes_the_record_and_history_keeps_old_and_new(world):
    correction = propose(world, "studied_credits", "90", note="I dropped a module.")
    assert notices(world.oulad.steward, "correction-proposed:")

    services.correction_accept(
        actor=world.oulad.steward, correction=correction, reason="Checked with the registry."
    )

    assert my_record(world).values["studied_credits"] == 90
    correction.refresh_from_db()
    assert correction.status == RequestStatus.ACCEPTED
    assert correction.decided_by == world.oulad.steward
    history = list(correction.history.order_by("history_date", "history_id"))
    assert [(h.status, h.history_user) for h in history] == [
        ("open", world.user),
        ("accepted", world.oulad.steward),
    ]
    assert (history[-1].current_value, history[-1].proposed_value) == (60, "90")
    (notice,) = notices(world.user, "correction-decided:")
    assert "accepted" in notice.subject and notice.body == "Checked with the registry."
    with pytest.raises(ValidationError, match="already accepted"):
        services.correction_decline(actor=world.oulad.steward, correction=correction, reason="x")


def test_a_correction_to_a_value_changed_meanwhile_is_not_accepted(world):
    correction = propose(world, "studied_credits", "90")
    record = my_record(world)
    record.values["studied_credits"] = 120
    record.save()

    with pytest.raises(ValidationError, match="changed since"):
        services.correction_accept(actor=world.oulad.steward, correction=correction)

    assert my_record(world).values["studied_credits"] == 120
    assert Correction.objects.get().status == RequestStatus.OPEN


def test_declining_needs_a_reason_and_tells_the_person(world):
    correction = propose(world, "final_result", "Pass")

    with pytest.raises(ValidationError) as refused:
        services.correction_decline(actor=world.oulad.steward, correction=correction, reason=" ")
    assert "reason" in refused.value.message_dict
    assert Correction.objects.get().status == RequestStatus.OPEN
    assert not notices(world.user, "correction-decided:")

    services.correction_decline(
        actor=world.oulad.steward, correction=correction, reason="The exam board confirmed it."
    )

    correction.refresh_from_db()
    assert (correction.status, correction.reason) == ("declined", "The exam board confirmed it.")
    assert my_record(world).values["final_result"] == "Fail"
    (notice,) = notices(world.user, "correction-decided:")
    assert "declined" in notice.subject and "exam board" in notice.body


def test_only_a_steward_of_the_dataset_decides_its_corrections(world):
    correction = propose(world, "final_result", "Pass")
    other_steward = make_oulad().steward

    for actor in (other_steward, world.analyst, world.user):
        with pytest.raises(PermissionDenied):
            services.correction_accept(actor=actor, correction=correction)
        with pytest.raises(PermissionDenied):
            services.correction_decline(actor=actor, correction=correction, reason="No.")

    assert Correction.objects.get().status == RequestStatus.OPEN
    assert my_record(world).values["final_result"] == "Fail"


def test_a_steward_cannot_decide_a_correction_to_their_own_data(world):
    registry.dataset_update(
        actor=world.oulad.steward,
        dataset=world.oulad.dataset,
        stewards=[world.oulad.steward, world.user],
    )
    correction = propose(world, "final_result", "Pass")

    with pytest.raises(PermissionDenied, match="your own data"):
        services.correction_accept(actor=world.user, correction=correction)

    assert Correction.objects.get().status == RequestStatus.OPEN
    assert not selectors.correction_queue(user=world.user).exists()
    assert selectors.correction_queue(user=world.oulad.steward).get() == correction


# --- objections and feedback --------------------------------------------------------


@pytest.fixture
def policy_board(world):
    """A second committee, now the default one; the world's request stays with its own."""
    registry.committee_update(actor=None, committee=world.board.committee, is_default=False)
    return make_board(is_default=True)


def test_an_objection_goes_to_the_committee_of_the_request_and_feedback_to_the_default(
    world, policy_board
):
    request = world.grant.request

    objection = services.objection_file(
        actor=world.user,
        person=world.person,
        kind="objection",
        request_id=request.pk,
        message="I did not expect my results to be read for this.",
    )
    feedback = services.objection_file(
        actor=world.user, person=world.person, kind="feedback", message="Say more in the policy."
    )

    assert (objection.committee, objection.request_title) == (world.board.committee, request.title)
    assert objection.request_id == request.pk
    assert (feedback.committee, feedback.request_id) == (policy_board.committee, None)
    for member in world.board.voters:
        assert notices(member, f"objection-filed:{objection.pk}")
        assert not notices(member, f"objection-filed:{feedback.pk}")
    assert notices(policy_board.chair, f"objection-filed:{feedback.pk}")
    assert set(selectors.objection_queue(user=world.board.chair)) == {objection}


def test_an_objection_must_name_a_use_that_read_my_data(world):
    """A request that read other people, but not me (I had withdrawn), is not mine to
    object to; nor is a made-up one."""
    later = approve(make_ready_request(world.analyst, world.oulad), world.oulad, world.board)[1]
    services.consent_withdraw(actor=world.user, person=world.person, purpose=world.purpose)
    scope = access.grant_scope(user=world.analyst, grant=later.grants.get())
    disclosure.aggregate(scope, ["code_module"])  # reads the others, not me

    for request_id in (later.pk, None, 999_999):
        with pytest.raises(ValidationError) as refused:
            services.objection_file(
                actor=world.user,
                person=world.person,
                kind="objection",
                request_id=request_id,
                message="Stop.",
            )
        assert "request_id" in refused.value.message_dict
    with pytest.raises(ValidationError):
        services.objection_file(
            actor=world.user, person=world.person, kind="complaint", message="Stop."
        )
    with pytest.raises(ValidationError):
        services.objection_file(actor=world.user, person=world.person, kind="feedback", message="")
    assert not Objection.objects.exists()
    services.objection_file(
        actor=world.other_user,
        person=world.other_person,
        kind="objection",
        request_id=later.pk,
        message="Stop.",
    )
    assert Objection.objects.count() == 1


def test_only_the_person_files_their_objections(world):
    with pytest.raises(PermissionDenied):
        services.objection_file(
            actor=world.other_user, person=world.person, kind="feedback", message="Hi."
        )
    assert not Objection.objects.exists()


def test_a_member_of_the_committee_answers_and_the_person_is_told(world):
    objection = services.objection_file(
        actor=world.user,
        person=world.person,
        kind="objection",
        request_id=world.grant.request.pk,
        message="Why pseudonymised and not aggregate?",
    )
    outsider = make_board(is_default=False).chair

    for actor in (outsider, world.analyst, world.user):
        with pytest.raises(PermissionDenied):
            services.objection_answer(actor=actor, objection=objection, answer="Because.")
    with pytest.raises(ValidationError):
        services.objection_answer(actor=world.board.chair, objection=objection, answer=" ")
    assert Objection.objects.get().status == RequestStatus.OPEN
    assert not notices(world.user, "objection-answered:")

    services.objection_answer(
        actor=world.board.members[0], objection=objection, answer="Tutors need the rows."
    )

    objection.refresh_from_db()
    assert objection.status == RequestStatus.ANSWERED
    assert objection.answered_by == world.board.members[0]
    (notice,) = notices(world.user, "objection-answered:")
    assert notice.body == "Tutors need the rows."
    with pytest.raises(ValidationError, match="already been answered"):
        services.objection_answer(actor=world.board.chair, objection=objection, answer="Again.")
    assert [h.history_user for h in objection.history.order_by("history_date", "history_id")] == [
        world.user,
        world.board.members[0],
    ]
