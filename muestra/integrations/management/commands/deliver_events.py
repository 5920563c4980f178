"""Sends the outbound deliveries that are due (for cron, or as a loop beside the task worker)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from muestra.integrations.outbound.services import deliveries_catch_up, deliveries_send


class Command(BaseCommand):
    help = (
        "Sends every due outbound delivery, in order per sample (docs/outbound.md). Run it from cron every minute, "
        "or with --loop beside the task worker. --catch-up first records deliveries missed for recent events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", type=float, default=0, help="Sweep again every this many seconds, forever.")
        parser.add_argument(
            "--catch-up",
            type=float,
            default=0,
            metavar="HOURS",
            help="First record the deliveries of the last HOURS of events that have none (idempotent).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["catch_up"]:
            since = timezone.now() - timedelta(hours=options["catch_up"])
            created = deliveries_catch_up(since=since)
            self.stdout.write(f"catch-up: {created} deliveries considered since {since.isoformat()}")
        while True:
            report = deliveries_send()
            self.stdout.write(
                f"delivered {report.delivered}, failed {report.failed}, dead {report.dead}"
                f" ({report.subscriptions} subscriptions{', more due' if report.more else ''})"
            )
            if not options["loop"]:
                return
            if not report.more:
                time.sleep(options["loop"])
