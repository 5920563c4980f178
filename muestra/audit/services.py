"""Writing and verifying the hash-chained audit trail.

Entries are written inside the caller's transaction, so a change and its audit entry commit or roll back
together. The chain head row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE
transactions already serialise writers), so concurrent writers chain one after the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from muestra.audit.models import GENESIS_HASH, AuditEntry, AuditHead


@dataclass(frozen=True)
class AuditItem:
    action: str
    object_type: str
    object_id: str | int
    data: dict[str, Any] | None = None


def entry_hash(
    *, prev_hash: str, at: datetime, actor: str, action: str, object_type: str, object_id: str, data: dict[str, Any]
) -> str:
    canonical = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, action, object_type, object_id, data],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_head() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditHead.objects.get_or_create(pk=1)
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


def audit_record_many(*, actor: str, items: Iterable[AuditItem]) -> int:
    """Appends one entry per item to the chain. Call inside the transaction of the change being audited."""
    items = list(items)
    if not items:
        return 0
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
        # PostgreSQL and SQLite return the new ids from the insert; ask only a backend that does not.
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


def audit_verify(*, batch_size: int = 5000) -> tuple[int, ChainBreak | None]:
    """Walks the chain from the start. Returns (entries checked, the first broken link or None)."""
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    for entry in _iterate(batch_size):
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
    return checked, None


def _iterate(batch_size: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        batch = list(AuditEntry.objects.filter(pk__gt=last).order_by("pk")[:batch_size])
        if not batch:
            return
        yield from batch
        last = batch[-1].pk
