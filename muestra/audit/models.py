"""The audit trail: append-only, each entry chained to the previous one by a SHA-256 hash.

`AuditHead` is a one-row table whose row lock serialises writers, so two concurrent transactions can never chain
to the same predecessor. No personal data is written here: only ids, actions and non-identifying facts.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64


class AuditHead(models.Model):
    last_entry_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)


class AuditEntry(models.Model):
    # An entry is written with nearly every change and every read of personal data, so each index is paid many
    # times over: the chain is walked by id, entries are found by the object they are about, and nothing reads
    # by time or action (the admin's action filter walks the ids). Indexes are declared in Meta, which on
    # PostgreSQL creates no second, LIKE-pattern index per text column.
    at = models.DateTimeField()
    actor = models.CharField(max_length=120)  # "user:12", "apikey:3", "anonymous", "system"
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_entry_hash_unique")]
        indexes = [models.Index(fields=["object_id"], name="audit_entry_object")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RuntimeError("Audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Audit entries are append-only")
