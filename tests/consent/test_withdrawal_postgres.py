"""Issue 5's acceptance test, on PostgreSQL with a real Celery worker (REDIS_URL set).

A grant on a consent-based purpose is active and has read the person's records once.
The person withdraws (through the service, and through the web page's POST); the very
next extract leaves them out, and the grant holder is told exactly once, by the worker,
without being told who. Skipped on SQLite (see tests/conftest.py).
"""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest
from celery.signals import task_postrun
from django.urls import reverse

from analytics import access
from analytics.models import AccessEvent, AccessEventSubject
from consent import services
from consent.models import Consent, ConsentState
from consent.tasks import consent_withdrawn_task
from governance.models import Notification
from tests.consent.factories import make_subject_world, read

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 30.0


@pytest.fixture
def withdrawals_done():
    """Ids of the consent-withdrawn tasks the worker (or eager mode) has finished."""
    finished: list[str] = []
    lock = threading.Lock()

    def count(sender=None, **kwargs):
        if sender is not None and sender.name == consent_withdrawn_task.name:
            with lock:
                finished.append(kwargs.get("task_id"))

    task_postrun.connect(count, weak=False)
    yield finished
    task_postrun.disconnect(count)


def wait_for(condition, *, what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def pseudonyms_in(world, extract: bytes) -> set[str]:
    rows = list(csv.reader(io.StringIO(extract.decode())))
    assert rows[0][0] == "pseudonym"
    return {row[0] for row in rows[1:]}


def pseudonym_of(world, person) -> str:
    return access.pseudonym(bytes(world.grant.pseudonym_key), person.external_id)


def included(event: AccessEvent) -> set[int]:
    return set(AccessEventSubject.objects.filter(event=event).values_list("person_id", flat=True))


def withdrawal_notices(world):
    return Notification.objects.filter(user=world.analyst, key__startswith="consent-withdrawn:")


def check_withdrawal_took_effect(world, withdrawals_done, before: AccessEvent) -> Notification:
    """The read before the withdrawal included the person; the very next one does not,
    and the grant holder has exactly one notice about it."""
    assert world.person.pk in included(before)
    assert Consent.objects.get(person=world.person, purpose=world.purpose).state == (
        ConsentState.WITHDRAWN
    )

    extract = read(world)  # the very next read, straight after the withdrawal committed

    names = pseudonyms_in(world, extract)
    assert pseudonym_of(world, world.person) not in names
    assert pseudonym_of(world, world.other_person) in names
    after = AccessEvent.objects.latest("id")
    assert after.pk != before.pk
    assert world.person.pk not in included(after)
    assert world.other_person.pk in included(after)
    assert after.people == before.people - 1

    wait_for(lambda: len(withdrawals_done) >= 1, what="the worker to run the withdrawal task")
    notices = list(withdrawal_notices(world))
    assert len(notices) == 1, [n.subject for n in notices]
    # Nobody else was told: no other user holds a grant for the purpose.
    assert Notification.objects.filter(key=notices[0].key).count() == 1
    return notices[0]


def test_a_withdrawal_counts_from_the_next_extract_and_the_holder_is_told_once(
    celery_worker, withdrawals_done
):
    world = make_subject_world()
    before = AccessEvent.objects.latest("id")

    receipt = services.consent_withdraw(
        actor=world.user, person=world.person, purpose=world.purpose
    )

    notice = check_withdrawal_took_effect(world, withdrawals_done, before)
    assert notice.key == f"consent-withdrawn:{receipt.pk}"
    assert world.purpose.name in notice.subject
    assert f"grant {world.grant.pk}" in notice.body
    assert notice.url == reverse("grant-detail", args=[world.grant.pk])

    # The broker delivers the task again (a lost ack): still one notice.
    consent_withdrawn_task.delay(str(receipt.pk))
    wait_for(lambda: len(withdrawals_done) >= 2, what="the redelivered withdrawal task")
    assert withdrawal_notices(world).count() == 1


def test_the_holders_notice_does_not_say_who_withdrew(celery_worker, withdrawals_done):
    world = make_subject_world()
    # Give the person a name, so there is one that could leak.
    world.person.name = "Ada Quinlan"
    world.person.email = "ada.quinlan@example.org"
    world.person.save(update_fields=["name", "email"])

    services.consent_withdraw(actor=world.user, person=world.person, purpose=world.purpose)

    wait_for(lambda: len(withdrawals_done) >= 1, what="the worker to run the withdrawal task")
    notice = withdrawal_notices(world).get()
    text = f"{notice.subject}\n{notice.body}\n{notice.url}".lower()
    for identifying in [
        world.person.external_id,
        world.person.name,
        world.person.email,
        world.user.email,
        world.user.full_name,
        pseudonym_of(world, world.person),
        f"/{world.person.pk}/",
    ]:
        assert identifying.lower() not in text, identifying


def test_a_withdrawal_through_the_web_page_counts_from_the_next_extract(
    celery_worker, withdrawals_done, client
):
    world = make_subject_world()
    before = AccessEvent.objects.latest("id")
    client.force_login(world.user)
    url = reverse("consent-withdraw", args=[world.purpose.slug])

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert Consent.objects.get(person=world.person, purpose=world.purpose).state == (
        ConsentState.GIVEN
    ), "the confirmation page must not withdraw"

    response = client.post(url)
    assert response.status_code == 302, response.content[:500]

    check_withdrawal_took_effect(world, withdrawals_done, before)
