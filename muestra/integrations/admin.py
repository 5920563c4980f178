"""Administration of outbound events: subscriptions (the signing secret shown once) and their deliveries.

Deliveries are written by the sender only: the screens read them, filter them by state, show each attempt, and
offer one action, putting given-up ("dead") or failing deliveries back in line.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from muestra.integrations.models import (
    OUTBOUND_EVENT_CHOICES,
    OUTBOUND_EVENT_TYPES,
    Delivery,
    DeliveryAttempt,
    Subscription,
)
from muestra.integrations.outbound.services import deliveries_retry, subscription_secret_rotate
from muestra.integrations.outbound.signing import secret_generate
from muestra.samples.models import Sample


class SubscriptionForm(forms.ModelForm):  # type: ignore[type-arg]
    url = forms.URLField(
        label=_("Receiver URL"),
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"class": "vURLField"}),
        help_text=_("HTTPS address that receives each event as a POST."),
    )
    event_kinds = forms.MultipleChoiceField(
        label=_("Events"),
        choices=OUTBOUND_EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The sample events sent to this system."),
    )

    class Meta:
        model = Subscription
        fields = ["name", "url", "active", "event_kinds", "territories", "diseases", "format", "include_patient"]


_RAW_SECRET_ATTRIBUTE = "_muestra_outbound_secret"  # noqa: S105 - an attribute name


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The signing secret is generated on creation (or by the rotate action) and shown on that page only."""

    form = SubscriptionForm
    list_display = ["name", "format", "active", "waiting", "dead", "suspended_until", "last_success_at"]
    list_filter = ["active", "format"]
    search_fields = ["name", "url"]
    autocomplete_fields = ["territories", "diseases"]
    readonly_fields = [
        "secret_hint",
        "created_at",
        "consecutive_failures",
        "suspended_until",
        "last_success_at",
        "last_failure_at",
    ]
    fieldsets = (
        (None, {"fields": ("name", "url", "active", "format", "include_patient", "secret_hint")}),
        (_("What is sent"), {"fields": ("event_kinds", "territories", "diseases")}),
        (
            _("Sending"),
            {"fields": ("created_at", "consecutive_failures", "suspended_until", "last_success_at", "last_failure_at")},
        ),
    )
    actions = ["rotate_secret"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        # The sending state means nothing before the subscription exists.
        return self.fieldsets if obj is not None else self.fieldsets[:2]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        waiting = Q(deliveries__state__in=[Delivery.State.PENDING, Delivery.State.FAILING])
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_waiting=Count("deliveries", filter=waiting),
                n_dead=Count("deliveries", filter=Q(deliveries__state=Delivery.State.DEAD)),
            )
        )

    @admin.display(description=_("signing secret"))
    def secret_hint(self, obj: Subscription) -> str:
        return obj.secret_hint or "—"

    @admin.display(description=_("events"))
    def events(self, obj: Subscription) -> str:
        return ", ".join(OUTBOUND_EVENT_TYPES.get(k, k) for k in obj.event_kinds)

    @admin.display(description=_("waiting"), ordering="n_waiting")
    def waiting(self, obj: Subscription) -> int:
        return int(getattr(obj, "n_waiting", 0))

    @admin.display(description=_("given up"), ordering="n_dead")
    def dead(self, obj: Subscription) -> int:
        return int(getattr(obj, "n_dead", 0))

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if not obj.secret:
            obj.secret = secret_generate()
            setattr(request, _RAW_SECRET_ATTRIBUTE, obj.secret)
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: Subscription, post_url_continue: str | None = None) -> Any:
        secret = getattr(request, _RAW_SECRET_ATTRIBUTE, None)
        if secret:
            return self._secret_page(request, obj, secret, created=True)
        return super().response_add(request, obj, post_url_continue)

    def _secret_page(self, request: HttpRequest, obj: Subscription, secret: str, *, created: bool) -> HttpResponse:
        """The only page that shows the secret: not cached, and not shown again (the lists show its first letters)."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Signing secret"),
            "subscription": obj,
            "secret": secret,
            "created": created,
        }
        response = TemplateResponse(request, "admin/integrations/subscription/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Give the selected subscription a new signing secret"))
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one subscription to rotate its secret."), messages.WARNING)
            return None
        obj = queryset.get()
        secret = subscription_secret_rotate(subscription=obj)
        return self._secret_page(request, obj, secret, created=False)


class DeliveryAttemptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = DeliveryAttempt
    fields = ("at", "ok", "status", "duration_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "created_at",
        "subscription",
        "event_type",
        "sample_number",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["state", "subscription", "kind"]
    list_select_related = ["subscription"]
    search_fields = ["=event_uuid"]
    ordering = ["-pk"]
    show_full_result_count = False
    fields = readonly_fields = (
        "subscription",
        "event_uuid",
        "event_type",
        "sample_number",
        "sequence",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_status",
        "last_error",
        "delivered_at",
        "payload_json",
    )
    inlines = [DeliveryAttemptInline]
    actions = ["retry_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Delivery], search_term: str
    ) -> tuple[QuerySet[Delivery], bool]:
        """A 10-digit sample number finds that sample's deliveries; anything else is looked up as an event id."""
        pk = Sample.pk_from_number(search_term.strip())
        if pk is not None:
            return queryset.filter(sample_id=pk), False
        try:
            return super().get_search_results(request, queryset, search_term)
        except Exception:  # not a UUID either: nothing matches
            return queryset.none(), False

    @admin.display(description=_("event"), ordering="kind")
    def event_type(self, obj: Delivery) -> str:
        return obj.event_type

    @admin.display(description=_("sample"), ordering="sample_id")
    def sample_number(self, obj: Delivery) -> int:
        return Sample(pk=obj.sample_id).number

    @admin.display(description=_("payload"))
    def payload_json(self, obj: Delivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.display(description=_("sequence"))
    def sequence(self, obj: Delivery) -> int:
        return obj.sequence

    @admin.action(description=_("Retry the selected deliveries that were given up or are failing"))
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery put back in line; it is sent at the next sweep.",
                "%(count)d deliveries put back in line; they are sent at the next sweep.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
