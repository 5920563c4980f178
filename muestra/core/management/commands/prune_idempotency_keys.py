from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from muestra.core.services import IDEMPOTENCY_RETENTION, idempotency_records_prune


class Command(BaseCommand):
    help = "Deletes stored Idempotency-Key answers older than --days (default 7). Run it daily (cron or a task)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=IDEMPOTENCY_RETENTION.days)

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = idempotency_records_prune(older_than=timedelta(days=options["days"]))
        self.stdout.write(f"{deleted} idempotency record(s) older than {options['days']} days deleted.")
