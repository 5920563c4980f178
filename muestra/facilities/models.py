"""Where samples are taken (establishments) and analysed (laboratories), and which labs each establishment
may send to."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from muestra.catalog.models import Disease
from muestra.territories.models import CountryProfile, Territory


class Establishment(models.Model):
    code = models.CharField(_("code"), max_length=20, unique=True, help_text=_("DEIS code or internal code"))
    name = models.CharField(_("name"), max_length=200)
    profile = models.ForeignKey(CountryProfile, on_delete=models.PROTECT)
    territory = models.ForeignKey(Territory, on_delete=models.PROTECT, related_name="establishments")
    is_public = models.BooleanField(_("public"), default=True)
    kind = models.CharField(_("type"), max_length=120, blank=True)
    active = models.BooleanField(_("active"), default=True)
    laboratories: models.ManyToManyField[Laboratory, Any] = models.ManyToManyField(
        "Laboratory", through="LabAssignment", related_name="establishments"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("establishment")
        verbose_name_plural = _("establishments")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Laboratory(models.Model):
    # The national platform identified labs by a number; we keep it as the public id (up to 10 digits).
    platform_id = models.PositiveBigIntegerField(_("platform id"), unique=True)
    name = models.CharField(_("name"), max_length=200)
    profile = models.ForeignKey(CountryProfile, on_delete=models.PROTECT)
    territory = models.ForeignKey(Territory, on_delete=models.PROTECT, related_name="laboratories")
    is_public = models.BooleanField(_("public"), default=True)
    diseases = models.ManyToManyField(Disease, related_name="laboratories", verbose_name=_("authorised diseases"))
    daily_capacity = models.PositiveIntegerField(_("daily capacity"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("laboratory")
        verbose_name_plural = _("laboratories")

    def __str__(self) -> str:
        return self.name


class LabAssignment(models.Model):
    establishment = models.ForeignKey(Establishment, on_delete=models.CASCADE, related_name="assignments")
    laboratory = models.ForeignKey(Laboratory, on_delete=models.CASCADE, related_name="assignments")
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["establishment", "laboratory"], name="lab_assignment_unique"),
        ]
        verbose_name = _("establishment-to-lab assignment")
        verbose_name_plural = _("establishment-to-lab assignments")

    def __str__(self) -> str:
        return f"{self.establishment} -> {self.laboratory}"
