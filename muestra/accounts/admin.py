from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import ApiKey, Membership, User
from muestra.accounts.scoping import actor_for_user
from muestra.accounts.services import api_key_revoke


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
    """Keys are issued with `manage.py issue_api_key` (the secret is shown once); here they are listed and revoked.

    Nothing is edited in place: revocation goes through `api_key_revoke`, which audits it and drops cached keys."""

    list_display = ["name", "prefix", "laboratory", "establishment", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = [
        "name",
        "prefix",
        "key_hash",
        "laboratory",
        "establishment",
        "created_at",
        "last_used_at",
        "revoked_at",
        "created_by",
    ]
    actions = ["revoke_selected"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    @admin.action(description=_("Revoke the selected API keys"))
    def revoke_selected(self, request, queryset):  # type: ignore[no-untyped-def]
        actor = actor_for_user(request.user)
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(actor=actor, api_key_id=key.pk)
