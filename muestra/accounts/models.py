"""Users, their roles (memberships) and API keys.

A user's power comes only from memberships: one row per role and place (an establishment, a lab, a territory,
or the whole country). `muestra.accounts.scoping` turns memberships or an API key into what may be seen.
"""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from muestra.facilities.models import Establishment, Laboratory
from muestra.territories.models import Territory


class User(AbstractUser):
    national_id = models.CharField(
        _("national ID"),
        max_length=20,
        unique=True,
        null=True,
        blank=True,
        help_text=_("RUN without dots (12345678-5) or CCCD; also accepted as login name."),
    )
    language = models.CharField(_("language"), max_length=8, blank=True)
    # What the registration form offers first next time: the last establishment, lab, test, sample type and strategy
    # (codes and platform ids only, never personal data). Written by `registration_defaults_remember`.
    registration_defaults = models.JSONField(_("registration defaults"), default=dict, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")


class Role(models.TextChoices):
    SAMPLE_TAKER = "sample_taker", _("Sample taker")
    ESTABLISHMENT_MANAGER = "establishment_manager", _("Establishment manager")
    LAB_STAFF = "lab_staff", _("Laboratory staff")
    LAB_MANAGER = "lab_manager", _("Laboratory manager")
    AUTHORITY_VIEWER = "authority_viewer", _("Health authority viewer")
    NATIONAL_ADMIN = "national_admin", _("National administrator")


ESTABLISHMENT_ROLES = (Role.SAMPLE_TAKER, Role.ESTABLISHMENT_MANAGER)
LAB_ROLES = (Role.LAB_STAFF, Role.LAB_MANAGER)


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    establishment = models.ForeignKey(Establishment, on_delete=models.CASCADE, null=True, blank=True)
    laboratory = models.ForeignKey(Laboratory, on_delete=models.CASCADE, null=True, blank=True)
    # A viewer's territory; None with AUTHORITY_VIEWER means the whole country.
    territory = models.ForeignKey(Territory, on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.CheckConstraint(
                name="membership_place_matches_role",
                condition=(
                    models.Q(
                        role__in=[r.value for r in ESTABLISHMENT_ROLES],
                        establishment__isnull=False,
                        laboratory__isnull=True,
                        territory__isnull=True,
                    )
                    | models.Q(
                        role__in=[r.value for r in LAB_ROLES],
                        laboratory__isnull=False,
                        establishment__isnull=True,
                        territory__isnull=True,
                    )
                    | models.Q(role=Role.AUTHORITY_VIEWER, establishment__isnull=True, laboratory__isnull=True)
                    | models.Q(
                        role=Role.NATIONAL_ADMIN,
                        establishment__isnull=True,
                        laboratory__isnull=True,
                        territory__isnull=True,
                    )
                ),
            ),
        ]

    def __str__(self) -> str:
        place = self.establishment or self.laboratory or self.territory or _("national")
        return f"{self.user} · {self.get_role_display()} · {place}"


API_KEY_PREFIX = "mst"


def hash_api_key(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is safe here (no dictionary to guess from) and keeps
    # authentication cheap on every API call; Argon2 is for human passwords.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_api_key() -> tuple[str, str]:
    """Returns (lookup prefix, full secret key). The full key is shown once and never stored."""
    prefix = secrets.token_hex(4)
    return prefix, f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"


class ApiKey(models.Model):
    name = models.CharField(_("name"), max_length=120)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    laboratory = models.ForeignKey(Laboratory, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys")
    establishment = models.ForeignKey(
        Establishment, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        constraints = [
            models.CheckConstraint(
                name="api_key_exactly_one_scope",
                condition=(
                    models.Q(laboratory__isnull=False, establishment__isnull=True)
                    | models.Q(laboratory__isnull=True, establishment__isnull=False)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({API_KEY_PREFIX}_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
