"""In-app notifications, each also e-mailed exactly once, after the change commits."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from ..models import Notification


def notify(*, users: Iterable, key: str, subject: str, body: str = "", url: str = "") -> list[int]:
    """Tell each user about an event once: ``key`` names the event.

    Rule: a second call with the same key for the same user adds nothing, so a
    retried service or a redelivered task never notifies twice. The e-mails are sent
    by a Celery task enqueued when the surrounding transaction commits.
    """
    from ..tasks import notifications_deliver

    created = []
    for user in {u.pk: u for u in users if u is not None and u.is_active}.values():
        notification, made = Notification.objects.get_or_create(
            user=user, key=key, defaults={"subject": subject[:200], "body": body, "url": url}
        )
        if made:
            created.append(notification.pk)
    if created:
        transaction.on_commit(lambda: notifications_deliver.delay(created))
    return created


def notification_mark_read(*, user, notification: Notification) -> Notification:
    from django.utils import timezone

    if notification.user_id == user.pk and notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification
