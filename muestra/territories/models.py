"""Countries, their profiles and their territories.

Territories of every level live in one table with a materialised `path` ("CL.r13.p131.c13101"), so "everything
inside region 13" is a single indexed prefix match. Chile's health-service areas cut across provinces, so a comuna
also points at its health service; Vietnam's 2025 merger makes the 34 new provinces the parents of the 63 old ones.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Country(models.Model):
    """A country as the national systems code it (ISO numeric; Chile's platform also had its own ids)."""

    iso_numeric = models.CharField(_("ISO numeric code"), max_length=3, blank=True, db_index=True)
    name = models.CharField(_("name"), max_length=120)
    pntm_id = models.PositiveIntegerField(_("national platform id"), unique=True, null=True, blank=True)
    deis_name = models.CharField(_("DEIS name"), max_length=120, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("country")
        verbose_name_plural = _("countries")

    def __str__(self) -> str:
        return self.name


class CountryProfile(models.Model):
    """What differs between deployments: documents, territories, language, time zone."""

    code = models.CharField(_("code"), max_length=2, unique=True)  # ISO alpha-2: CL, VN
    name = models.CharField(_("name"), max_length=80)
    default_language = models.CharField(_("default language"), max_length=8, default="es")
    time_zone = models.CharField(_("time zone"), max_length=64)
    phone_country_code = models.CharField(_("phone country code"), max_length=4)
    phone_national_digits = models.PositiveSmallIntegerField(_("digits of a national phone number"))
    country = models.ForeignKey(Country, on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        verbose_name = _("country profile")
        verbose_name_plural = _("country profiles")

    def __str__(self) -> str:
        return self.name


class TerritoryLevel(models.TextChoices):
    CL_REGION = "cl_region", _("Region")
    CL_PROVINCE = "cl_province", _("Province")
    CL_COMUNA = "cl_comuna", _("Comuna")
    CL_HEALTH_SERVICE = "cl_health_service", _("Health service area")
    VN_PROVINCE = "vn_province", _("Province (2025)")
    VN_LEGACY_PROVINCE = "vn_legacy_province", _("Province (before July 2025)")
    VN_DISTRICT = "vn_district", _("District (before July 2025)")


#: The short letter each level contributes to a path segment.
LEVEL_PATH_PREFIX = {
    TerritoryLevel.CL_REGION: "r",
    TerritoryLevel.CL_PROVINCE: "p",
    TerritoryLevel.CL_COMUNA: "c",
    TerritoryLevel.CL_HEALTH_SERVICE: "s",
    TerritoryLevel.VN_PROVINCE: "p",
    TerritoryLevel.VN_LEGACY_PROVINCE: "o",
    TerritoryLevel.VN_DISTRICT: "d",
}


class Territory(models.Model):
    profile = models.ForeignKey(CountryProfile, on_delete=models.PROTECT, related_name="territories")
    level = models.CharField(_("level"), max_length=24, choices=TerritoryLevel.choices)
    code = models.CharField(_("code"), max_length=12)
    # Chile's health systems write codes without the leading zero (DEIS form: 13101, 1101).
    alt_code = models.CharField(_("DEIS code"), max_length=12, blank=True, db_index=True)
    name = models.CharField(_("name"), max_length=150)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    health_service = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="served_territories",
        limit_choices_to={"level": TerritoryLevel.CL_HEALTH_SERVICE},
    )
    path = models.CharField(max_length=120, db_index=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["profile", "level", "code"], name="territory_unique_code")]
        verbose_name = _("territory")
        verbose_name_plural = _("territories")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_level_display()})"

    def build_path(self) -> str:
        own = f"{LEVEL_PATH_PREFIX[TerritoryLevel(self.level)]}{self.code}"
        base = self.parent.path if self.parent_id and self.parent else self.profile.code
        return f"{base}.{own}"
