from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from muestra.accounts.models import ApiKey, Membership, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["establishment", "laboratory", "territory"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "national_id", "first_name", "last_name", "is_active"]
    search_fields = ["username", "national_id", "first_name", "last_name", "email"]
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Muestra", {"fields": ("national_id", "language")}))
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued with `manage.py issue_api_key` (the secret is shown once); here they are listed and revoked."""

    list_display = ["name", "prefix", "laboratory", "establishment", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at", "created_by"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
