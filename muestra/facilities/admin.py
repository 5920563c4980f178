"""Admin for establishments, laboratories and which labs each establishment may send to.

These rows are referenced by every sample, so they are retired with `active`, never deleted. Each save empties
this process's look-up cache at once (other processes refresh within a minute, `samples.lookups`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from muestra.catalog.admin import LookupCacheClearingAdmin
from muestra.facilities.models import Establishment, LabAssignment, Laboratory


class LabAssignmentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = LabAssignment
    extra = 0
    fields = ("laboratory", "active")
    autocomplete_fields = ["laboratory"]
    verbose_name = _("laboratory it may send to")
    verbose_name_plural = _("laboratories it may send to")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NoDeleteAdmin(LookupCacheClearingAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Establishment)
class EstablishmentAdmin(NoDeleteAdmin):
    list_display = ["code", "name", "kind", "territory", "is_public", "active"]
    list_filter = ["profile", "is_public", "active", "kind"]
    search_fields = ["=code", "name"]
    autocomplete_fields = ["territory"]
    list_select_related = ["territory"]
    inlines = [LabAssignmentInline]
    ordering = ["name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The code is what samples, keys and the national platform refer to: fixed once the row exists.
        return ("code",) if obj is not None else ()


@admin.register(Laboratory)
class LaboratoryAdmin(NoDeleteAdmin):
    list_display = ["platform_id", "name", "territory", "daily_capacity", "active"]
    list_filter = ["profile", "active", "diseases"]
    search_fields = ["=platform_id", "name"]
    autocomplete_fields = ["territory"]
    list_select_related = ["territory"]
    filter_horizontal = ["diseases"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("platform_id",) if obj is not None else ()


@admin.register(LabAssignment)
class LabAssignmentAdmin(NoDeleteAdmin):
    list_display = ["establishment", "laboratory", "active", "created_at"]
    list_filter = ["active", "laboratory"]
    search_fields = ["=establishment__code", "establishment__name", "laboratory__name"]
    autocomplete_fields = ["establishment", "laboratory"]
    list_select_related = ["establishment", "laboratory"]
    list_editable = ["active"]
