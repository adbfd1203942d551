"""Recompute every audit hash chain and count every audit table; exit 1 naming the first
broken entry of each chain and each table that lost rows."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...audit.chain import verify


def _read_heads(path: str) -> dict:
    """Published heads: the JSON ``verify_audit --heads`` printed (or just its "heads")."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        heads = data.get("heads", data)
        for name, head in heads.items():
            if not isinstance(head, dict) or not {"seq", "hash"} <= set(head):
                raise ValueError(f"chain {name!r} has no seq and hash")
            int(head["seq"])
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise CommandError(
            f"--expect {path}: not a heads file printed by verify_audit --heads ({exc})"
        ) from exc
    return heads


class Command(BaseCommand):
    help = (
        "Verify the hash chains of decisions, votes, consent changes and access events, "
        "and that no audit table (history, access log, chains) lost rows since the last "
        "intact verification. Exits 0 when all is intact, 1 naming the first broken entry "
        "of each broken chain and each table that lost rows. Each run is recorded and "
        "shown on auditors' dashboards."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--heads",
            action="store_true",
            help="Also print the latest head of each chain as JSON, for publishing "
            "somewhere the database's administrators cannot change.",
        )
        parser.add_argument(
            "--expect",
            metavar="FILE",
            help="Heads published earlier (a file printed by --heads): each must still be "
            "in its chain, unchanged, which even a rewrite of the whole chain cannot fake.",
        )

    def handle(self, *args, **options):
        expected = _read_heads(options["expect"]) if options["expect"] else None
        verification = verify(triggered_by="command", expected=expected)
        if options["heads"]:
            self.stdout.write(
                json.dumps(
                    {
                        "verified_at": timezone.localtime(verification.started_at).isoformat(),
                        "intact": verification.ok,
                        "heads": verification.heads,
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
        if not verification.ok:
            raise CommandError(
                "The audit trail has been tampered with:\n"
                + "\n".join(f"  - {p}" for p in verification.problems),
                returncode=1,
            )
        chains = ", ".join(f"{name} {head['seq']}" for name, head in verification.heads.items())
        message = (
            f"Audit chains intact: {verification.entries} entries checked ({chains}); "
            f"the {len(verification.watermarks)} audit tables kept every row."
        )
        (self.stderr if options["heads"] else self.stdout).write(message)
