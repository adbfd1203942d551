"""Background work of the consent app. Every task is idempotent under redelivery."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance.history import acting_as
from governance.management.base import system_user
from governance.services.notifications import notify

from .models import ConsentReceipt, ExportStatus, SubjectExport
from .signals import consent_withdrawn

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
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


@shared_task(acks_late=True)
def subject_export_task(export_id: int) -> None:
    """Write the subject access report (JSON and printable HTML) and tell the person.
    Idempotent: a finished export is left alone on redelivery."""
    from .report import render_html, report_json, subject_access_report

    with transaction.atomic(), acting_as(system_user()):
        export = (
            SubjectExport.objects.select_for_update(of=("self",))
            .select_related("person__user")
            .filter(pk=export_id, status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING])
            .first()
        )
        if export is None:  # finished already: a redelivery
            return
        export.status = ExportStatus.RUNNING
        export.save(update_fields=["status"])  # with its history row
    try:
        report = subject_access_report(person=export.person)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        export.json_file.save(
            f"subject-access-{stamp}.json", ContentFile(report_json(report)), save=False
        )
        export.html_file.save(
            f"subject-access-{stamp}.html", ContentFile(render_html(report).encode()), save=False
        )
        export.status = ExportStatus.READY
    except Exception:
        logger.exception("subject access export %s failed", export_id)
        # Half a report is no report: whichever file was written goes.
        export.json_file.delete(save=False)
        export.html_file.delete(save=False)
        export.status = ExportStatus.FAILED
        export.error = "The export could not be prepared; ask again, or tell the DPO."
    export.finished_at = timezone.now()
    with transaction.atomic(), acting_as(system_user()):
        export.save(update_fields=["json_file", "html_file", "status", "error", "finished_at"])
        if export.person.user is not None:
            ready = export.status == ExportStatus.READY
            notify(
                users=[export.person.user],
                key=f"export-finished:{export.pk}",
                subject="Your data export is ready" if ready else "Your data export failed",
                body=export.error,
                url=reverse("my-export"),
            )


@shared_task(acks_late=True)
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
