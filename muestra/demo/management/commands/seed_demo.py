"""`python manage.py seed_demo`: the demo's places, logins and samples in every state.

Safe to run at every `make run`: the samples are created once; later runs only check the world is complete.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from muestra.core.errors import DomainError
from muestra.demo.seed import SeedingFailed, seed_demo


class Command(BaseCommand):
    help = "Create the demo data (demo only: published passwords). Running it again creates nothing new."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = seed_demo()
        except DomainError as exc:
            # A service refused a step of the story: the samples are written in one transaction, so nothing of
            # them was stored. The field errors say which rule refused it.
            details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or str(exc.message)
            raise CommandError(f"Seeding the demo failed ({type(exc).__name__}: {details}); no sample stored.") from exc
        except SeedingFailed as exc:
            raise CommandError(f"Seeding the demo failed ({exc}); no sample stored.") from exc
        if report.reference is not None:
            changed = sum(c.created + c.updated for c in report.reference.values())
            self.stdout.write(f"Reference data was missing and has been loaded ({changed} records).")
        if report.already_present:
            self.stdout.write("Demo data already present: nothing created.")
            return
        self.stdout.write(
            f"Demo data created: {report.samples_created} samples, {report.patients_created} patients, "
            f"{report.shipments_created} shipments, {report.events_created} events."
        )
        self.stdout.write("Samples per state: " + ", ".join(f"{s} {n}" for s, n in sorted(report.states.items())))
        self.stdout.write(self.style.SUCCESS("Done. `python manage.py demo_info` lists the demo logins."))
