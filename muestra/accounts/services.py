"""Writes on accounts: API keys (issue, revoke, record use) and two-factor authenticators (TOTP)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from muestra.accounts.models import ApiKey, Membership, Role, User, generate_api_key, hash_api_key
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


# --- Two-factor sign-in (TOTP) ------------------------------------------------------------------------------------

#: Roles that may not use the staff web application without a verified second factor.
TWO_FACTOR_ROLES = frozenset({Role.LAB_STAFF, Role.LAB_MANAGER, Role.AUTHORITY_VIEWER, Role.NATIONAL_ADMIN})


def two_factor_required_for(actor: Actor) -> bool:
    """`two_factor_required` for a user whose Actor is already built (no query)."""
    user = actor.user
    if user is None:
        return False
    return bool(user.is_superuser or actor.roles & TWO_FACTOR_ROLES)


def two_factor_required(user: User) -> bool:
    """Lab staff and managers, authority viewers and administrators must sign in with a second factor."""
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role__in=TWO_FACTOR_ROLES).exists()


def totp_confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """The user's pending (unconfirmed) authenticator, created on first call; the same one until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=False)
    return device


def totp_enrolment_confirm(*, user: User, device: TOTPDevice, token: str) -> bool:
    """Confirms the pending authenticator when `token` matches it; any older authenticator is removed."""
    if device.user_id != user.pk or device.confirmed or not device.verify_token(token.strip()):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(actor=f"user:{user.pk}", action="totp.enrol", object_type="user", object_id=user.pk)
    return True


def totp_verify(*, user: User, token: str) -> TOTPDevice | None:
    """The user's confirmed authenticator if `token` is a fresh code from it (each code is accepted once)."""
    device = totp_confirmed_device(user)
    if device is not None and device.verify_token(token.strip()):
        return device
    return None


# --- registration form defaults ------------------------------------------------------------------------------

#: What the registration form remembers per user: codes and public ids only, never personal data.
REGISTRATION_DEFAULT_KEYS = ("establishment", "laboratory", "test", "sample_type", "strategy")


def registration_defaults_remember(*, user: User, values: dict[str, str]) -> bool:
    """Remembers the establishment, lab, test, sample type and strategy `user` last registered with.

    Unknown keys are ignored and blank values forget a default. Writes (one UPDATE) only when something changed,
    so registering sample after sample with the same settings costs no query. Returns whether it wrote.
    """
    remembered = {key: str(values[key]) for key in REGISTRATION_DEFAULT_KEYS if values.get(key) not in (None, "")}
    if remembered == (user.registration_defaults or {}):
        return False
    user.registration_defaults = remembered
    User.objects.filter(pk=user.pk).update(registration_defaults=remembered)
    return True


# --- account preferences and authenticator recovery ------------------------------------------------------------


def user_language_remember(*, user: User, language: str) -> bool:
    """Stores the interface language the user chose (applied again at each sign-in). Writes only on a change."""
    if user.language == language:
        return False
    user.language = language
    User.objects.filter(pk=user.pk).update(language=language)
    return True


def totp_reset(*, actor: Actor, user_id: int) -> int:
    """Removes every authenticator of a user who lost theirs; they enrol a new one at their next sign-in.

    For national administrators only (the person's identity is checked outside the system, e.g. by phone). Their
    open sessions lose their verified second factor at once (django-otp finds no device behind it any more).
    Returns how many authenticators were removed."""
    if not actor.is_admin:
        raise PermissionDenied(_("Only a national administrator may reset an authenticator."))
    with transaction.atomic():
        removed, _detail = TOTPDevice.objects.filter(user_id=user_id).delete()
        audit_record(
            actor=actor.label, action="totp.reset", object_type="user", object_id=user_id, data={"removed": removed}
        )
    return removed
