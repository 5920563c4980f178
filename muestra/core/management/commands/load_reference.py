"""`python manage.py load_reference`: load countries, profiles, territories and the test catalogue.

Safe to run on every deployment: a second run creates and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from muestra.core.reference import load_all


class Command(BaseCommand):
    help = "Load (or refresh) the reference data: countries, country profiles, territories and the test catalogue."

    def handle(self, *args: Any, **options: Any) -> None:
        report = load_all()
        width = max(len(kind) for kind in report)
        for kind, counts in report.items():
            self.stdout.write(f"{kind.ljust(width)}  {counts}")
        changed = sum(counts.created + counts.updated for counts in report.values())
        summary = f"Reference data loaded: {changed} record(s) created or updated."
        self.stdout.write(self.style.SUCCESS(summary))
