from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """Analytics requests, review, grants and governed access (built from issue 3 on)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"

    def ready(self):
        # The consent app asks "who used my data?" and announces withdrawals; this app
        # answers and listens (imports point one way: consent never imports analytics).
        from consent import uses
        from consent.signals import consent_withdrawn

        from .uses import AccessLogUses, notify_grant_holders

        uses.register(AccessLogUses())

        # Prepared extracts are jobs the sweeper recovers (governance/jobs.py).
        from governance import jobs

        from .models import ExtractFile
        from .tasks import extract_prepare_task

        jobs.register(ExtractFile, task=extract_prepare_task)
        consent_withdrawn.connect(notify_grant_holders, dispatch_uid="analytics-consent-withdrawn")
