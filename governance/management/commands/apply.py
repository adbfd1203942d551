from pathlib import Path

from django.core.management.base import CommandError

from ...services.apply import ApplyError, ApplyRejected, apply_text
from ..base import ActorCommand


class Command(ActorCommand):
    help = "Register or update purposes, datasets and fields from a YAML file (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        super().add_arguments(parser)

    def handle(self, *args, **options):
        path: Path = options["file"]
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CommandError(f"{path}: no such file") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: not UTF-8 text") from exc
        try:
            outcomes = apply_text(text, actor=self.actor(options))
        except ApplyRejected as rejected:
            lines = "\n".join(f"  {path}: {e}" for e in rejected.errors)
            raise CommandError(f"{path} was not applied; nothing changed:\n{lines}") from None
        except ApplyError as error:
            raise CommandError(
                f"{path} was not applied; nothing changed:\n  {path}: {error}"
            ) from None
        for outcome in outcomes:
            self.stdout.write(str(outcome))
        if all(o.action == "unchanged" for o in outcomes):
            self.stdout.write(
                self.style.SUCCESS(
                    f"Nothing changed: {len(outcomes)} documents already up to date."
                )
            )
        else:
            changed = sum(o.action != "unchanged" for o in outcomes)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Applied {path}: {changed} of {len(outcomes)} documents changed."
                )
            )
