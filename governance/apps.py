from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .signins import record_sign_in

        user_logged_in.connect(record_sign_in, dispatch_uid="custos-record-sign-in")
