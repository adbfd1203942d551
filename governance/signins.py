"""Every sign-in goes to the audit trail, however it happened (password on the sign-in
page or the Django admin, single sign-on). Connected to Django's ``user_logged_in`` in
``GovernanceConfig.ready()``: infrastructure, like the lockout counting axes does on the
same signals."""

from __future__ import annotations

from .models import AccountEventKind, SignInMethod

# allauth records the steps of a sign-in in the session before it logs the user in.
_ALLAUTH_STEPS = "account_authentication_methods"
_METHODS = {"password": SignInMethod.PASSWORD, "socialaccount": SignInMethod.SSO}


def client_address(request) -> str | None:
    """The address axes counts failures by (so the trail and the locks agree)."""
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR") or None


def provider_name(provider_id) -> str:
    """The name people know a configured single sign-on provider by."""
    from django.conf import settings

    apps = settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}).get("APPS", [])
    names = {app.get("provider_id"): app.get("name") for app in apps}
    return names.get(provider_id) or str(provider_id or "single sign-on")


def _method(request) -> tuple[str, str]:
    steps = []
    session = getattr(request, "session", None)
    if session is not None:
        steps = session.get(_ALLAUTH_STEPS) or []
    if not steps:  # the Django admin's sign-in: a password, without allauth
        return SignInMethod.PASSWORD, ""
    first = steps[0] if isinstance(steps[0], dict) else {}
    method = _METHODS.get(first.get("method"), SignInMethod.OTHER)
    detail = f"through {provider_name(first.get('provider'))}" if method == SignInMethod.SSO else ""
    if any(isinstance(s, dict) and s.get("method") == "mfa" for s in steps[1:]):
        detail = (detail + " with a second factor").strip()
    return method, detail


def record_sign_in(sender, request, user, **kwargs):
    if request is None:
        return
    from .services.accounts import account_event_record

    method, detail = _method(request)
    account_event_record(
        actor=user,
        event=AccountEventKind.SIGNED_IN,
        user=user,
        ip_address=client_address(request),
        method=method,
        detail=detail,
    )
