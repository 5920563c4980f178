from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from muestra.core.models import IdempotencyRecord


def _record(key: str, age: timedelta) -> IdempotencyRecord:
    record = IdempotencyRecord.objects.create(
        principal="apikey:1", key=key, method="POST", path="/api/v1/samples", fingerprint="0" * 64, status_code=201
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)
    return record


def test_old_idempotency_records_are_pruned_and_recent_ones_kept(db):
    _record("old", timedelta(days=8))
    _record("recent", timedelta(days=1))
    out = StringIO()
    call_command("prune_idempotency_keys", stdout=out)
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
    assert out.getvalue().startswith("1 idempotency record(s)")
