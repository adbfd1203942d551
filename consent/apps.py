from django.apps import AppConfig


class ConsentConfig(AppConfig):
    """Consents and the "my data" portal (built from issue 5 on)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "consent"

    def ready(self):
        # Exports are jobs the sweeper recovers (governance/jobs.py).
        from governance import jobs

        from .models import SubjectExport
        from .tasks import subject_export_task

        jobs.register(SubjectExport, task=subject_export_task)
