"""`Idempotency-Key` for every write of /api/v1.

A LIS that loses the answer to a write (timeout, dropped connection) sends the same request again with the same
`Idempotency-Key` header, and must get the same answer without the write happening twice.

Usage: put `@idempotent` under the route decorator of a write endpoint::

    @router.post("/samples", response=...)
    @idempotent
    def sample_create(request, payload: SampleIn) -> Status: ...

Without the header the endpoint simply runs. With it:

1. Inside one transaction, a row `IdempotencyRecord(principal=actor.label, key)` is inserted *first*
   (`INSERT ... ON CONFLICT DO NOTHING`). The unique constraint on (principal, key) makes a concurrent duplicate
   wait for (PostgreSQL: blocks on the index entry; SQLite: BEGIN IMMEDIATE serialises writers) and then insert
   nothing, so two requests with the same key never both execute.
2. The endpoint runs in the same transaction; a 2xx answer is stored on the row (status, body, content type)
   and commits together with the write it describes: a stored answer always matches stored data.
3. When the key comes again: same method, path and body fingerprint -> the stored answer is replayed (header
   `Idempotent-Replayed: true`); anything different -> 422 `idempotency_key_reused`.

Error answers (4xx/5xx) are not stored: an error changes nothing (the services guarantee it, and the transaction
is rolled back here too, key row included), so a retry after fixing the cause may reuse the key.

The body fingerprint is SHA-256 over the JSON body in canonical form (key order and whitespace do not matter), or
for multipart uploads over the form fields and each file's SHA-256 (the multipart boundary differs per attempt).
Keys are per principal (`user:12`, `apikey:3`): two LIS may use the same key without meeting.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Header
from ninja.responses import Status
from pydantic import BaseModel

from muestra.api.auth import actor_of
from muestra.api.errors import render_json
from muestra.core.bulk import db_values, mark_saved
from muestra.core.errors import Conflict, ValidationFailed
from muestra.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 128
_HEADER_PARAM = "idempotency_key"

F = TypeVar("F", bound=Callable[..., Any])


class _RollBack(Exception):
    """Carries a non-2xx answer out of the transaction so the key row is not kept."""

    def __init__(self, response: HttpResponseBase) -> None:
        super().__init__(response.status_code)
        self.response = response


def request_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    content_type = (request.content_type or "").lower()
    if content_type.startswith("multipart/") or content_type == "application/x-www-form-urlencoded":
        for name in sorted(request.POST.keys()):
            for value in request.POST.getlist(name):
                digest.update(json.dumps(["field", name, value]).encode())
        for name in sorted(request.FILES.keys()):
            for upload in request.FILES.getlist(name):
                file_digest = hashlib.sha256()
                for chunk in upload.chunks():
                    file_digest.update(chunk)
                upload.seek(0)
                digest.update(json.dumps(["file", name, file_digest.hexdigest()]).encode())
        return digest.hexdigest()
    body = request.body
    # JSON in canonical form; anything that is not JSON counts by its raw bytes.
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    digest.update(body)
    return digest.hexdigest()


def to_response(request: HttpRequest, result: Any) -> HttpResponseBase:
    """An endpoint's return value as the HTTP response ninja would send (Status(code, body) or a bare body)."""
    if isinstance(result, HttpResponseBase):
        return result
    status = 200
    if isinstance(result, Status):
        status, result = result.status_code, result.value
    if status == 204:
        return HttpResponse(status=204)  # no body at all, not even "null"
    if isinstance(result, BaseModel):
        result = result.model_dump()
    return render_json(request, result, status)


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body or b""), status=record.status_code or 200, content_type=record.content_type or None
    )
    response[REPLAY_HEADER] = "true"
    return response


def _key_reused() -> ValidationFailed:
    return ValidationFailed(
        _("This Idempotency-Key was already used for a different request; send a new key for a new request."),
        code="idempotency_key_reused",
        field=HEADER,
    )


def _claim(*, principal: str, key: str, method: str, path: str, fingerprint: str) -> IdempotencyRecord | None:
    """Inserts the key's row, or returns None when the key is taken: `INSERT ... ON CONFLICT DO NOTHING`, so no
    savepoint is needed around a unique-constraint failure (two round trips fewer per write)."""
    record = IdempotencyRecord(
        principal=principal, key=key, method=method, path=path, fingerprint=fingerprint, created_at=timezone.now()
    )
    names = ["principal", "key", "method", "path", "fingerprint", "content_type", "created_at"]
    fields = [f for f in IdempotencyRecord._meta.concrete_fields if f.name in names]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(IdempotencyRecord._meta.db_table)} "  # noqa: S608 (names from the model only)
        f"({', '.join(quote(f.column) for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))}) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, db_values(record, fields, connection, pre_save=False))
        row = cursor.fetchone()
    if row is None:
        return None
    mark_saved(record, row[0], connection.alias)
    return record


def idempotent(view: F) -> F:
    """Makes a ninja write endpoint honour `Idempotency-Key` (see the module docstring)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        kwargs.pop(_HEADER_PARAM, None)  # documented and length-checked by ninja; read from the request below
        key = request.headers.get(HEADER)
        if key is None:
            return to_response(request, view(request, *args, **kwargs))
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise ValidationFailed(
                _("The Idempotency-Key header must have 1 to %(max)d printable characters.") % {"max": MAX_KEY_LENGTH},
                code="invalid",
                field=HEADER,
            )
        principal = actor_of(request).label[:64]
        method = request.method or ""
        path = request.path[:300]
        fingerprint = request_fingerprint(request)
        try:
            with transaction.atomic():
                record = _claim(principal=principal, key=key, method=method, path=path, fingerprint=fingerprint)
                if record is None:
                    # The key is taken, by a finished request or (on PostgreSQL) by one that just committed while
                    # this insert waited on the unique index.
                    stored = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
                    if stored is None or stored.status_code is None:  # defensive: rows commit with their answer
                        raise Conflict(
                            _("A request with this Idempotency-Key is still being processed; retry shortly."),
                            code="idempotency_key_in_use",
                            field=HEADER,
                        ) from None
                    if (stored.method, stored.path, stored.fingerprint) != (method, path, fingerprint):
                        raise _key_reused() from None
                    return _replay(stored)
                response = to_response(request, view(request, *args, **kwargs))
                if not 200 <= response.status_code < 300 or not isinstance(response, HttpResponse):
                    raise _RollBack(response)
                record.status_code = response.status_code
                record.response_body = response.content
                record.content_type = response.get("Content-Type", "")[:100]
                record.save(update_fields=["status_code", "response_body", "content_type"])
                return response
        except _RollBack as rollback:
            return rollback.response

    # Ninja reads the endpoint's parameters from the signature: the view's own, with its annotations resolved in the
    # view's module (string annotations would not resolve from here), plus the header, so that the OpenAPI document
    # shows it on every write and ninja checks its length.
    signature = inspect.signature(view, eval_str=True)
    header = inspect.Parameter(
        _HEADER_PARAM,
        inspect.Parameter.KEYWORD_ONLY,
        default=Header(
            None,
            alias=HEADER,
            max_length=MAX_KEY_LENGTH,
            description="A unique string per logical request; a retry with the same key replays the first answer.",
        ),
        annotation=str | None,
    )
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), header]
    )
    return cast(F, wrapper)
