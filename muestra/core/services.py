"""Housekeeping writes on core records."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from muestra.core.models import IdempotencyRecord

#: How long a client may retry a write with the same Idempotency-Key and get the first answer back.
IDEMPOTENCY_RETENTION = timedelta(days=7)


def idempotency_records_prune(*, older_than: timedelta = IDEMPOTENCY_RETENTION) -> int:
    """Deletes stored answers older than `older_than`; a key seen again after that is treated as new."""
    deleted, _by_model = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
