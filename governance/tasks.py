"""Celery tasks: take ids, load, call a service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .csvio import ImportRejected, RowError
from .history import acting_as
from .models import LoadStatus, Notification, RecordLoad
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


@shared_task(acks_late=True)
def record_load_task(load_id: int) -> None:
    """Run an uploaded load. Idempotent: a finished load is left alone on redelivery."""
    load = RecordLoad.objects.select_related("dataset", "created_by").filter(pk=load_id).first()
    if load is None or load.is_finished:
        return
    key = load_progress_key(load.pk)
    try:
        total = _count_rows(load.file)
        cache.set(key, {"rows": 0, "total": total}, PROGRESS_TTL)

        def progress(rows: int) -> None:
            cache.set(key, {"rows": rows, "total": total}, PROGRESS_TTL)

        with load.file.open("rb") as stream:
            record_load_run(load=load, stream=stream, progress=progress)
        cache.set(key, {"rows": total, "total": total}, PROGRESS_TTL)
    except ImportRejected:
        pass  # recorded on the load by the service
    except Exception as exc:
        logger.exception("load %s failed", load_id)
        with acting_as(load.created_by):
            load.status = LoadStatus.FAILED
            load.errors = [RowError(0, None, f"the load stopped: {exc}").as_dict()]
            load.finished_at = timezone.now()
            load.save()


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
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


@shared_task(acks_late=True)
def audit_verify_task() -> bool:
    """Nightly: recompute every audit hash chain; the result shows on auditors'
    dashboards. Read-only apart from the verification row, so safe to run again."""
    from .audit.chain import verify

    verification = verify(triggered_by="beat")
    if not verification.ok:
        logger.error("audit chains broken: %s", "; ".join(verification.problems))
    return verification.ok
