from django.apps import AppConfig


class ConsentConfig(AppConfig):
    """Consents and the "my data" portal (built from issue 5 on)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "consent"
