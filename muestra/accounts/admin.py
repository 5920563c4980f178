"""The administration site (national administrators only) and its screens for users, roles and API keys.

Writes that have a service go through it: API keys are issued with `api_key_issue` (the secret is shown once, on
the page that answers the form, and never stored) and revoked with `api_key_revoke`; an authenticator is reset
with `totp_reset`. Roles (memberships) have no service: their changes are recorded in the audit trail here.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy
from django_otp.admin import OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from muestra.accounts.models import ApiKey, Membership, Role, User
from muestra.accounts.scoping import actor_for_user
from muestra.accounts.services import api_key_issue, api_key_revoke, totp_reset, two_factor_required
from muestra.audit.services import AuditItem, audit_record_many
from muestra.core.errors import DomainError
from muestra.facilities.models import Establishment, Laboratory
from muestra.web.forms import add_domain_error


class MuestraAdminSite(OTPAdminSite):
    """django-otp's site (a verified second factor is required) limited to national administrators.

    A superuser, or a staff account holding the national administrator role, may enter; a staff flag alone (given
    by mistake to a sample taker, say) opens nothing. Within the site Django's model permissions still apply.
    """

    site_header = _("Muestra administration")
    site_title = _("Muestra administration")
    index_title = _("National administration")

    def has_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        if not super().has_permission(request):
            return False
        return bool(user.is_superuser or Membership.objects.filter(user=user, role=Role.NATIONAL_ADMIN).exists())

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Signing in (and the second factor) happens on Muestra's own pages; the admin's form is only used to tell
        a signed-in person without the administrator role that this is not for them."""
        user: Any = request.user
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name)
        if not user.is_authenticated:
            return redirect_to_login(target, reverse("accounts:login"))
        if not user.is_verified() and two_factor_required(user):
            return redirect(f"{reverse('accounts:totp_verify')}?{urlencode({'next': target})}")
        return super().login(request, extra_context)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        corrections_url = ""
        for name in ("corrections:index", "corrections:list", "corrections:requests"):
            try:
                corrections_url = reverse(name)
                break
            except NoReverseMatch:
                continue
        extra = {"corrections_url": corrections_url, **(extra_context or {})}
        return super().index(request, extra_context=extra)


# An authenticator's secret must never be shown to anyone, administrators included, and resets are audited: the
# "Reset two-factor sign-in" action of the users screen replaces django-otp's own device screen.
with contextlib.suppress(NotRegistered):
    admin.site.unregister(TOTPDevice)


# --- users and their roles -------------------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    fields = ("role", "establishment", "laboratory", "territory")
    autocomplete_fields = ["establishment", "laboratory", "territory"]
    verbose_name = _("role")
    verbose_name_plural = _("roles (one per place: establishment, laboratory or territory)")


