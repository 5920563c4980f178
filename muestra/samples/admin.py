"""Read-only views of samples for national administrators; every change goes through the services."""

from django.contrib import admin

from muestra.samples.models import Sample, SampleEvent, Shipment


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class SampleEventInline(admin.TabularInline):
    model = SampleEvent
    extra = 0
    fields = ("at", "kind", "from_state", "to_state", "actor", "reason", "channel")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    list_display = ["id", "state", "establishment", "laboratory", "test", "collected_at", "result_value"]
    list_filter = ["state", "disease", "test", "channel"]
    list_select_related = ["establishment", "laboratory", "test", "result_value"]
    search_fields = ["client_code", "tube_code"]
    inlines = [SampleEventInline]
    show_full_result_count = False


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "establishment", "laboratory", "state", "created_at", "dispatched_at", "received_at"]
    list_filter = ["state"]
    list_select_related = ["establishment", "laboratory"]
