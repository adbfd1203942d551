"""Test data built through the services, so tests see what users would create."""

from __future__ import annotations

import itertools
import time

import factory

from governance.models import Clearance, Person, Role, User
from governance.services import accounts, registry

_counter = itertools.count(1)
PASSWORD = "a-long-test-password"


def make_user(
    *roles: str,
    clearance: str = Clearance.INTERNAL,
    email: str | None = None,
    is_superuser: bool = False,
) -> User:
    email = email or f"user{next(_counter)}@example.org"
    return accounts.user_create(
        actor=None,
        email=email,
        password=PASSWORD,
        full_name=email.split("@")[0].title(),
        clearance=clearance,
        roles=roles,
        is_superuser=is_superuser,
    )


def make_purpose(actor: User, *, slug: str | None = None, **overrides):
    n = next(_counter)
    values = {
        "slug": slug or f"purpose-{n}",
        "name": f"Purpose {n}",
        "category": "course_improvement",
        "expected_benefit": "Better courses",
        "legal_basis": "legitimate_interest",
    } | overrides
    return registry.purpose_create(actor=actor, **values)


def make_dataset(steward: User, *, slug: str | None = None, fields=(), **overrides):
    """A dataset stewarded by ``steward``, with fields given as (name, type, sensitivity)."""
    n = next(_counter)
    values = {
        "slug": slug or f"dataset-{n}",
        "name": f"Dataset {n}",
        "lawful_basis": "legitimate_interest",
        "retention_days": 365,
        "status": "active",
        "stewards": [steward],
    } | overrides
    dataset = registry.dataset_create(actor=steward, **values)
    for position, spec in enumerate(fields):
        name, type_, sensitivity, *rest = spec
        registry.field_create(
            actor=steward,
            dataset=dataset,
            name=name,
            type=type_,
            sensitivity=sensitivity,
            position=position,
            **(rest[0] if rest else {}),
        )
    return dataset


def give_totp(user: User) -> str:
    """Activate an authenticator app (and recovery codes) for ``user`` as allauth does
    when the person scans the code; returns the app's secret."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


def totp_code(secret: str, *, at: float | None = None) -> str:
    """The code an authenticator app shows for ``secret`` at ``at`` (default now),
    computed with allauth's own TOTP functions."""
    from allauth.mfa import app_settings
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    moment = time.time() if at is None else at
    return format_hotp_value(hotp_value(secret, int(moment) // app_settings.TOTP_PERIOD))


def recovery_codes(user: User) -> list[str]:
    from allauth.mfa.models import Authenticator

    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    return authenticator.wrap().get_unused_codes()


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    external_id = factory.Sequence(lambda n: f"P{n:06d}")
    name = factory.Faker("name")


ALL_ROLES = [r.value for r in Role]
