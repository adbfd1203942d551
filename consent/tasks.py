"""Background work of the consent app. Every task is idempotent under redelivery."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import jobs

from .models import ConsentReceipt, SubjectExport
from .signals import consent_withdrawn

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def consent_withdrawn_task(receipt_id: str) -> None:
    """Tell the layers above that a consent was withdrawn (analytics notifies the holders
    of active grants for the purpose). Notifications are keyed by the receipt, so a
    redelivered task tells nobody twice."""
    receipt = (
        ConsentReceipt.objects.select_related("purpose", "person").filter(pk=receipt_id).first()
    )
    if receipt is not None:
        with transaction.atomic():
            consent_withdrawn.send(sender=ConsentReceipt, receipt=receipt)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def subject_export_task(self, export_id: int) -> None:
    """Write the subject access report (JSON and printable HTML) and tell the person.
    Safe to run twice and to die: the export is claimed first (governance/jobs.py), so
    a redelivery of a finished or live export does nothing, and the person is told once."""
    from .services import export_prepare

    export = jobs.job_claim(SubjectExport, export_id)
    if export is None:
        return
    with jobs.heartbeat(export, eager=self.request.is_eager):
        export_prepare(export=export)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def exports_purge_task() -> int:
    """Delete the files of exports older than CUSTOS_EXPORT_KEEP_DAYS (idempotent). The
    row stays, as the record that an export was made and when."""
    cutoff = timezone.now() - datetime.timedelta(days=settings.CUSTOS_EXPORT_KEEP_DAYS)
    purged = 0
    for export in SubjectExport.objects.filter(created_at__lte=cutoff).exclude(json_file=""):
        export.json_file.delete(save=False)
        export.html_file.delete(save=False)
        export.save(update_fields=["json_file", "html_file"])
        purged += 1
    return purged
