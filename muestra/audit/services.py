"""Writing and verifying the hash-chained audit trail.

Entries are written inside the caller's transaction, so a change and its audit entry commit or roll back
together. The chain head row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE
transactions already serialise writers), so concurrent writers chain one after the other.

On PostgreSQL the append is one round trip for a single entry (the common case: one per registration): one
statement locks the head, inserts the entry with its hash computed by the database from the head's hash and the
canonical text built here, and moves the head. Several entries take two: lock and read the head, then insert them
all and move the head in one statement. Either way the hash is the same SHA-256 `entry_hash` computes, so
`audit_verify` checks entries from every path alike.

The chain alone cannot show entries cut from its end by someone who also rewrites the head row. Checkpoints close
that gap: `audit_checkpoint` signs the head (entry id and hash) with the installation's secret key, operators keep
the lines outside the database (`manage.py audit_checkpoint`, docs/operations.md), and `audit_verify` given them
requires every checkpointed entry to be still in the chain with the same hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core import signing
from django.db import connection, transaction
from django.utils import timezone

from muestra.audit.models import GENESIS_HASH, AuditEntry, AuditHead


@dataclass(frozen=True)
class AuditItem:
    action: str
    object_type: str
    object_id: str | int
    data: dict[str, Any] | None = None


def _canonical_tail(
    *, at: datetime, actor: str, action: str, object_type: str, object_id: str, data: dict[str, Any]
) -> str:
    """The canonical JSON of an entry without its first element (the previous hash) and the opening bracket."""
    return json.dumps(
        [at.isoformat(timespec="microseconds"), actor, action, object_type, object_id, data],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )[1:]


def entry_hash(
    *, prev_hash: str, at: datetime, actor: str, action: str, object_type: str, object_id: str, data: dict[str, Any]
) -> str:
    # Exactly json.dumps([prev_hash, at, actor, action, object_type, object_id, data]) in canonical form, built as
    # "[" + prev + "," + tail so that PostgreSQL can compute the same digest from the head's hash (see _HASH_SQL).
    tail = _canonical_tail(at=at, actor=actor, action=action, object_type=object_type, object_id=object_id, data=data)
    canonical = "[" + json.dumps(prev_hash, ensure_ascii=False) + "," + tail
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_head() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditHead.objects.get_or_create(pk=1)
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


# The previous hash is 64 hex digits (or the genesis zeros), so its JSON form is itself between double quotes.
_HASH_SQL = "encode(sha256(convert_to('[\"' || {prev} || '\",' || %s, 'UTF8')), 'hex')"

_APPEND_ONE_SQL = f"""
WITH head AS (SELECT last_hash FROM audit_audithead WHERE id = 1 FOR UPDATE),
entry AS (
    INSERT INTO audit_auditentry (at, actor, action, object_type, object_id, data, prev_hash, hash)
    SELECT %s, %s, %s, %s, %s, %s::jsonb, head.last_hash, {_HASH_SQL.format(prev="head.last_hash")}
    FROM head
    RETURNING id, hash
)
UPDATE audit_audithead SET last_hash = entry.hash, last_entry_id = entry.id FROM entry WHERE audit_audithead.id = 1
"""  # noqa: S608 (constant text, no value interpolated)


def _ensure_head() -> None:
    AuditHead.objects.get_or_create(pk=1)


def _append_postgresql(actor: str, items: list[AuditItem]) -> None:
    now = timezone.now()
    if len(items) == 1:
        # One statement, atomic on its own: no transaction needed around it.
        item = items[0]
        data = item.data or {}
        object_id = str(item.object_id)
        tail = _canonical_tail(
            at=now, actor=actor, action=item.action, object_type=item.object_type, object_id=object_id, data=data
        )
        params: list[Any] = [now, actor, item.action, item.object_type, object_id, json.dumps(data), tail]
        with connection.cursor() as cursor:
            cursor.execute(_APPEND_ONE_SQL, params)
            if cursor.rowcount == 0:  # no head row yet (a fresh database): create it and append again
                _ensure_head()
                cursor.execute(_APPEND_ONE_SQL, params)
        return
    # The canonical texts first: the head is locked (every writer of the platform waits for it) only for hashing,
    # the COPY and moving the head.
    rows: list[list[Any]] = []
    for item in items:
        data = item.data or {}
        object_id = str(item.object_id)
        tail = _canonical_tail(
            at=now, actor=actor, action=item.action, object_type=item.object_type, object_id=object_id, data=data
        )
        rows.append([now, actor, item.action, item.object_type, object_id, json.dumps(data), tail, ""])
    # Three statements (lock the head, COPY, move the head): a transaction of their own when the caller has none,
    # so the head stays locked in between.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute("SELECT last_hash FROM audit_audithead WHERE id = 1 FOR UPDATE")
        row = cursor.fetchone()
        if row is None:
            _ensure_head()
            cursor.execute("SELECT last_hash FROM audit_audithead WHERE id = 1 FOR UPDATE")
            row = cursor.fetchone()
        prev = row[0]
        for entry in rows:
            tail = entry[6]
            entry[6] = prev
            entry[7] = prev = hashlib.sha256(("[" + json.dumps(prev) + "," + tail).encode()).hexdigest()
        # COPY, as the events are written (inside UNNEST arrays psycopg escaped every JSON text once more, character
        # by character, which cost more than the insert), for any number of entries, so a page that audits what it
        # shows runs the same statements for 2 rows as for 200. The sequence's current value is this session's last
        # id taken, the batch's last entry.
        with cursor.copy(
            "COPY audit_auditentry (at, actor, action, object_type, object_id, data, prev_hash, hash) FROM STDIN"
        ) as copy:
            for entry in rows:
                copy.write_row(entry)
        cursor.execute(
            "UPDATE audit_audithead SET last_hash = %s,"
            " last_entry_id = currval(pg_get_serial_sequence('audit_auditentry', 'id')) WHERE id = 1",
            [prev],
        )


def audit_record_many(*, actor: str, items: Iterable[AuditItem]) -> int:
    """Appends one entry per item to the chain. Call inside the transaction of the change being audited."""
    items = list(items)
    if not items:
        return 0
    if connection.vendor == "postgresql":
        _append_postgresql(actor, items)
        return len(items)
    # No savepoint of its own: the entries belong to the caller's transaction and fail or commit with it.
    with transaction.atomic(savepoint=False):
        head = _lock_head()
        now = timezone.now()
        prev = head.last_hash
        entries = []
        for item in items:
            data = item.data or {}
            digest = entry_hash(
                prev_hash=prev,
                at=now,
                actor=actor,
                action=item.action,
                object_type=item.object_type,
                object_id=str(item.object_id),
                data=data,
            )
            entries.append(
                AuditEntry(
                    at=now,
                    actor=actor,
                    action=item.action,
                    object_type=item.object_type,
                    object_id=str(item.object_id),
                    data=data,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        AuditEntry.objects.bulk_create(entries)
        # SQLite returns the new ids from the insert; ask only a backend that does not.
        last_id = entries[-1].pk or AuditEntry.objects.filter(hash=prev).values_list("id", flat=True).get()
        AuditHead.objects.filter(pk=1).update(last_hash=prev, last_entry_id=last_id)
    return len(entries)


def audit_record(
    *, actor: str, action: str, object_type: str, object_id: str | int, data: dict[str, Any] | None = None
) -> None:
    audit_record_many(actor=actor, items=[AuditItem(action, object_type, object_id, data)])


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    problem: str


def audit_verify(*, batch_size: int = 5000, checkpoints: Iterable[Checkpoint] = ()) -> tuple[int, ChainBreak | None]:
    """Walks the chain from the start. Returns (entries checked, the first broken link or None).

    With `checkpoints` (heads signed earlier and kept outside the database), each checkpointed entry must also be
    found in the chain with its recorded hash: entries cut from the end are then reported even when the head row
    was rewritten to match."""
    checkpoints = list(checkpoints)
    wanted = {c.entry_id for c in checkpoints}
    found: dict[int, str] = {}
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    for entry in _iterate(batch_size):
        if entry.pk in wanted:
            found[entry.pk] = entry.hash
        if entry.prev_hash != prev:
            return checked, ChainBreak(
                entry.pk, "prev_hash does not match the previous entry (an entry was removed, inserted or reordered)"
            )
        expected = entry_hash(
            prev_hash=entry.prev_hash,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            data=entry.data,
        )
        if expected != entry.hash:
            return checked, ChainBreak(entry.pk, "content does not match its hash (the entry was altered)")
        prev = entry.hash
        last_id = entry.pk
        checked += 1
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None and (head.last_hash != prev or (checked and head.last_entry_id != last_id)):
        return checked, ChainBreak(
            last_id, "the chain ends before the recorded head (entries were removed from the end)"
        )
    return checked, _checkpoint_break(checkpoints, found)


# --- checkpoints kept outside the database -----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment: the last entry's id and hash."""

    entry_id: int
    hash: str
    at: str  # ISO time the checkpoint was taken

    def token(self) -> str:
        """The checkpoint as one line that a person can read (entry id, hash, time) followed by its signature
        (Django's signing with SECRET_KEY): a copy kept elsewhere cannot be forged or altered without the key."""
        return _signer().sign(f"{self.entry_id} {self.hash} {self.at}")


