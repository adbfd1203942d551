"""Shared by the commands that change data: every change is attributed to a login."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from ..models import User

SYSTEM_EMAIL = "system@custos.invalid"


def system_user() -> User:
    """The login that command-line changes are attributed to when no --as is given."""
    user, _ = User.objects.get_or_create(
        email=SYSTEM_EMAIL,
        defaults={"full_name": "Custos command line", "is_active": False},
    )
    if user.has_usable_password():
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


class ActorCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument(
            "--as",
            dest="actor",
            default=os.environ.get("CUSTOS_ACTOR"),
            metavar="EMAIL",
            help="The login recorded in history as having made the change "
            "(default: $CUSTOS_ACTOR, else the system account).",
        )

    def actor(self, options) -> User:
        email = options.get("actor")
        if not email:
            return system_user()
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise CommandError(f"--as {email}: no active login has that e-mail")
        return user
