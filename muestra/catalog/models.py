"""The test catalogue as data: diseases, tests, sample types, result values, rejection reasons, strategies,
identity documents and health insurers. Loaded from versioned fixtures (catalog/fixtures/) and editable by
national administrators; adding a disease needs no code.

`pntm_name` holds the exact text Chile's national platform used on the wire, so the legacy adapter can map
both ways without a table in code.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from muestra.core.i18n import TranslatedNameMixin


class CatalogEntry(TranslatedNameMixin):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    active = models.BooleanField(_("active"), default=True)
    pntm_name = models.CharField(_("national platform name"), max_length=120, blank=True, db_index=True)

    class Meta:
        abstract = True
        ordering = ["code"]


class Disease(CatalogEntry):
    snomed_code = models.CharField(_("SNOMED CT code"), max_length=20, blank=True)

    class Meta(CatalogEntry.Meta):
        verbose_name = _("disease")
        verbose_name_plural = _("diseases")


class TestMethod(models.TextChoices):
    NAA = "naa", _("Nucleic acid amplification (PCR)")
    ANTIGEN = "antigen", _("Rapid antigen")
    SEQUENCING = "sequencing", _("Sequencing")


class Test(CatalogEntry):
    disease = models.ForeignKey(Disease, on_delete=models.PROTECT, related_name="tests")
    loinc_code = models.CharField(_("LOINC code"), max_length=20)
    method = models.CharField(_("method"), max_length=20, choices=TestMethod.choices)
    # Point-of-care tests (antigen) are registered by the sample taker together with their result.
    result_at_registration = models.BooleanField(_("result entered at registration"), default=False)
    pooling_allowed = models.BooleanField(_("may be pooled"), default=False)
    sample_types: models.ManyToManyField[SampleType, Any] = models.ManyToManyField(
        "SampleType", related_name="tests", blank=True
    )
    result_values: models.ManyToManyField[ResultValue, Any] = models.ManyToManyField(
        "ResultValue", related_name="tests", blank=True
    )

    class Meta(CatalogEntry.Meta):
        verbose_name = _("test")
        verbose_name_plural = _("tests")


class SampleType(CatalogEntry):
    snomed_code = models.CharField(_("SNOMED CT code"), max_length=20)

    class Meta(CatalogEntry.Meta):
        verbose_name = _("sample type")
        verbose_name_plural = _("sample types")


class Interpretation(models.TextChoices):
    POSITIVE = "positive", _("Positive")
    NEGATIVE = "negative", _("Negative")
    INCONCLUSIVE = "inconclusive", _("Inconclusive")
    UNSATISFACTORY = "unsatisfactory", _("Specimen unsatisfactory")
    RETEST = "retest", _("Re-test needed")


class ResultValue(CatalogEntry):
    snomed_code = models.CharField(_("SNOMED CT code"), max_length=20)
    interpretation = models.CharField(_("interpretation"), max_length=20, choices=Interpretation.choices)
    # A report file is required for every result except those that say the sample could not be analysed.
    report_required = models.BooleanField(_("report file required"), default=True)

    class Meta(CatalogEntry.Meta):
        verbose_name = _("result value")
        verbose_name_plural = _("result values")


class RejectionReason(CatalogEntry):
    class Meta(CatalogEntry.Meta):
        verbose_name = _("rejection reason")
        verbose_name_plural = _("rejection reasons")


class Strategy(CatalogEntry):
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    active_case_finding = models.BooleanField(_("active case finding"), default=False)

    class Meta(CatalogEntry.Meta):
        verbose_name = _("testing strategy")
        verbose_name_plural = _("testing strategies")


class DocumentValidator(models.TextChoices):
    CL_RUN = "cl_run", _("Chilean RUN (modulo 11 check digit)")
    VN_CCCD = "vn_cccd", _("Vietnamese citizen identity card (12 digits)")
    VN_CMND = "vn_cmnd", _("Vietnamese identity card (9 digits)")
    PASSPORT = "passport", _("Passport")
    FREE_TEXT = "free_text", _("Free text")
    NONE = "none", _("No document")
    NEWBORN = "newborn", _("Newborn (through a guardian)")


class IdentityDocumentType(CatalogEntry):
    validator = models.CharField(_("validation rule"), max_length=20, choices=DocumentValidator.choices)
    # Country profiles where this document is offered ("" = everywhere: passport, no document, newborn).
    profile_code = models.CharField(_("country profile"), max_length=2, blank=True)
    requires_issuing_country = models.BooleanField(_("issuing country required"), default=False)

    class Meta(CatalogEntry.Meta):
        verbose_name = _("identity document type")
        verbose_name_plural = _("identity document types")


class HealthInsurance(CatalogEntry):
    profile_code = models.CharField(_("country profile"), max_length=2, blank=True)

    class Meta(CatalogEntry.Meta):
        verbose_name = _("health insurance")
        verbose_name_plural = _("health insurances")
