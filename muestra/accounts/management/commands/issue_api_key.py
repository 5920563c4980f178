"""`python manage.py issue_api_key --lab <platform id> | --establishment <code> [--name NAME]`.

An operator at the server's console is trusted like the system itself, so the key is issued as `SYSTEM` (the audit
trail records "system"). The secret is printed once, alone on the last line, so `| tail -n 1` captures it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from muestra.accounts.scoping import SYSTEM
from muestra.accounts.services import api_key_issue
from muestra.core.errors import DomainError
from muestra.facilities.models import Establishment, Laboratory


class Command(BaseCommand):
    help = "Issue an API key scoped to one laboratory (its LIS) or one establishment. The key is shown only once."

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--lab", metavar="PLATFORM_ID", help="Platform id of the laboratory the key acts for.")
        scope.add_argument("--establishment", metavar="CODE", help="Code of the establishment the key acts for.")
        parser.add_argument("--name", default="", help="What the key is for, e.g. the LIS product (shown in admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        lab_id, est_code = options.get("lab"), options.get("establishment")
        # argparse enforces this from the shell; call_command() can still pass both or neither.
        if (lab_id is None) == (est_code is None):
            raise CommandError("Give exactly one of --lab or --establishment.")
        laboratory = establishment = None
        if lab_id is not None:
            laboratory = Laboratory.objects.filter(platform_id=_platform_id(lab_id)).first()
            if laboratory is None:
                raise CommandError(f"Unknown laboratory {lab_id!r} (give its platform id).")
            scope = f"laboratory {laboratory.platform_id} ({laboratory.name})"
            default_name = f"LIS {laboratory.name}"
        else:
            establishment = Establishment.objects.filter(code=str(est_code).strip()).first()
            if establishment is None:
                raise CommandError(f"Unknown establishment {est_code!r} (give its code).")
            scope = f"establishment {establishment.code} ({establishment.name})"
            default_name = f"System of {establishment.name}"
        try:
            key, secret = api_key_issue(
                actor=SYSTEM,
                name=options["name"] or default_name,
                laboratory=laboratory,
                establishment=establishment,
            )
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(f"API key {key.name!r} (prefix {key.prefix}) issued for {scope}.")
        self.stdout.write("It is shown only this once and cannot be recovered: store it now.")
        self.stdout.write("Send it as 'Authorization: Bearer <key>' to /api/v1/, or as 'ACCESSKEY: <key>' to /pntm/.")
        self.stdout.write(f"Revoke it with: python manage.py revoke_api_key {key.prefix}")
        self.stdout.write(secret)


def _platform_id(raw: str) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise CommandError(f"Unknown laboratory {raw!r}: a platform id is a number.") from None
