"""`python manage.py revoke_api_key <prefix>`: revoke an API key at once (a leaked key, a retired LIS)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from muestra.accounts.models import API_KEY_PREFIX, ApiKey
from muestra.accounts.scoping import SYSTEM
from muestra.accounts.services import api_key_revoke


def _prefix(raw: str) -> str:
    """The lookup prefix from "ab12cd34", "mst_ab12cd34" or a whole key "mst_ab12cd34_<secret>"."""
    parts = raw.strip().split("_")
    if parts[0] == API_KEY_PREFIX and len(parts) >= 2:
        return parts[1]
    return parts[0]


class Command(BaseCommand):
    help = "Revoke an API key, given its prefix (shown when issued and in the admin). Revoking twice is harmless."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="The key's prefix, e.g. ab12cd34 (or the whole key).")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = _prefix(options["prefix"])
        key = ApiKey.objects.select_related("laboratory", "establishment").filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"No API key with prefix {prefix!r}.")
        if key.revoked_at is not None:
            self.stdout.write(f"API key {key.name!r} (prefix {key.prefix}) was already revoked at {key.revoked_at}.")
            return
        key = api_key_revoke(actor=SYSTEM, api_key_id=key.pk)
        place = key.laboratory or key.establishment
        self.stdout.write(self.style.SUCCESS(f"API key {key.name!r} (prefix {key.prefix}) of {place} revoked."))
