"""Signals for the layers above consent (analytics listens; consent imports nothing of it)."""

from django.dispatch import Signal

# Sent by a Celery task after a withdrawal commits, with ``receipt`` (ConsentReceipt).
consent_withdrawn = Signal()
