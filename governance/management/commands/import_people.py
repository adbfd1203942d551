from pathlib import Path

from django.core.management.base import CommandError

from ...csvio import ImportRejected
from ...services.people import people_import
from ..base import ActorCommand


class Command(ActorCommand):
    help = "Create or update people from CSV (external_id, name, email, org_unit), all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        super().add_arguments(parser)

    def handle(self, *args, **options):
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            with path.open("rb") as stream:
                result = people_import(actor=self.actor(options), stream=stream)
        except ImportRejected as rejected:
            lines = "\n".join(f"  {e}" for e in rejected.errors)
            raise CommandError(f"{path.name} was rejected; nobody was changed:\n{lines}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.linked} linked to logins."
            )
        )