def _membership_facts(m: Membership) -> dict[str, Any]:
    return {
        "user": m.user_id,
        "role": m.role,
        "establishment": m.establishment_id,
        "laboratory": m.laboratory_id,
        "territory": m.territory_id,
    }


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "national_id", "first_name", "last_name", "roles", "two_factor", "is_active"]
    list_filter = ["memberships__role", "is_active", "is_superuser"]
    search_fields = ["username", "national_id", "first_name", "last_name", "email"]
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), (_("Muestra"), {"fields": ("national_id", "language")}))
    inlines = [MembershipInline]
    actions = ["reset_authenticator"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        devices = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_totp=Exists(devices)).prefetch_related("memberships")

    @admin.display(description=_("roles"))
    def roles(self, obj: User) -> str:
        return ", ".join(sorted({str(m.get_role_display()) for m in obj.memberships.all()})) or "—"

    @admin.display(description=_("two-factor sign-in"), boolean=True)
    def two_factor(self, obj: User) -> bool:
        return bool(getattr(obj, "has_totp", False))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Saves the roles and records each change in the audit trail (who gave whom which role where)."""
        deleted = [
            AuditItem("membership.delete", "membership", f.instance.pk, _membership_facts(f.instance))
            for f in getattr(formset, "deleted_forms", [])
            if formset.model is Membership and f.instance.pk
        ]
        super().save_formset(request, form, formset, change)
        if formset.model is not Membership:
            return
        items = [AuditItem("membership.add", "membership", m.pk, _membership_facts(m)) for m in formset.new_objects]
        items += [
            AuditItem("membership.change", "membership", m.pk, _membership_facts(m))
            for m, _fields in formset.changed_objects
        ]
        audit_record_many(actor=f"user:{request.user.pk}", items=[*items, *deleted])

    @admin.action(description=_("Reset two-factor sign-in (the person sets it up again at next sign-in)"))
    def reset_authenticator(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = actor_for_user(request.user)  # type: ignore[arg-type]
        count = 0
        for user in queryset:
            totp_reset(actor=actor, user_id=user.pk)
            count += 1
        self.message_user(
            request,
            ngettext(
                "Two-factor sign-in reset for %(count)d account. Tell the person to sign in and set it up again.",
                "Two-factor sign-in reset for %(count)d accounts. Tell each person to sign in and set it up again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


# --- API keys ---------------------------------------------------------------------------------------------------

_ISSUE_NONCE_SESSION_KEY = "muestra_api_key_issue_nonce"


class ApiKeyIssueForm(forms.Form):
    name = forms.CharField(
        label=pgettext_lazy("API key", "Name"),
        max_length=120,
        help_text=_("Which system uses it, e.g. “LIS of Laboratory X”."),
    )
    laboratory = forms.ModelChoiceField(queryset=Laboratory.objects.filter(active=True), required=False)
    establishment = forms.ModelChoiceField(queryset=Establishment.objects.filter(active=True), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Plain drop-downs, not the admin's select2 autocomplete: its combobox has no accessible name (axe
        # "aria-input-field-name"), and this form is used rarely enough that a long list is acceptable.
        super().__init__(*args, **kwargs)
        self.fields["laboratory"].label = _("Laboratory")
        self.fields["establishment"].label = _("Establishment")
        self.fields["laboratory"].help_text = _("A key acts for exactly one laboratory or one establishment.")


API_KEY_FIELDS = (
    "name",
    "prefix",
    "laboratory",
    "establishment",
    "created_at",
    "created_by",
    "last_used_at",
    "revoked_at",
)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Keys are issued here (the secret is shown once) or with `manage.py issue_api_key`; never edited in place.

    Revocation goes through `api_key_revoke`, which audits it and drops cached keys."""

    list_display = ["name", "prefix", "laboratory", "establishment", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["laboratory", "establishment"]
    search_fields = ["name", "prefix"]
    readonly_fields = API_KEY_FIELDS
    fields = API_KEY_FIELDS
    actions = ["revoke_selected"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise DjangoPermissionDenied
        form = ApiKeyIssueForm(request.POST or None)
        if request.method == "POST":
            nonce = request.POST.get("issue_nonce", "")
            expected = request.session.pop(_ISSUE_NONCE_SESSION_KEY, None)
            if not nonce or nonce != expected:
                # A reloaded or re-sent form: issuing again would create a second live key nobody asked for.
                form.add_error(None, _("This form was already sent. Check the list of keys before issuing another."))
            elif form.is_valid():
                try:
                    key, secret = api_key_issue(
                        actor=actor_for_user(request.user),  # type: ignore[arg-type]
                        name=form.cleaned_data["name"],
                        laboratory=form.cleaned_data["laboratory"],
                        establishment=form.cleaned_data["establishment"],
                    )
                except DomainError as exc:
                    add_domain_error(form, exc)
                else:
                    return self._issued(request, key, secret)
        nonce = secrets.token_urlsafe(16)
        request.session[_ISSUE_NONCE_SESSION_KEY] = nonce
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Issue an API key"),
            "form": form,
            "media": self.media + form.media,
            "issue_nonce": nonce,
        }
        return TemplateResponse(request, "admin/accounts/apikey/issue.html", context)

    def _issued(self, request: HttpRequest, key: ApiKey, secret: str) -> HttpResponse:
        """The only page that ever shows the secret: it is not stored, not cached, and not shown again."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("API key issued"),
            "key": key,
            "secret": secret,
        }
        response = TemplateResponse(request, "admin/accounts/apikey/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke the selected API keys"))
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = actor_for_user(request.user)  # type: ignore[arg-type]
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(actor=actor, api_key_id=key.pk)
            revoked += 1
        self.message_user(
            request,
            ngettext(
                "%(count)d API key revoked. It stops working within seconds.",
                "%(count)d API keys revoked. They stop working within seconds.",
                revoked,
            )
            % {"count": revoked},
            messages.SUCCESS,
        )
