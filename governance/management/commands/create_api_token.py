from django.core.management.base import CommandError

from ...models import User
from ...services.accounts import api_token_create
from ..base import ActorCommand


class Command(ActorCommand):
    help = "Create a personal API token for a login and print it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="command line")
        super().add_arguments(parser)

    def handle(self, *args, **options):
        user = User.objects.filter(email__iexact=options["email"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active login has the e-mail {options['email']!r}")
        actor = user if not options.get("actor") else self.actor(options)
        _, secret = api_token_create(actor=actor, user=user, name=options["name"])
        self.stdout.write(secret)
