"""Writes on accounts: API keys (issue, revoke, record use)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import ApiKey, User, generate_api_key, hash_api_key
from muestra.accounts.scoping import Actor
from muestra.audit.services import audit_record
from muestra.core.errors import PermissionDenied, ValidationFailed
from muestra.facilities.models import Establishment, Laboratory

#: `last_used_at` is refreshed at most this often, so a busy LIS does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

#: How long an app process may go on accepting a key it has already authenticated without asking the database
#: again. Every API call used to pay one query (and its ORM compilation, about a sixth of a registration's CPU)
#: just to find a key that almost never changes. The bound on revocation: `api_key_revoke`, and any save or
#: delete of a key, laboratory or establishment, empties the cache of the process that made it at once; every
#: other process stops accepting a revoked key within this many seconds. Unknown keys are never cached, so a new
#: key works at once and guessing cannot fill memory.
KEY_CACHE_SECONDS = 5.0
_KEY_CACHE_MAX = 1000
_key_cache: dict[str, tuple[float, ApiKey]] = {}
_key_cache_lock = threading.Lock()


def api_key_cache_clear(**_kwargs: Any) -> None:
    """Forgets every authenticated key of this process (also a signal receiver, hence the keyword arguments)."""
    with _key_cache_lock:
        _key_cache.clear()


# A revocation from the admin (a plain save) or a laboratory deactivated there take effect at once here too.
for _model in (ApiKey, Laboratory, Establishment):
    post_save.connect(api_key_cache_clear, sender=_model, dispatch_uid=f"api_key_cache_clear:{_model.__name__}")
    post_delete.connect(api_key_cache_clear, sender=_model, dispatch_uid=f"api_key_cache_clear_del:{_model.__name__}")


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
            key.save(update_fields=["revoked_at"])  # the post_save receiver empties the key cache now...
            audit_record(actor=actor.label, action="apikey.revoke", object_type="apikey", object_id=key.pk)
            # ...and again once committed: a request of another thread may have cached the key in between.
            transaction.on_commit(api_key_cache_clear)
    return key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its last use recorded; None for unknown or revoked keys."""
    parts = raw_key.strip().split("_", 2)  # the secret part itself may contain "_" (token_urlsafe)
    if len(parts) != 3:
        return None
    key_hash = hash_api_key(raw_key.strip())
    clock = time.monotonic()
    hit = _key_cache.get(key_hash)
    if hit is not None and clock - hit[0] < KEY_CACHE_SECONDS:
        key = hit[1]
    else:
        found = (
            ApiKey.objects.select_related("laboratory", "establishment")
            .filter(prefix=parts[1], key_hash=key_hash, revoked_at__isnull=True)
            .first()
        )
        if found is None:
            return None
        key = found
        with _key_cache_lock:
            if len(_key_cache) >= _KEY_CACHE_MAX:
                _key_cache.clear()
            _key_cache[key_hash] = (clock, key)
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
