"""Read-only views of samples and shipments for national administrators; every change goes through the services
(the staff screens and the APIs), never through the admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from muestra.samples.models import Sample, SampleEvent, Shipment


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PublicNumberSearchMixin:
    """Searching a 10-digit public number finds that record (samples and shipments share the numbering)."""

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        term = search_term.strip()
        if term.isdigit() and len(term) == 10:
            pk = Sample.pk_from_number(term)
            return queryset.filter(pk=pk if pk is not None else -1), False
        return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]


class SampleEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SampleEvent
    extra = 0
    fields = ("at", "kind", "from_state", "to_state", "actor", "reason", "channel")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Sample)
class SampleAdmin(PublicNumberSearchMixin, ReadOnlyAdmin):
    list_display = ["public_number", "state", "establishment", "laboratory", "test", "collected_at", "result_value"]
    list_filter = ["state", "disease", "test", "channel"]
    list_select_related = ["establishment", "laboratory", "test", "result_value"]
    search_fields = ["client_code", "tube_code"]
    search_help_text = _("A 10-digit sample number, a laboratory's own code or a tube barcode.")
    # The patient is not shown here: personal data is read through the audited screens and APIs only.
    exclude = ["patient", "answers"]
    inlines = [SampleEventInline]
    show_full_result_count = False
    date_hierarchy = "collected_at"
    ordering = ["-pk"]

    @admin.display(description=_("number"), ordering="pk")
    def public_number(self, obj: Sample) -> str:
        return str(obj.number)


@admin.register(Shipment)
class ShipmentAdmin(PublicNumberSearchMixin, ReadOnlyAdmin):
    list_display = [
        "public_number",
        "establishment",
        "laboratory",
        "state",
        "created_at",
        "dispatched_at",
        "received_at",
    ]
    list_filter = ["state"]
    list_select_related = ["establishment", "laboratory"]
    search_fields = ["note"]
    search_help_text = _("A 10-digit shipment number.")
    ordering = ["-pk"]

    @admin.display(description=_("number"), ordering="pk")
    def public_number(self, obj: Shipment) -> str:
        return str(obj.number)
