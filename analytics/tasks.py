"""Periodic jobs of the request-to-grant flow, run by Celery beat.

Each task loads nothing itself but calls one service, attributing any history to
the system account. Every one is idempotent: a second run (or a redelivery) finds
nothing left to do, so beat may run them as often as it likes.
"""

from __future__ import annotations

import logging
import tempfile

from celery import shared_task
from django.core.cache import cache
from django.core.files import File

from governance.management.base import system_user

from . import access, services
from .models import AccessKind, ExtractFile

logger = logging.getLogger(__name__)


class ExtractStatus:
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


@shared_task(acks_late=True)
def grants_expire_task() -> int:
    """Mark grants past their end date expired (access checks never wait for this)."""
    return services.grants_expire(actor=system_user())


@shared_task(acks_late=True)
def grants_warn_expiring_task() -> int:
    """Tell grantees and chairs, once, about grants ending within 14 days."""
    return services.grants_warn_expiring()


@shared_task(acks_late=True)
def obligations_flag_overdue_task() -> int:
    """Flag obligations past due, once, and tell their owner and the chair."""
    return services.obligations_flag_overdue(actor=system_user())


# --- prepared extracts ----------------------------------------------------------------

EXTRACT_PROGRESS_TTL = 24 * 3600
_PROGRESS_EVERY = 10_000


def extract_progress_key(extract_id: int) -> str:
    return f"extract-file:{extract_id}:progress"


@shared_task(acks_late=True)
def extract_prepare_task(extract_id: int) -> None:
    """Write a large extract to a file its owner downloads later. The grant is checked
    and the access event written (by the access layer) when the extract runs, not when
    it was asked for. Idempotent: a finished extract is left alone on redelivery."""
    extract = (
        ExtractFile.objects.select_related(
            "grant__request__purpose", "grant__decision", "dataset", "owner"
        )
        .filter(pk=extract_id)
        .first()
    )
    if extract is None or extract.status in (ExtractStatus.READY, ExtractStatus.FAILED):
        return
    key = extract_progress_key(extract.pk)
    try:
        scope = access.grant_scope(
            user=extract.owner, grant=extract.grant, dataset_slug=extract.dataset.slug
        )
        total = access.records_for(scope).count()
        cache.set(key, {"rows": 0, "total": total}, EXTRACT_PROGRESS_TTL)
        extract.status = ExtractStatus.RUNNING
        extract.save(update_fields=["status"])
        lines = reported = 0
        with tempfile.TemporaryFile() as spool:
            for chunk in access.extract_csv(scope, kind=AccessKind.DOWNLOAD):
                spool.write(chunk)
                lines += chunk.count(b"\n")
                if lines - reported >= _PROGRESS_EVERY:
                    reported = lines
                    cache.set(key, {"rows": lines - 1, "total": total}, EXTRACT_PROGRESS_TTL)
            spool.seek(0)
            name = f"grant-{extract.grant_id}-{extract.dataset.slug}.csv"
            extract.file.save(name, File(spool), save=False)
        extract.rows = max(lines - 1, 0)
        extract.status = ExtractStatus.READY
        extract.save(update_fields=["file", "rows", "status"])
        cache.set(key, {"rows": extract.rows, "total": total}, EXTRACT_PROGRESS_TTL)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, access.AccessDenied) else "the extract stopped."
        if not isinstance(exc, access.AccessDenied):
            logger.exception("extract %s failed", extract_id)
        extract.status = ExtractStatus.FAILED
        extract.save(update_fields=["status"])
        cache.set(key, {"error": reason}, EXTRACT_PROGRESS_TTL)


@shared_task(acks_late=True)
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
