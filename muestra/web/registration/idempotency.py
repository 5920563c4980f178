"""One registration per form, however often it is sent: the API's idempotency mechanism applied to a web form.

Each rendered form carries a fresh token in a hidden field. A submit runs, in one transaction, exactly what
`muestra.api.idempotency` does for an `Idempotency-Key`: insert the `IdempotencyRecord(principal, key)` row
*first* (the unique constraint makes a concurrent duplicate wait on PostgreSQL, or queue behind the IMMEDIATE
transaction on SQLite, and then fail on that insert), run the service, store the answer (where the browser was
sent) on the row, commit the row with the sample it describes. A double click, a reload of the POST or a retry
after a lost answer finds the row and is sent to the same confirmation; nothing is registered twice. A failure
(a refused registration) rolls the row back with everything else, so the corrected form may be sent again.

The body fingerprint leaves out the CSRF token (masked differently on each page view); the same token sent with
different content (the form of a registered sample, changed and sent again) is refused, never applied.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.core.errors import Conflict
from muestra.core.models import IdempotencyRecord

KEY_PREFIX = "web:"
MAX_TOKEN_LENGTH = 64
_IGNORED_FIELDS = {"csrfmiddlewaretoken"}


@dataclass(frozen=True)
class Outcome:
    location: str  # where the browser goes after the write
    replayed: bool


class _KeyTaken(Exception):
    pass


def form_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for name in sorted(request.POST.keys()):
        if name in _IGNORED_FIELDS:
            continue
        for value in request.POST.getlist(name):
            digest.update(json.dumps(["field", name, value]).encode())
    return digest.hexdigest()


def valid_token(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isalnum()


def submit_once(request: HttpRequest, actor: Actor, token: str, write: Callable[[], str]) -> Outcome:
    """Runs `write` (which returns the URL to go to) once per `token`; a repeat returns the first answer.

    Raises Conflict when the token was already used for a different form content, or is still being processed
    (a concurrent duplicate on a backend that does not make it wait); DomainErrors of `write` pass through and
    leave nothing stored."""
    principal = actor.label[:64]
    key = f"{KEY_PREFIX}{token}"
    path = request.path[:300]
    fingerprint = form_fingerprint(request)
    try:
        with transaction.atomic():
            try:
                record = IdempotencyRecord.objects.create(
                    principal=principal, key=key, method="POST", path=path, fingerprint=fingerprint
                )
            except IntegrityError as exc:
                raise _KeyTaken() from exc  # leaves the (now unusable) transaction, rolled back
            location = write()
            record.status_code = 303
            record.response_body = location.encode()
            record.content_type = "text/uri-list"
            record.save(update_fields=["status_code", "response_body", "content_type"])
            return Outcome(location, replayed=False)
    except _KeyTaken:
        stored = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
        if stored is None or stored.status_code is None:
            raise Conflict(
                _("This form is still being saved; wait a moment and look at your samples."),
                code="idempotency_key_in_use",
            ) from None
        if (stored.method, stored.path, stored.fingerprint) != ("POST", path, fingerprint):
            raise Conflict(
                _("This form was already saved. Its changes were not applied: register them from a new form."),
                code="idempotency_key_reused",
            ) from None
        return Outcome(bytes(stored.response_body or b"").decode(), replayed=True)
