"""`python manage.py demo_info [--json]`: the demo logins, establishments and labs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from muestra.demo.seed import demo_info, demo_users
from muestra.demo.world import DEMO_PASSWORD

DEMO_ONLY = (
    f"DEMO ONLY: these accounts share the published password {DEMO_PASSWORD!r}. "
    "Never load the demo data into a production database."
)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


class Command(BaseCommand):
    help = "Show the demo logins (demo only: published password), establishments and laboratories."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print machine-readable JSON instead of tables.")

    def handle(self, *args: Any, **options: Any) -> None:
        info = demo_info()
        if not info["users"]:
            raise CommandError("No demo data here: run `python manage.py seed_demo` first.")
        if options["json"]:
            # stdout stays pure JSON for scripts; the warning goes to stderr.
            self.stderr.write(DEMO_ONLY)
            self.stdout.write(json.dumps(info, ensure_ascii=False, indent=2))
            return
        self.stdout.write(self.style.WARNING(DEMO_ONLY))
        self.stdout.write("")
        users = [(u.username, u.password, u.role, u.national_id, u.where) for u in demo_users()]
        for line in _table(("username", "password", "role", "national id", "where"), users):
            self.stdout.write(line)
        self.stdout.write("")
        establishments = [(e["code"], e["name"], ", ".join(str(i) for i in e["labs"])) for e in info["establishments"]]
        for line in _table(("establishment", "name", "sends to labs"), establishments):
            self.stdout.write(line)
        self.stdout.write("")
        for line in _table(("lab id", "name"), [(lab["id"], lab["name"]) for lab in info["labs"]]):
            self.stdout.write(line)
