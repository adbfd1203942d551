from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """Analytics requests, review, grants and governed access (built from issue 3 on)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"
