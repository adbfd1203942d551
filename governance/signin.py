"""What a signed-in session must have: who needs two-factor authentication and whether
this session passed it, and the times a session's limits count from.

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

from .models import CommitteeMembership, Role
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
