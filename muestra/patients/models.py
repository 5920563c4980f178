"""Tested people. One patient per identity document, never duplicated: the unique constraint is the last line
of defence behind `patient_resolve`, which reuses a known patient before creating one."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from muestra.catalog.models import HealthInsurance, IdentityDocumentType
from muestra.territories.models import Country, Territory


class Sex(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")
    INTERSEX = "I", _("Intersex")
    UNKNOWN = "U", _("Unknown")


class Patient(models.Model):
    document_type = models.ForeignKey(IdentityDocumentType, on_delete=models.PROTECT)
    # Normalised: RUN as "12345678-5" (no dots, upper-case K), CCCD digits, passport upper-case; "" for none.
    document_number = models.CharField(_("document number"), max_length=40, blank=True)
    # ISO numeric code of the issuing country for passports; "" for national documents.
    document_issuer = models.CharField(_("issuing country"), max_length=3, blank=True, default="")
    given_names = models.CharField(_("given names"), max_length=120)
    paternal_surname = models.CharField(_("first surname"), max_length=120)
    maternal_surname = models.CharField(_("second surname"), max_length=120, blank=True)
    birth_date = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    nationality = models.ForeignKey(Country, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    residence = models.ForeignKey(
        Territory, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("territory of residence")
    )
    address = models.CharField(_("address"), max_length=250, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    insurance = models.ForeignKey(HealthInsurance, on_delete=models.PROTECT, null=True, blank=True)
    # Newborns without a document of their own are registered through a guardian.
    guardian = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="wards")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            models.UniqueConstraint(
                fields=["document_type", "document_number", "document_issuer"],
                condition=~models.Q(document_number=""),
                name="patient_one_per_document",
            ),
        ]

    def __str__(self) -> str:
        return f"Patient #{self.pk}"  # never personal data in logs or reprs

    @property
    def full_name(self) -> str:
        return " ".join(p for p in [self.given_names, self.paternal_surname, self.maternal_surname] if p)
