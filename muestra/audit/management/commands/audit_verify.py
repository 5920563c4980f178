from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from muestra.audit.services import audit_verify


class Command(BaseCommand):
    help = "Verifies the audit trail's hash chain and reports the first broken link."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_verify()
        if broken is None:
            self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} entries verified."))
            return
        raise CommandError(
            f"Audit trail broken at entry {broken.entry_id} (after {checked} good entries): {broken.problem}."
        )
