"""The filters of the territory list (and of its export, which selects exactly the same samples)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor, scoped
from muestra.facilities.models import Establishment, Laboratory
from muestra.samples import selectors
from muestra.samples.models import SampleState
from muestra.samples.selectors import SampleFilters

#: Above this many visible establishments (a national viewer sees thousands), the establishment filter becomes a
#: field where the code is typed, instead of a drop-down nobody could use (and that would weigh hundreds of KB).
ESTABLISHMENT_SELECT_MAX = 300


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def _any(label: str | Any) -> list[tuple[str, Any]]:
    return [("", label)]


class TerritoryFilterForm(forms.Form):
    collected_from = forms.DateField(label=_("Collected from"), required=False, widget=DateInput())
    collected_to = forms.DateField(label=_("Collected until"), required=False, widget=DateInput())
    establishment = forms.ChoiceField(label=_("Establishment"), required=False)
    laboratory = forms.ChoiceField(label=_("Laboratory"), required=False)
    disease = forms.ChoiceField(label=_("Disease"), required=False)
    state = forms.ChoiceField(label=_("State"), required=False)
    result = forms.ChoiceField(label=_("Result"), required=False)

    def __init__(self, data: Any, *, actor: Actor) -> None:
        super().__init__(data)
        self.actor = actor
        visible = list(
            scoped(actor, Establishment.objects.filter(active=True))
            .order_by("name", "code")
            .values_list("code", "name")[: ESTABLISHMENT_SELECT_MAX + 1]
        )
        if len(visible) > ESTABLISHMENT_SELECT_MAX:
            self.fields["establishment"] = forms.CharField(
                label=_("Establishment code"),
                required=False,
                max_length=20,
                help_text=_("The establishment's DEIS or internal code, for example 113100."),
            )
            self.fields["establishment"].widget.attrs.update({"autocomplete": "off", "inputmode": "numeric"})
        else:
            self._choices("establishment").choices = _any(_("All establishments")) + [
                (code, f"{name} ({code})") for code, name in visible
            ]
        labs = Laboratory.objects.filter(active=True)
        if not actor.sees_everything:
            labs = labs.filter(assignments__establishment__in=scoped(actor, Establishment.objects.all())).distinct()
        self._choices("laboratory").choices = _any(_("All laboratories")) + [
            (str(platform_id), name) for platform_id, name in labs.order_by("name").values_list("platform_id", "name")
        ]
        self._choices("disease").choices = _any(_("All diseases")) + [
            (d.code, d.display_name) for d in selectors.diseases()
        ]
        self._choices("state").choices = _any(_("All states")) + list(SampleState.choices)
        self._choices("result").choices = _any(_("All results")) + [
            (v.code, v.display_name) for v in selectors.result_values()
        ]

    def _choices(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field

    def clean_establishment(self) -> str:
        code: str = (self.cleaned_data.get("establishment") or "").strip()
        typed = isinstance(self.fields["establishment"], forms.CharField)  # a drop-down is a ChoiceField
        # Typed codes are checked against what the user may see: an unknown or foreign code is refused the same.
        if code and typed and not scoped(self.actor, Establishment.objects.filter(code=code)).exists():
            raise forms.ValidationError(_("No establishment you may see has this code."))
        return code

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("collected_from"), cleaned.get("collected_to")
        if start and end and start > end:
            self.add_error("collected_to", _("The end date must be on or after the start date."))
        return cleaned

    def filters(self) -> SampleFilters:
        """The selector's filters for the cleaned form (call after is_valid())."""
        data = self.cleaned_data
        return SampleFilters(
            state=data.get("state") or None,
            establishment=data.get("establishment") or None,
            laboratory=int(data["laboratory"]) if data.get("laboratory") else None,
            disease=data.get("disease") or None,
            result=data.get("result") or None,
            collected_from=_day_start(data.get("collected_from")),
            collected_to=_day_start(data["collected_to"] + timedelta(days=1)) if data.get("collected_to") else None,
        )

    def applied(self) -> dict[str, str]:
        """The filters in use, as plain text values (recorded with an export in the audit trail; no personal data)."""
        return {
            name: value.isoformat() if isinstance(value, date) else str(value)
            for name, value in self.cleaned_data.items()
            if value not in (None, "")
        }


def _day_start(day: date | None) -> datetime | None:
    """Midnight at the start of `day` in the server's local time zone (collection dates are local days)."""
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))
