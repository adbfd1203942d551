"""The nightly audit verification as a job: asked for once per message, run once."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from .. import jobs
from ..audit import chain
from ..models import AuditVerification, VerificationStatus


def audit_verification_request(*, task_key: str | None, triggered_by: str) -> AuditVerification:
    """The verification job asked for by one Celery message. Rule: one job per message
    (``task_key``), however often the broker delivers it."""
    if task_key:
        existing = AuditVerification.objects.filter(task_key=task_key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            return AuditVerification.objects.create(
                task_key=task_key, triggered_by=triggered_by, status=VerificationStatus.QUEUED
            )
    except IntegrityError:  # the same message, delivered twice at once
        return AuditVerification.objects.get(task_key=task_key)


def audit_verification_run(*, verification_id: int, eager: bool = False):
    """Claim the verification job and recompute every chain into it. Returns None when
    there was nothing to do (finished, or running under a live claim)."""
    verification = jobs.job_claim(AuditVerification, verification_id)
    if verification is None:
        return None
    with jobs.heartbeat(verification, eager=eager):
        chain.verify(triggered_by=verification.triggered_by, into=verification)
    verification.status = VerificationStatus.SUCCEEDED
    with transaction.atomic():
        jobs.job_hold(verification)  # still ours: a run given up for dead writes nothing
        verification.save()
    return verification
