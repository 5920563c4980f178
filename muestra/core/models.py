from __future__ import annotations

from django.db import models


class IdempotencyRecord(models.Model):
    """The stored answer to a write sent with an `Idempotency-Key` header, replayed when the key comes back."""

    principal = models.CharField(max_length=64)  # whose key it is: "user:12" / "apikey:3"
    key = models.CharField(max_length=128)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of the request body
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotency_key_unique")]
