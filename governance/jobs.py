"""Jobs that survive a dying worker: claim, heartbeat, hold, fail, sweep, retry.

A job is a row a Celery task works on: a record load, a prepared extract, a subject
access export, an audit verification. Its task takes the row's id and, before doing
anything, *claims* it: under a row lock, ``queued`` becomes ``running`` with a fresh
claim token, the attempt counted and the time stamped. A task that finds the job
finished, superseded or running under a live claim does nothing, so a redelivered
message is harmless. While it works, a thread beats the job's heart every
``CUSTOS_JOB_HEARTBEAT_SECONDS``; the final write of the job checks, in the same
transaction and under the same lock, that the claim is still its own (``job_hold``),
so a worker that was given up for dead and comes back writes nothing.

The sweeper (``jobs_sweep``, on beat) finds running jobs whose heart stopped for more
than ``CUSTOS_JOB_STALE_SECONDS`` (the worker was killed, the pool process died, the
machine went away) and requeues them, or, after ``CUSTOS_JOB_MAX_ATTEMPTS`` claims,
marks them failed with a reason the owner reads on the job's page, with a Retry
button. It also sends again the message of a job queued for longer than
``CUSTOS_JOB_RESEND_SECONDS`` (a broker that restarted without its queue).

Apps register their job models in ``AppConfig.ready()`` (``register``); see
docs/tasks.md.
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# The apps whose tasks follow these rules (checked by tests/governance/test_jobs.py).
APPS = ("governance", "consent", "analytics")

QUEUED = "queued"
RUNNING = "running"
FAILED = "failed"


class ClaimLost(Exception):
    """The job is no longer this worker's: the sweeper gave it to another, or the
    owner's new upload superseded it. Whatever the worker wrote rolls back."""


class Job(models.Model):
    """The fields of a claimable job. The model also has ``status`` (whose choices
    include ``queued``, ``running`` and ``failed``) and sets ``job_what``, the words
    after "The worker stopped while"."""

    job_what: ClassVar[str] = "working on this"

    attempts = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="How many times a worker has claimed it."
    )
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    queued_at = models.DateTimeField(default=timezone.now, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Last sign of life of its worker."
    )
    failure_reason = models.CharField(
        max_length=500, blank=True, help_text="Why the job stopped, in words for its owner."
    )

    class Meta:
        abstract = True

    @property
    def can_retry(self) -> bool:
        """A job that stopped (not one whose input was refused) may be tried again."""
        return self.status == FAILED and bool(self.failure_reason)

    def job_actor(self):
        """Whom the history of the job's state changes is attributed to: the system
        account, unless the model names someone (a load names its uploader)."""
        from .management.base import system_user

        return system_user()

    def job_failed(self, reason: str) -> list[str]:
        """Record the failure on the job's own fields; return the fields changed.
        Models with more to say (a load's error list) extend this."""
        self.status = FAILED
        self.failure_reason = reason[:500]
        return ["status", "failure_reason"]


@dataclass(frozen=True)
class JobKind:
    model: type[Job]
    task: object  # the Celery task that runs one job, given its id


_kinds: dict[str, JobKind] = {}


def register(model: type[Job], *, task) -> None:
    """Make ``model``'s jobs visible to the sweeper, which requeues them with ``task``."""
    _kinds[model._meta.label] = JobKind(model=model, task=task)


def kinds() -> list[JobKind]:
    return list(_kinds.values())


def _kind(model) -> JobKind:
    return _kinds[model._meta.label]


def _stale_before() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(seconds=settings.CUSTOS_JOB_STALE_SECONDS)


def _acting_for(job: Job):
    """History rows of a job's state changes name ``job.job_actor()``."""
    from .history import acting_as

    return acting_as(job.job_actor())


def job_claim(model: type[Job], pk) -> Job | None:
    """Claim job ``pk`` for this worker, or return None when there is nothing to do.

    Rule: a queued job is claimed; a running job is claimed again only when its heart
    stopped longer than CUSTOS_JOB_STALE_SECONDS ago (its worker is gone); a finished,
    failed or superseded job, or one running under a live claim, is left alone."""
    now = timezone.now()
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=pk).first()
        if job is None:
            return None
        stale = job.status == RUNNING and (
            job.heartbeat_at is None or job.heartbeat_at < _stale_before()
        )
        if job.status != QUEUED and not stale:
            return None
        job.status = RUNNING
        job.attempts += 1
        job.claim_token = uuid.uuid4()
        job.claimed_at = job.heartbeat_at = now
        with _acting_for(job):
            job.save(
                update_fields=["status", "attempts", "claim_token", "claimed_at", "heartbeat_at"]
            )
    return job


def job_hold(job: Job) -> Job:
    """Lock the job's row inside the caller's transaction and check that the claim is
    still ``job``'s; raise ClaimLost if not. Call it in the transaction that writes
    the job's result, so the result and the claim commit (or roll back) together."""
    current = (
        type(job)
        .objects.select_for_update()
        .filter(pk=job.pk, status=RUNNING, claim_token=job.claim_token)
        .first()
    )
    if current is None:
        raise ClaimLost(f"{job._meta.verbose_name} {job.pk} is no longer this worker's")
    return current


def job_fail(job: Job, *, reason: str) -> bool:
    """Mark the job failed with ``reason`` if the claim is still ``job``'s. Rule: a
    worker that lost its claim does not overwrite its successor's state."""
    with transaction.atomic():
        try:
            current = job_hold(job)
        except ClaimLost:
            return False
        fields = current.job_failed(reason)
        if hasattr(current, "finished_at"):
            current.finished_at = timezone.now()
            fields.append("finished_at")
        with _acting_for(current):
            current.save(update_fields=fields)
    job.refresh_from_db()
    return True


