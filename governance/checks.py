"""Deployment checks (``manage.py check --deploy``) for Custos's own settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def demo_settings_off(app_configs, **kwargs):
    """A demo setting never reaches a deployment."""
    errors = []
    if getattr(settings, "CUSTOS_DEMO_SKIP_MFA", False):
        errors.append(
            Error(
                "CUSTOS_DEMO_SKIP_MFA is on: nobody is asked for two-factor authentication, "
                "not even stewards, the DPO, auditors or administrators.",
                hint="It is a demo setting: set CUSTOS_DEMO_SKIP_MFA=false (it is on by "
                "default only with DJANGO_DEBUG on).",
                id="custos.E011",
            )
        )
    return errors
