from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from allauth.mfa import signals as mfa_signals
        from django.contrib.auth.signals import user_logged_in

        from . import checks, signin  # noqa: F401 - checks register themselves

        user_logged_in.connect(signin.on_user_logged_in, dispatch_uid="custos-signed-in-at")
        user_logged_in.connect(signin.record_sign_in, dispatch_uid="custos-record-sign-in")
        mfa_signals.authenticator_added.connect(
            signin.on_authenticator_added, dispatch_uid="custos-mfa-added"
        )
        mfa_signals.authenticator_removed.connect(
            signin.on_authenticator_removed, dispatch_uid="custos-mfa-removed"
        )

        # The sweeper (governance/jobs.py) recovers the jobs of every app that registers.
        from . import jobs
        from .models import AuditVerification, RecordLoad
        from .tasks import audit_verification_run_task, record_load_task

        jobs.register(RecordLoad, task=record_load_task)
        jobs.register(AuditVerification, task=audit_verification_run_task)

        from . import dbroles  # noqa: F401  (registers the database roles' deploy check)
