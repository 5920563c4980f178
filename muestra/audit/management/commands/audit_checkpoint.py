from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from muestra.audit.services import audit_checkpoint


class Command(BaseCommand):
    help = (
        "Prints a signed checkpoint of the audit trail's head, alone on its line. Keep these lines outside the "
        "database (another system, write-once storage): `audit_verify --checkpoints FILE` then also detects "
        "entries cut from the end of the trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--append", metavar="FILE", help="also append the line to FILE (created if missing)")

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = audit_checkpoint()
        line = checkpoint.token()
        if options["append"]:
            with Path(options["append"]).open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        self.stdout.write(line)
