from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from ...csvio import ImportRejected
from ...models import Dataset, LoadMode
from ...services.records import records_import
from ..base import ActorCommand


class Command(ActorCommand):
    help = "Load records into a dataset from a CSV file. Any bad row rejects the whole file."

    def add_arguments(self, parser):
        parser.add_argument("dataset", metavar="DATASET_SLUG")
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Swap the dataset's records for the file's in one transaction.",
        )
        super().add_arguments(parser)

    def handle(self, *args, **options):
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset with the slug {options['dataset']!r}")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        mode = LoadMode.REPLACE if options["replace"] else LoadMode.ADD
        try:
            with path.open("rb") as stream:
                load = records_import(
                    actor=self.actor(options),
                    dataset=dataset,
                    stream=stream,
                    file_name=path.name,
                    mode=mode,
                )
        except ImportRejected as rejected:
            lines = "\n".join(f"  {e}" for e in rejected.errors)
            raise CommandError(
                f"{path.name} was rejected; no rows were written:\n{lines}"
            ) from None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        verb = "replaced the records of" if mode == LoadMode.REPLACE else "added to"
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {load.rows} rows ({load.people_created} new "
                f"{'person' if load.people_created == 1 else 'people'}) and {verb} "
                f"{dataset.slug}; it now holds {load.dataset.record_count} records. "
                f"sha256 {load.checksum}"
            )
        )
