"""Periodic jobs of the request-to-grant flow, run by Celery beat.

Each task loads nothing itself but calls one service, attributing any history to
the system account. Every one is idempotent: a second run (or a redelivery) finds
nothing left to do, so beat may run them as often as it likes.
"""

from __future__ import annotations

from celery import shared_task

from governance.management.base import system_user

from . import services


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
