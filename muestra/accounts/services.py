"""Writes on accounts: API keys (issue, revoke, record use)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import ApiKey, User, generate_api_key, hash_api_key
from muestra.accounts.scoping import Actor
from muestra.audit.services import audit_record
from muestra.core.errors import PermissionDenied, ValidationFailed
from muestra.facilities.models import Establishment, Laboratory

#: `last_used_at` is refreshed at most this often, so a busy LIS does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_issue(
    *, actor: Actor, name: str, laboratory: Laboratory | None = None, establishment: Establishment | None = None
) -> tuple[ApiKey, str]:
    """Creates a key scoped to exactly one lab or establishment. Returns it with its secret, shown once."""
    if not actor.is_admin:
        raise PermissionDenied(_("Only a national administrator may issue API keys."))
    if (laboratory is None) == (establishment is None):
        raise ValidationFailed(
            _("An API key belongs to exactly one laboratory or one establishment."), field="laboratory"
        )
    prefix, secret = generate_api_key()
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name[:120] or "API key",
            prefix=prefix,
            key_hash=hash_api_key(secret),
            laboratory=laboratory,
            establishment=establishment,
            created_by=actor.user if isinstance(actor.user, User) else None,
        )
        audit_record(
            actor=actor.label,
            action="apikey.issue",
            object_type="apikey",
            object_id=key.pk,
            data={
                "laboratory": laboratory.platform_id if laboratory else None,
                "establishment": establishment.code if establishment else None,
            },
        )
    return key, secret


def api_key_revoke(*, actor: Actor, api_key_id: int) -> ApiKey:
    if not actor.is_admin:
        raise PermissionDenied(_("Only a national administrator may revoke API keys."))
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=api_key_id)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(actor=actor.label, action="apikey.revoke", object_type="apikey", object_id=key.pk)
    return key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its last use recorded; None for unknown or revoked keys."""
    parts = raw_key.strip().split("_", 2)  # the secret part itself may contain "_" (token_urlsafe)
    if len(parts) != 3:
        return None
    key = (
        ApiKey.objects.select_related("laboratory", "establishment")
        .filter(prefix=parts[1], key_hash=hash_api_key(raw_key.strip()), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
