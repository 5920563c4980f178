from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from muestra.audit.services import Checkpoint, CheckpointInvalid, audit_verify, checkpoint_read


class Command(BaseCommand):
    help = "Verifies the audit trail's hash chain and reports the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoints",
            metavar="FILE",
            help="lines printed by `audit_checkpoint` (one per line): each checkpointed entry must still be there",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoints = _read_checkpoints(Path(options["checkpoints"])) if options["checkpoints"] else []
        checked, broken = audit_verify(checkpoints=checkpoints)
        if broken is None:
            against = f", {len(checkpoints)} checkpoints held" if checkpoints else ""
            self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} entries verified{against}."))
            return
        raise CommandError(
            f"Audit trail broken at entry {broken.entry_id} (after {checked} good entries): {broken.problem}."
        )


def _read_checkpoints(path: Path) -> list[Checkpoint]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"Cannot read the checkpoints file {path}: {exc.strerror}.") from None
    checkpoints = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            checkpoints.append(checkpoint_read(line))
        except CheckpointInvalid:
            raise CommandError(
                f"Line {number} of {path} is not a checkpoint signed by this installation (altered, or taken "
                "with another SECRET_KEY)."
            ) from None
    return checkpoints
