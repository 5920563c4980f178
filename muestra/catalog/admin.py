"""Admin for the test catalogue: national administrators edit it here (adding a disease needs no code).

`code` is what other records, the APIs and the data file refer to, so it is read-only once a row exists;
retire a row with `active` instead of renaming or deleting it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from muestra.catalog.models import (
    Disease,
    HealthInsurance,
    IdentityDocumentType,
    RejectionReason,
    ResultValue,
    SampleType,
    Strategy,
    Test,
)
from muestra.samples import lookups

TRANSLATED_SEARCH = ["code", "name", "name_en", "name_vi", "pntm_name"]


class LookupCacheClearingAdmin(admin.ModelAdmin[Any]):
    """Reference data read through `samples.lookups`: a change here empties this process's cache at once (the other
    processes see it within the cache's lifetime, a minute)."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        lookups.clear()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        lookups.clear()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        lookups.clear()


class CatalogEntryAdmin(LookupCacheClearingAdmin):
    # Lists rather than tuples: the type checker fixes a tuple's length, which subclasses could not override.
    list_display = ["code", "name", "name_en", "name_vi", "pntm_name", "active"]
    list_filter = ["active"]
    search_fields = list(TRANSLATED_SEARCH)
    ordering = ("code",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        return (*readonly, "code") if obj is not None else readonly


@admin.register(Disease)
class DiseaseAdmin(CatalogEntryAdmin):
    list_display = ["code", "name", "name_en", "snomed_code", "active"]
    search_fields = [*TRANSLATED_SEARCH, "=snomed_code"]


@admin.register(Test)
class TestAdmin(CatalogEntryAdmin):
    list_display = [
        "code",
        "name",
        "disease",
        "loinc_code",
        "method",
        "pooling_allowed",
        "result_at_registration",
        "pntm_name",
        "active",
    ]
    list_filter = ["active", "disease", "method", "pooling_allowed", "result_at_registration"]
    search_fields = [*TRANSLATED_SEARCH, "=loinc_code"]
    filter_horizontal = ("sample_types", "result_values")
    list_select_related = ("disease",)


@admin.register(SampleType)
class SampleTypeAdmin(CatalogEntryAdmin):
    list_display = ["code", "name", "name_en", "snomed_code", "pntm_name", "active"]
    search_fields = [*TRANSLATED_SEARCH, "=snomed_code"]


@admin.register(ResultValue)
class ResultValueAdmin(CatalogEntryAdmin):
    list_display = [
        "code",
        "name",
        "name_en",
        "interpretation",
        "snomed_code",
        "report_required",
        "pntm_name",
        "active",
    ]
    list_filter = ["active", "interpretation", "report_required"]
    search_fields = [*TRANSLATED_SEARCH, "=snomed_code"]


@admin.register(RejectionReason)
class RejectionReasonAdmin(CatalogEntryAdmin):
    pass


@admin.register(Strategy)
class StrategyAdmin(CatalogEntryAdmin):
    list_display = ["code", "name", "name_en", "parent", "active_case_finding", "pntm_name", "active"]
    list_filter = ["active", "active_case_finding", "parent"]
    list_select_related = ("parent",)


@admin.register(IdentityDocumentType)
class IdentityDocumentTypeAdmin(CatalogEntryAdmin):
    list_display = ["code", "name", "validator", "profile_code", "requires_issuing_country", "pntm_name", "active"]
    list_filter = ["active", "validator", "profile_code", "requires_issuing_country"]


@admin.register(HealthInsurance)
class HealthInsuranceAdmin(CatalogEntryAdmin):
    list_display = ["code", "name", "name_en", "profile_code", "pntm_name", "active"]
    list_filter = ["active", "profile_code"]
