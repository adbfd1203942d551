from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        # The sweeper (governance/jobs.py) recovers the jobs of every app that registers.
        from . import jobs
        from .models import AuditVerification, RecordLoad
        from .tasks import audit_verification_run_task, record_load_task

        jobs.register(RecordLoad, task=record_load_task)
        jobs.register(AuditVerification, task=audit_verification_run_task)
