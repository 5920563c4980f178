"""`manage.py hl7_listen --port 2575 --api-key-env MUESTRA_HL7_KEY`: an MLLP listener for a lab's LIS.

The LIS's messages are processed as if it had POSTed them to /api/v1/hl7 with the API key held in the named
environment variable (never on the command line, where `ps` shows it). See docs/hl7.md.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from muestra.accounts.scoping import Actor, actor_for_api_key
from muestra.accounts.services import api_key_authenticate
from muestra.integrations.hl7.mllp import MllpServer


class Command(BaseCommand):
    help = "Listens for HL7 v2 ORU^R01 messages over MLLP and answers with ACKs (the same processing as the API)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=2575)
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--api-key-env", required=True, help="Environment variable holding the lab's API key.")
        parser.add_argument("--language", default=settings.LANGUAGE_CODE, help="Language of the ACK texts.")

    def handle(self, *args: Any, **options: Any) -> None:
        raw_key = os.environ.get(options["api_key_env"], "")
        if not raw_key:
            raise CommandError(f"The environment variable {options['api_key_env']} is empty.")

        def actor() -> Actor | None:
            # Looked up per message (cached for seconds by the accounts service), so a revoked key stops working.
            key = api_key_authenticate(raw_key)
            return actor_for_api_key(key) if key is not None else None

        if actor() is None:
            raise CommandError("The API key is not valid.")
        server = MllpServer((options["host"], options["port"]), actor, language=options["language"])
        host, port = server.server_address[0], server.server_address[1]
        self.stdout.write(f"Listening for MLLP on {host!s}:{port}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
