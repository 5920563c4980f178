"""Admin for countries, profiles and territories.

`path` is derived from the parent chain, so it is never typed by hand: it is shown read-only and recomputed on
save; the loaders own the bulk of the data, the admin is for corrections and additions.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from muestra.territories.models import Country, CountryProfile, Territory


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin[Country]):
    list_display = ("name", "iso_numeric", "pntm_id", "deis_name")
    search_fields = ("name", "deis_name", "iso_numeric", "=pntm_id")
    ordering = ("name",)


@admin.register(CountryProfile)
class CountryProfileAdmin(admin.ModelAdmin[CountryProfile]):
    list_display = ("code", "name", "default_language", "time_zone", "phone_country_code", "phone_national_digits")
    autocomplete_fields = ("country",)


@admin.register(Territory)
class TerritoryAdmin(admin.ModelAdmin[Territory]):
    list_display = ("name", "level", "code", "alt_code", "parent", "health_service", "path", "active")
    list_filter = ("profile", "level", "active")
    search_fields = ("name", "=code", "=alt_code", "path")
    readonly_fields = ("path",)
    autocomplete_fields = ("parent", "health_service")
    list_select_related = ("parent", "health_service")
    ordering = ("path",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Territory]:
        return super().get_queryset(request).select_related("profile")

    def save_model(self, request: HttpRequest, obj: Territory, form: Any, change: bool) -> None:
        obj.path = obj.build_path()
        super().save_model(request, obj, form, change)
        # A moved or recoded territory moves its whole subtree: rebuild the descendants' paths, parents first.
        pending = list(obj.children.all())
        while pending:
            child = pending.pop(0)
            new_path = child.build_path()
            if child.path != new_path:
                child.path = new_path
                child.save(update_fields=["path"])
            pending.extend(child.children.all())
