"""Periodic jobs (Celery beat) and e-mail delivery through a real worker.

The periodic tasks are run in-process with ``.apply()``, as beat's worker would run
them, after moving the clock forward. The delivery test uses the ``celery_worker``
fixture: a real worker on Redis when REDIS_URL is set, eager mode otherwise.
"""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from celery.signals import task_postrun
from django.conf import settings
from django.core import mail
from django.utils import timezone

from analytics import services
from analytics.models import AnalyticsRequest, Grant, GrantStatus, Obligation, RequestStatus
from analytics.services import ObligationInput
from analytics.tasks import (
    grants_expire_task,
    grants_warn_expiring_task,
    obligations_flag_overdue_task,
)
from governance.management.base import system_user
from governance.models import Notification
from governance.tasks import notifications_deliver

from .factories import (
    approve,
    make_analyst,
    make_board,
    make_dpo,
    make_oulad,
    make_ready_request,
    today,
)

DAY = datetime.timedelta(days=1)


@pytest.fixture
def travel(monkeypatch):
    """Move today's date (what the services and grants read) to ``day``."""

    def to(day: datetime.date):
        monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: day)

    return to


@pytest.fixture
def board(db):
    return make_board()


@pytest.fixture
def oulad(db):
    return make_oulad()


@pytest.fixture
def analyst(db):
    return make_analyst()


def run(task) -> int:
    """Run a periodic task as a worker would (through Celery), return its result."""
    return task.apply().get()


def notified(key: str) -> list[str]:
    return sorted(Notification.objects.filter(key=key).values_list("user__email", flat=True))


def test_beat_schedules_each_periodic_task():
    from governance.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled == {
        "analytics.tasks.grants_expire_task",
        "analytics.tasks.grants_warn_expiring_task",
        "analytics.tasks.obligations_flag_overdue_task",
        "analytics.tasks.extracts_purge_task",
        "consent.tasks.exports_purge_task",
        "governance.tasks.audit_verify_task",
        "governance.tasks.jobs_sweep_task",
    }
    assert scheduled <= set(app.tasks)


# --- grant expiry -------------------------------------------------------------------------


@pytest.mark.django_db
def test_grants_past_their_end_expire_and_a_second_run_changes_nothing(
    travel, analyst, oulad, board
):
    ending, _ = approve(
        make_ready_request(analyst, oulad), oulad, board, expires_on=today() + 5 * DAY
    )
    lasting, _ = approve(make_ready_request(analyst, oulad), oulad, board)
    assert run(grants_expire_task) == 0  # nothing has ended yet

    travel(today() + 6 * DAY)
    expired = run(grants_expire_task)

    assert expired == 1
    grant = Grant.objects.get(pk=ending.grant.pk)
    assert grant.status == GrantStatus.EXPIRED
    assert not grant.is_usable()
    assert grant.request.status == RequestStatus.EXPIRED
    assert Grant.objects.get(pk=lasting.grant.pk).status == GrantStatus.ACTIVE
    change = Grant.history.filter(id=grant.pk).latest("history_date", "history_id")
    assert (change.status, change.history_user) == (GrantStatus.EXPIRED, system_user())

    history = (Grant.history.count(), AnalyticsRequest.history.count())
    assert run(grants_expire_task) == 0
    assert (Grant.history.count(), AnalyticsRequest.history.count()) == history


@pytest.mark.django_db
def test_grants_ending_within_fourteen_days_are_warned_once(travel, analyst, oulad, board):
    soon, _ = approve(
        make_ready_request(analyst, oulad), oulad, board, expires_on=today() + 10 * DAY
    )
    approve(make_ready_request(analyst, oulad), oulad, board, expires_on=today() + 20 * DAY)

    run(grants_warn_expiring_task)
    run(grants_warn_expiring_task)

    key = f"grant:{soon.grant.pk}:expiring:{soon.grant.valid_until.isoformat()}"
    assert notified(key) == sorted([analyst.email, board.chair.email])
    assert Notification.objects.filter(key__contains=":expiring:").count() == 2


# --- overdue obligations --------------------------------------------------------------------


@pytest.mark.django_db
def test_overdue_obligations_are_flagged_once_to_the_owner_and_the_chair(
    travel, analyst, oulad, board
):
    owner = make_dpo()
    decision, _ = approve(
        make_ready_request(analyst, oulad),
        oulad,
        board,
        obligations=[
            ObligationInput("Publish the usage report", owner, today() + 3 * DAY),
            ObligationInput("Delete the extract", owner, today() + 30 * DAY),
        ],
    )
    late, later = decision.obligations.order_by("due_on")
    assert run(obligations_flag_overdue_task) == 0

    travel(today() + 4 * DAY)
    assert run(obligations_flag_overdue_task) == 1

    late.refresh_from_db()
    assert late.overdue_since == today()
    assert Obligation.objects.get(pk=later.pk).overdue_since is None
    assert notified(f"obligation:{late.pk}:overdue") == sorted([owner.email, board.chair.email])
    assert Obligation.history.filter(id=late.pk).latest("history_date").history_user == (
        system_user()
    )

    state = (Notification.objects.count(), Obligation.history.count())
    assert run(obligations_flag_overdue_task) == 0
    assert (Notification.objects.count(), Obligation.history.count()) == state


# --- e-mail delivery through the worker ---------------------------------------------------------


@pytest.fixture
def deliveries():
    """Counts the delivery tasks the worker (or eager mode) has finished."""
    finished = []
    lock = threading.Lock()

    def count(sender=None, **kwargs):
        if sender is not None and sender.name == notifications_deliver.name:
            with lock:
                finished.append(kwargs.get("task_id"))

    task_postrun.connect(count, weak=False)
    yield finished
    task_postrun.disconnect(count)


def wait_for(condition, *, timeout: float = 30.0, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_submission_emails_each_steward_once_even_if_delivery_runs_twice(
    celery_worker, deliveries
):
    make_board()
    oulad = make_oulad(stewards=2)
    analyst = make_analyst()
    request = make_ready_request(analyst, oulad)

    services.request_submit(actor=analyst, request=request)  # enqueues delivery on commit
    ids = list(
        Notification.objects.filter(key=f"request:{request.pk}:round:1:submitted").values_list(
            "pk", flat=True
        )
    )
    assert len(ids) == 2
    # The broker delivers the same task twice (a redelivery after a lost ack, say).
    notifications_deliver.delay(ids)
    notifications_deliver.delay(ids)
    wait_for(lambda: len(deliveries) >= 3, what="three deliveries to finish")

    assert len(mail.outbox) == len(oulad.stewards)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(s.email for s in oulad.stewards)
    assert all(m.subject == f"[Custos] Sign-off needed: {request.title}" for m in mail.outbox)
    assert not Notification.objects.filter(pk__in=ids, emailed_at__isnull=True).exists()
