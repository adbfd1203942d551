"""Logins, roles, the link between a login and a person, and API tokens."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from ..history import acting_as
from ..models import (
    AccountEvent,
    AccountEventKind,
    ApiToken,
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


@transaction.atomic
def api_token_create(*, actor, user: User, name: str) -> tuple[ApiToken, str]:
    """A new personal token. The secret is returned once; only its hash is kept."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name or "API token", prefix=secret[:12], key_hash=_hash(secret)
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


def api_token_authenticate(secret: str) -> User | None:
    """The active user a token belongs to, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_hash(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # Not a governance change (the field is excluded from history), and written at
        # most once a minute so that reads stay reads.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


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