def _signer() -> signing.Signer:
    # Made per call: the key is SECRET_KEY as set now (a key rotated in settings signs and checks with the new one).
    return signing.Signer(salt="muestra.audit.checkpoint")


class CheckpointInvalid(ValueError):
    """A checkpoint line that this installation did not sign, or that was altered."""


def checkpoint_read(token: str) -> Checkpoint:
    try:
        entry_id, hash_, at = _signer().unsign(token.strip()).split(" ")
        return Checkpoint(int(entry_id), hash_, at)
    except (signing.BadSignature, ValueError) as exc:
        raise CheckpointInvalid(str(exc)) from None


def audit_checkpoint() -> Checkpoint:
    """The current head, committed entries only (a reader takes no lock and sees the head as last committed); on a
    trail not yet started, the genesis (entry 0), which holds nothing."""
    head = AuditHead.objects.filter(pk=1).first()
    entry_id, last_hash = (head.last_entry_id, head.last_hash) if head is not None else (0, GENESIS_HASH)
    return Checkpoint(entry_id, last_hash, timezone.now().isoformat(timespec="seconds"))


def _checkpoint_break(checkpoints: Iterable[Checkpoint], found: dict[int, str]) -> ChainBreak | None:
    for checkpoint in sorted(checkpoints, key=lambda c: c.entry_id):
        if checkpoint.entry_id == 0:
            continue  # taken on an empty trail: nothing to hold
        stored = found.get(checkpoint.entry_id)
        if stored is None:
            return ChainBreak(
                checkpoint.entry_id,
                f"the entry recorded by the checkpoint of {checkpoint.at} is no longer in the chain "
                "(entries were removed from the end and the head rewritten)",
            )
        if stored != checkpoint.hash:
            return ChainBreak(
                checkpoint.entry_id,
                f"the entry recorded by the checkpoint of {checkpoint.at} has another hash now "
                "(the trail was rewritten)",
            )
    return None


def _iterate(batch_size: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        batch = list(AuditEntry.objects.filter(pk__gt=last).order_by("pk")[:batch_size])
        if not batch:
            return
        yield from batch
        last = batch[-1].pk
