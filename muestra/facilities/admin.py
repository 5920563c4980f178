from django.contrib import admin

from muestra.facilities.models import Establishment, LabAssignment, Laboratory


class LabAssignmentInline(admin.TabularInline):
    model = LabAssignment
    extra = 0
    autocomplete_fields = ["laboratory"]


@admin.register(Establishment)
class EstablishmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "territory", "is_public", "active"]
    list_filter = ["profile", "is_public", "active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["territory"]
    inlines = [LabAssignmentInline]


@admin.register(Laboratory)
class LaboratoryAdmin(admin.ModelAdmin):
    list_display = ["platform_id", "name", "territory", "daily_capacity", "active"]
    list_filter = ["profile", "active", "diseases"]
    search_fields = ["platform_id", "name"]
    autocomplete_fields = ["territory"]
    filter_horizontal = ["diseases"]