def job_retry(job: Job) -> bool:
    """Queue a job that stopped again, with a fresh count of attempts. Rule: only a
    failed job with a stop reason (``can_retry``) is retried; anything else is left."""
    with transaction.atomic():
        current = type(job).objects.select_for_update().filter(pk=job.pk).first()
        if current is None or not current.can_retry:
            return False
        with _acting_for(current):
            _requeue(current, attempts=0)
    return True


def _requeue(job: Job, *, attempts: int | None = None) -> None:
    """Back to queued (inside the caller's transaction), its message sent on commit."""
    job.status = QUEUED
    job.claim_token = None
    job.failure_reason = ""
    job.queued_at = timezone.now()
    fields = ["status", "claim_token", "failure_reason", "queued_at"]
    if attempts is not None:
        job.attempts = attempts
        fields.append("attempts")
    if hasattr(job, "finished_at"):
        job.finished_at = None
        fields.append("finished_at")
    job.save(update_fields=fields)
    task, pk = _kind(type(job)).task, job.pk
    transaction.on_commit(lambda: task.delay(pk))


def stopped_reason(job: Job) -> str:
    return f"The worker stopped while {job.job_what}; retry."


def jobs_sweep() -> dict[str, int]:
    """Recover the jobs whose worker is gone. Rule: a running job whose heart stopped
    more than CUSTOS_JOB_STALE_SECONDS ago is requeued, or failed with a reason once it
    has been claimed CUSTOS_JOB_MAX_ATTEMPTS times; a job queued for more than
    CUSTOS_JOB_RESEND_SECONDS has its message sent again. Returns what it did."""
    done = {"requeued": 0, "failed": 0, "resent": 0}
    resend_before = timezone.now() - datetime.timedelta(seconds=settings.CUSTOS_JOB_RESEND_SECONDS)
    for kind in kinds():
        model = kind.model
        stale = model.objects.filter(status=RUNNING).filter(
            models.Q(heartbeat_at__lt=_stale_before()) | models.Q(heartbeat_at__isnull=True)
        )
        for pk in list(stale.values_list("pk", flat=True)):
            with transaction.atomic():
                job = (
                    model.objects.select_for_update()
                    .filter(pk=pk, status=RUNNING)
                    .filter(
                        models.Q(heartbeat_at__lt=_stale_before())
                        | models.Q(heartbeat_at__isnull=True)
                    )
                    .first()
                )
                if job is None:  # it came back to life, or another sweep got it
                    continue
                if job.attempts >= settings.CUSTOS_JOB_MAX_ATTEMPTS:
                    fields = job.job_failed(stopped_reason(job))
                    job.claim_token = None
                    fields.append("claim_token")
                    if hasattr(job, "finished_at"):
                        job.finished_at = timezone.now()
                        fields.append("finished_at")
                    with _acting_for(job):
                        job.save(update_fields=fields)
                    done["failed"] += 1
                else:
                    with _acting_for(job):
                        _requeue(job)
                    done["requeued"] += 1
                logger.warning("job %s %s: worker gone, %s", model._meta.label, pk, job.status)
        lost = model.objects.filter(status=QUEUED, queued_at__lt=resend_before)
        for pk in list(lost.values_list("pk", flat=True)):
            with transaction.atomic():
                job = (
                    model.objects.select_for_update()
                    .filter(pk=pk, status=QUEUED, queued_at__lt=resend_before)
                    .first()
                )
                if job is None:  # claimed meanwhile, or another sweep resent it
                    continue
                # queued_at moves on, so one lost message is sent once per period; saved
                # (not a queryset update) so the job's history names who resent it.
                job.queued_at = timezone.now()
                with _acting_for(job):
                    job.save(update_fields=["queued_at"])
                task = kind.task
                transaction.on_commit(lambda task=task, pk=pk: task.delay(pk))
                done["resent"] += 1
    return done


# --- progress ---------------------------------------------------------------------


def progress_set(key: str, value: dict, ttl: int) -> None:
    """Show a job's progress (in the cache, read by its page). Best effort: progress
    is for the eyes, and a broker/cache restart must not fail the job under it."""
    from django.core.cache import cache

    try:
        cache.set(key, value, ttl)
    except Exception:  # the cache's server is away; the next report will try again
        logger.warning("progress of %s not reported: the cache is unavailable", key)


# --- the heartbeat --------------------------------------------------------------------


def _beat(job: Job) -> bool:
    """One sign of life; False when the claim is no longer the job's.

    A plain UPDATE of one column: the heartbeat is a liveness signal, not a change of
    the job, so it is left out of the job's history (``excluded_fields``)."""
    return bool(
        type(job)
        .objects.filter(pk=job.pk, status=RUNNING, claim_token=job.claim_token)
        .update(heartbeat_at=timezone.now())
    )


@contextmanager
def heartbeat(job: Job, *, eager: bool = False):
    """Beat ``job``'s heart from a thread (with its own database connection) while the
    block runs. ``eager`` (a task run in the caller's process, as in a plain checkout)
    beats nothing: the job lives and dies with the request that runs it."""
    if eager or connection.vendor != "postgresql":
        yield
        return
    stop = threading.Event()

    def run():
        from django.db import connections

        try:
            while not stop.wait(settings.CUSTOS_JOB_HEARTBEAT_SECONDS):
                try:
                    if not _beat(job):
                        return  # the claim went elsewhere; job_hold will refuse the result
                except Exception:  # a dropped connection: try again next beat
                    logger.exception("heartbeat of %s %s", job._meta.label, job.pk)
                    connections.close_all()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=f"heartbeat-{job._meta.label}-{job.pk}")
    thread.daemon = True
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=settings.CUSTOS_JOB_HEARTBEAT_SECONDS + 5)
