"""Logins, roles, the link between a login and a person, and API tokens."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..history import acting_as
from ..models import (
    API_TOKEN_DEFAULT_DAYS,
    API_TOKEN_MAX_DAYS,
    AccountEvent,
    AccountEventKind,
    ApiToken,
    ApiTokenScope,
    Clearance,
    Person,
    Role,
    User,
)

LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)
TOKEN_PREFIX = "cst_"  # noqa: S105 - a public prefix, not a secret


def roles_ensure() -> dict[str, Group]:
    """The role groups, created if missing (they are also made by a data migration)."""
    return {role.value: Group.objects.get_or_create(name=role.value)[0] for role in Role}


@transaction.atomic
def user_create(
    *,
    actor,
    email: str,
    password: str | None,
    full_name: str = "",
    clearance: str = Clearance.INTERNAL,
    roles: Iterable[str] = (),
    is_superuser: bool = False,
) -> User:
    """Create a login. Rule: a person with the same e-mail is linked to it."""
    user = User(
        email=User.objects.normalize_email(email).lower(),
        full_name=full_name,
        clearance=clearance,
        is_superuser=is_superuser,
        is_staff=is_superuser or Role.ADMINISTRATOR in roles,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    with acting_as(actor or user):
        user.save()
        user_set_roles(actor=actor or user, user=user, roles=roles)
        person = Person.objects.filter(email__iexact=user.email, user__isnull=True).first()
        if person is not None:
            person.user = user
            person.save()
    return user


@transaction.atomic
def user_set_roles(*, actor, user: User, roles: Iterable[str]) -> bool:
    """Give the user exactly these roles. Administrators may use the Django admin."""
    groups = roles_ensure()
    wanted = {groups[Role(r).value].pk for r in roles}
    if set(user.groups.values_list("pk", flat=True)) == wanted:
        return False
    with acting_as(actor):
        user.groups.set(wanted)
        is_staff = user.is_superuser or groups[Role.ADMINISTRATOR].pk in wanted
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
    user.__dict__.pop("_custos_roles", None)
    return True


@transaction.atomic
def user_sign_out_everywhere(*, actor, user: User) -> User:
    """End every session of ``user``, in every browser, the caller's included.

    Rule: the time is part of the hash Django checks each session against
    (User._get_session_auth_hash), so every session made before it stops working,
    whether or not allauth recorded it; the sessions allauth did record are also
    deleted from the store so "Where you are signed in" lists none. The change is in
    the login's history, attributed to ``actor``, and so in the audit trail."""
    from allauth.usersessions.models import UserSession

    for session in UserSession.objects.filter(user=user):
        session.end()
    user.signed_out_everywhere_at = timezone.now()
    with acting_as(actor):
        user.save(update_fields=["signed_out_everywhere_at"])
    return user


@transaction.atomic
def person_link_user(*, actor, person: Person, user: User | None) -> Person:
    """Link a person to a login by hand (or unlink with ``None``)."""
    if user is not None and Person.objects.filter(user=user).exclude(pk=person.pk).exists():
        from django.core.exceptions import ValidationError

        raise ValidationError({"user": "That login is already linked to another person."})
    person.user = user
    person.full_clean()
    with acting_as(actor):
        person.save()
    return person


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenExpired(Exception):
    """A token that was valid but is past its expiry."""

    def __init__(self, token: ApiToken):
        super().__init__(f"token {token.prefix} expired at {token.expires_at}")
        self.expires_at = token.expires_at


@transaction.atomic
def api_token_create(
    *,
    actor,
    user: User,
    name: str,
    scope: str = ApiTokenScope.READ_WRITE,
    expires_in_days: int | None = None,
    expires_at: datetime.datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new personal token. The secret is returned once; only its hash is kept.

    Rule: a token either only reads (``read``) or reads and writes (``read-write``),
    and expires after 1 to 365 days: ``expires_in_days`` from now, or at
    ``expires_at``; 90 days when neither is given.
    """
    if expires_in_days is not None and expires_at is not None:
        raise ValidationError("Give either a number of days or an expiry date, not both.")
    now = timezone.now()
    if expires_at is None:
        days = API_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 1 <= days <= API_TOKEN_MAX_DAYS
        ):
            raise ValidationError(
                {"expires_in_days": f"A token lasts from 1 to {API_TOKEN_MAX_DAYS} days."}
            )
        expires_at = now + datetime.timedelta(days=days)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name or "API token",
        prefix=secret[:12],
        key_hash=_hash(secret),
        scope=scope,
        created_at=now,
        expires_at=expires_at,
    )
    token.full_clean()
    with acting_as(actor):
        token.save()
    return token, secret


@transaction.atomic
def api_token_revoke(*, actor, token: ApiToken) -> ApiToken:
    """Revoke a token; it stops working on the next request."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        with acting_as(actor):
            token.save()
    return token


def api_token_authenticate(secret: str) -> ApiToken | None:
    """The token, with its active user, that ``secret`` is; None if it is no token or is
    revoked. Raises ApiTokenExpired for a token past its expiry."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_hash(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.expires_at <= now:
        raise ApiTokenExpired(token)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # Not a governance change (the field is excluded from history), and written at
        # most once a minute so that reads stay reads.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


# --- sign-ins, lockouts and unlocks ---------------------------------------------------


@transaction.atomic
def account_event_record(
    *,
    actor,
    event: str,
    user: User | None = None,
    email: str = "",
    ip_address: str | None = None,
    method: str = "",
    detail: str = "",
) -> AccountEvent:
    """Write a sign-in, refused single sign-on, lockout or unlock to the audit trail.
    Rule: entries are only ever added (hash-chained, history-tracked, attributed to
    ``actor``, who may be nobody for a lockout)."""
    entry = AccountEvent(
        event=event,
        user=user,
        actor=actor,
        email=(email or (user.email if user else ""))[:254],
        ip_address=ip_address or None,
        method=method,
        detail=detail[:300],
    )
    entry.full_clean(exclude=["chain_seq", "chain_prev", "chain_hash"])
    with acting_as(actor):
        entry.save()
    return entry


@transaction.atomic
def lockout_lift(*, actor, account: str = "", address: str = "") -> int:
    """Lift the lock on a login (by its address as typed at sign-in) or on a network
    address: its counted failures are removed. Rule: each lifted lock is recorded with
    the administrator who lifted it. Returns how many counted attempts were removed."""
    from axes.utils import reset

    account = (account or "").strip().lower()
    address = (address or "").strip()
    if not account and not address:
        return 0
    removed = reset(username=account) if account else reset(ip=address)
    if removed:
        user = User.objects.filter(email__iexact=account).first() if account else None
        account_event_record(
            actor=actor,
            event=AccountEventKind.UNLOCKED,
            user=user,
            email=account,
            ip_address=address or None,
            detail=f"unlocked {account or 'network address ' + address}",
        )
    return removed
