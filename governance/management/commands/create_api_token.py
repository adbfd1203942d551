from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from ...models import API_TOKEN_DEFAULT_DAYS, ApiTokenScope, User
from ...services.accounts import api_token_create
from ..base import ActorCommand


class Command(ActorCommand):
    help = "Create a personal API token for a login and print it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="command line")
        parser.add_argument(
            "--scope",
            choices=ApiTokenScope.values,
            default=ApiTokenScope.READ_WRITE,
            help="read: refused every write; read-write (the default): reads and writes.",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=API_TOKEN_DEFAULT_DAYS,
            help=f"How long the token works, 1 to 365 days (default {API_TOKEN_DEFAULT_DAYS}).",
        )
        super().add_arguments(parser)

    def handle(self, *args, **options):
        user = User.objects.filter(email__iexact=options["email"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active login has the e-mail {options['email']!r}")
        actor = user if not options.get("actor") else self.actor(options)
        try:
            _, secret = api_token_create(
                actor=actor,
                user=user,
                name=options["name"],
                scope=options["scope"],
                expires_in_days=options["days"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(secret)
