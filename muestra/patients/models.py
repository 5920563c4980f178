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


class PatientQuerySet(models.QuerySet["Patient"]):
    def with_document(self) -> PatientQuerySet:
        """Patients with a document number. Look-ups by document go through this: it repeats the condition of the
        partial unique index `patient_one_per_document`, without which the database cannot use that index (for a
        long list of numbers, or a statement prepared once per connection) and reads the whole table."""
        return self.exclude(document_number="")


class Patient(models.Model):
    # One patient is inserted per new person registered: only the indexes a read uses exist. References to
    # catalogues and territories are shown, never searched by, so they have no index of their own.
    document_type = models.ForeignKey(IdentityDocumentType, on_delete=models.PROTECT, db_index=False)
    # Normalised: RUN as "12345678-5" (no dots, upper-case K), CCCD digits, passport upper-case; "" for none.
    document_number = models.CharField(_("document number"), max_length=40, blank=True)
    # ISO numeric code of the issuing country for passports; "" for national documents.
    document_issuer = models.CharField(_("issuing country"), max_length=3, blank=True, default="")
    given_names = models.CharField(_("given names"), max_length=120)
    paternal_surname = models.CharField(_("first surname"), max_length=120)
    maternal_surname = models.CharField(_("second surname"), max_length=120, blank=True)
    birth_date = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    nationality = models.ForeignKey(
        Country, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    residence = models.ForeignKey(
        Territory,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("territory of residence"),
        db_index=False,
    )
    address = models.CharField(_("address"), max_length=250, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    insurance = models.ForeignKey(HealthInsurance, on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    # Newborns without a document of their own are registered through a guardian (partial index in Meta).
    guardian = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="wards", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            # The number leads: searches by document number alone (a person typing it, a batch looking up its
            # numbers) use this index too; the type has a handful of values and is never looked up alone.
            models.UniqueConstraint(
                fields=["document_number", "document_type", "document_issuer"],
                condition=~models.Q(document_number=""),
                name="patient_one_per_document",
            ),
        ]
        indexes = [
            # A newborn's look-up through the guardian (and the PROTECT check); most patients have no guardian.
            models.Index(fields=["guardian"], condition=models.Q(guardian__isnull=False), name="patient_guardian"),
        ]

    def __str__(self) -> str:
        return f"Patient #{self.pk}"  # never personal data in logs or reprs

    @property
    def full_name(self) -> str:
        return " ".join(p for p in [self.given_names, self.paternal_surname, self.maternal_surname] if p)
