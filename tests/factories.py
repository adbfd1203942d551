"""Test data built through the services, so tests see what users would create."""

from __future__ import annotations

import itertools

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


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    external_id = factory.Sequence(lambda n: f"P{n:06d}")
    name = factory.Faker("name")


ALL_ROLES = [r.value for r in Role]
