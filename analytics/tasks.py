"""Periodic jobs of the request-to-grant flow, run by Celery beat.

Each task loads nothing itself but calls one service, attributing any history to
the system account. Every one is idempotent: a second run (or a redelivery) finds
nothing left to do, so beat may run them as often as it likes.
"""

from __future__ import annotations

import logging

from celery import shared_task

from governance import jobs
from governance.management.base import system_user

from . import access, services
from .models import ExtractFile

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def grants_expire_task() -> int:
    """Mark grants past their end date expired (access checks never wait for this)."""
    return services.grants_expire(actor=system_user())


@shared_task(acks_late=True, reject_on_worker_lost=True)
def grants_warn_expiring_task() -> int:
    """Tell grantees and chairs, once, about grants ending within 14 days."""
    return services.grants_warn_expiring()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def obligations_flag_overdue_task() -> int:
    """Flag obligations past due, once, and tell their owner and the chair."""
    return services.obligations_flag_overdue(actor=system_user())


# --- prepared extracts ----------------------------------------------------------------

EXTRACT_PROGRESS_TTL = 24 * 3600


def extract_progress_key(extract_id: int) -> str:
    return f"extract-file:{extract_id}:progress"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def extract_prepare_task(self, extract_id: int) -> None:
    """Write a large extract to a file its owner downloads later. Safe to run twice and
    to die: the extract is claimed first (governance/jobs.py), so a redelivery of a
    finished or live extract does nothing, and its read is logged once per file."""
    extract = jobs.job_claim(ExtractFile, extract_id)
    if extract is None:
        return
    key = extract_progress_key(extract.pk)

    def progress(rows: int, total: int) -> None:
        jobs.progress_set(key, {"rows": rows, "total": total}, EXTRACT_PROGRESS_TTL)

    with jobs.heartbeat(extract, eager=self.request.is_eager):
        try:
            services.extract_file_prepare(extract=extract, progress=progress)
        except jobs.ClaimLost:
            pass  # another worker owns it now
        except Exception as exc:
            denied = isinstance(exc, access.AccessDenied)
            if not denied:
                logger.exception("extract %s failed", extract_id)
            reason = str(exc) if denied else "The extract stopped; retry."
            jobs.job_fail(extract, reason=reason)
            jobs.progress_set(key, {"error": reason}, EXTRACT_PROGRESS_TTL)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def extracts_purge_task() -> int:
    """Delete the files of prepared extracts past their 24 hours (idempotent).

    The ExtractFile row stays (who prepared what, when); only the data goes."""
    from django.utils import timezone

    from .models import ExtractFile

    purged = 0
    for extract in ExtractFile.objects.filter(expires_at__lte=timezone.now()).exclude(file=""):
        extract.file.delete(save=False)
        extract.file = ""
        extract.save(update_fields=["file"])
        purged += 1
    return purged
