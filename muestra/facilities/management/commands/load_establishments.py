"""`python manage.py load_establishments [--file PATH] [--update]`: load Chile's establishments (DEIS list).

Safe to run again: existing establishments are kept as they are unless --update is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from muestra.facilities.loaders import DEFAULT_FILE, EstablishmentFileError, load_establishments


class Command(BaseCommand):
    help = "Load the establishments of a CSV file (default: the DEIS list shipped with Muestra). Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="CSV file (code,name,type,...)")
        parser.add_argument(
            "--update", action="store_true", help="also refresh name, type, comuna and public flag of existing ones"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            report = load_establishments(path, update=options["update"])
        except EstablishmentFileError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.skipped[:50]:
            self.stderr.write(f"skipped {line}")
        if len(report.skipped) > 50:
            self.stderr.write(f"... and {len(report.skipped) - 50} more skipped")
        self.stdout.write(
            self.style.SUCCESS(
                f"Establishments: {report.created} created, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped."
            )
        )
