"""What a signed-in session must have: who needs two-factor authentication and whether
this session passed it, the times a session's limits count from, and the record of
every sign-in in the audit trail.

allauth keeps a list of the ways a session authenticated (password, then "mfa" with a
code, a recovery code or a security key; a passkey sign-in is one "mfa" entry). A
session "passed two-factor authentication" when that list has an "mfa" entry: allauth
adds it at sign-in, at re-authentication with a code, and (the receivers below) when
the person activates an authenticator app or adds a security key in this session.
"""

from __future__ import annotations

from allauth.account.authentication import (
    AUTHENTICATION_METHODS_SESSION_KEY,
    get_authentication_records,
)
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from django.utils import timezone

from .models import AccountEventKind, CommitteeMembership, Role, SignInMethod
from .permissions import has_role

# Roles whose pages are reached only after two-factor authentication.
MFA_ROLES = (Role.STEWARD, Role.COMMITTEE, Role.DPO, Role.AUDITOR, Role.ADMINISTRATOR)
# Authenticators that are a second factor by themselves (recovery codes back them up).
SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)

# Session keys: when the person signed in, and when the session was last renewed.
SIGNED_IN_KEY = "custos_signed_in_at"
SEEN_KEY = "custos_seen_at"


def mfa_required(user) -> bool:
    """Stewards, committee members (the role, or a seat on any committee), the DPO,
    auditors and administrators (the role, superusers and admin-site staff) must use
    two-factor authentication; learners and analysts may."""
    if not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, "_custos_mfa_required", None)
    if cached is None:
        cached = (
            user.is_staff
            or has_role(user, *MFA_ROLES)
            or CommitteeMembership.objects.filter(user=user).exists()
        )
        user._custos_mfa_required = cached
    return cached


def second_factors(user) -> list[str]:
    """The kinds of second factor the login has set up (``totp``, ``webauthn``)."""
    return sorted(
        set(
            Authenticator.objects.filter(user=user, type__in=SECOND_FACTORS).values_list(
                "type", flat=True
            )
        )
    )


def session_passed_mfa(request) -> bool:
    """Did this session authenticate with a second factor? Reads the session only."""
    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


def on_authenticator_added(sender, request, user, authenticator, **kwargs):
    """Activating an app (a correct code) or adding a key (a signed challenge) proves
    the factor in this session: no second prompt for a code right after."""
    if authenticator.type in SECOND_FACTORS and request is not None:
        record_authentication(
            request, user, "mfa", id=authenticator.pk, type=authenticator.type, activated=True
        )


def on_authenticator_removed(sender, request, user, authenticator, **kwargs):
    """With its last second factor gone, this session no longer counts as having passed
    two-factor authentication: a role that needs it is taken to set one up again."""
    if request is None or second_factors(user):
        return
    records = get_authentication_records(request, user)
    request.session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        record for record in records if record.get("method") != "mfa"
    ]


def on_user_logged_in(sender, request, user, **kwargs):
    """The session's 12-hour limit counts from now, its 30-minute limit from its last
    renewal (governance.middleware.SessionLimits)."""
    if request is None or not hasattr(request, "session"):
        return
    now = timezone.now().timestamp()
    request.session[SIGNED_IN_KEY] = now
    request.session[SEEN_KEY] = now


# --- every sign-in goes to the audit trail ----------------------------------------------
# However it happened (password on the sign-in page or the Django admin, single sign-on).
# Connected to Django's ``user_logged_in`` in ``GovernanceConfig.ready()``: infrastructure,
# like the lockout counting axes does on the same signals.

# allauth records the steps of a sign-in in the session before it logs the user in.
_ALLAUTH_STEPS = AUTHENTICATION_METHODS_SESSION_KEY
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
