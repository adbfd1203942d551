"""Celery tasks: take ids, load, call a service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from . import jobs
from .csvio import ImportRejected
from .models import Notification, RecordLoad
from .services.records import record_load_run

logger = logging.getLogger(__name__)
PROGRESS_TTL = 24 * 3600


def load_progress_key(load_id: int) -> str:
    return f"record-load:{load_id}:progress"


def _count_rows(file) -> int:
    """Data rows in an uploaded file (lines less the header), for the progress bar."""
    lines = 0
    with file.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def record_load_task(self, load_id: int) -> None:
    """Run an uploaded load. Safe to run twice and to die: it claims the load first
    (governance/jobs.py), so a redelivery of a finished, superseded or live load does
    nothing, and a dead worker's load is taken over once its heartbeat is stale."""
    load = jobs.job_claim(RecordLoad, load_id)
    if load is None:
        return
    key = load_progress_key(load.pk)
    with jobs.heartbeat(load, eager=self.request.is_eager):
        try:
            total = _count_rows(load.file)
            jobs.progress_set(key, {"rows": 0, "total": total}, PROGRESS_TTL)

            def progress(rows: int) -> None:
                jobs.progress_set(key, {"rows": rows, "total": total}, PROGRESS_TTL)

            with load.file.open("rb") as stream:
                record_load_run(load=load, stream=stream, progress=progress)
            jobs.progress_set(key, {"rows": total, "total": total}, PROGRESS_TTL)
        except (ImportRejected, jobs.ClaimLost):
            pass  # recorded on the load by the service, or no longer this worker's
        except Exception as exc:
            logger.exception("load %s failed", load_id)
            jobs.job_fail(load, reason=f"The load stopped: {exc}")


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def notifications_deliver(notification_ids: list[int]) -> int:
    """E-mail each notification not yet e-mailed. Idempotent: a redelivered task finds
    them marked and sends nothing; the row lock keeps two workers from both sending."""
    sent = 0
    for notification_id in notification_ids:
        with transaction.atomic():
            notification = (
                Notification.objects.select_for_update()
                .select_related("user")
                .filter(pk=notification_id, emailed_at__isnull=True)
                .first()
            )
            if notification is None:
                continue
            link = f"\n\n{settings.CUSTOS_SITE_URL}{notification.url}" if notification.url else ""
            send_mail(
                subject=f"[Custos] {notification.subject}",
                message=f"{notification.body}{link}",
                from_email=None,
                recipient_list=[notification.user.email],
            )
            notification.emailed_at = timezone.now()
            notification.save(update_fields=["emailed_at"])
            sent += 1
    return sent


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def audit_verify_task(self) -> bool | None:
    """Nightly: recompute every audit hash chain; the result shows on auditors'
    dashboards. The run is a job keyed by this message, so a redelivery of the same
    message runs it once (or takes it over when its worker died)."""
    from .services.verification import audit_verification_request

    verification = audit_verification_request(task_key=self.request.id, triggered_by="beat")
    return _verification_run(verification.pk, eager=self.request.is_eager)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def audit_verification_run_task(self, verification_id: int) -> bool | None:
    """Run one verification job (the sweeper requeues a dead one here)."""
    return _verification_run(verification_id, eager=self.request.is_eager)


def _verification_run(verification_id: int, *, eager: bool) -> bool | None:
    from .services.verification import audit_verification_run

    verification = audit_verification_run(verification_id=verification_id, eager=eager)
    if verification is None:
        return None
    if not verification.ok:
        logger.error("audit chains broken: %s", "; ".join(verification.problems))
    return verification.ok


@shared_task(acks_late=True, reject_on_worker_lost=True)
def jobs_sweep_task() -> dict[str, int]:
    """Every minute or so (beat): requeue, or fail with a reason, the jobs whose
    worker is gone, and resend the messages of jobs the broker lost."""
    return jobs.jobs_sweep()
