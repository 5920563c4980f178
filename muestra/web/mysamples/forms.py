"""Forms of "My samples": editing a sample before the lab receives it, cancelling it before dispatch.

The forms parse what was typed (dates, booleans, codes) and offer only valid choices; every rule is the service's
(`sample_update`, `sample_cancel`), whose refusals are shown next to the field they name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from muestra.catalog.models import SampleType, Strategy, Test
from muestra.samples import lookups
from muestra.samples.models import Sample, SampleState
from muestra.samples.selectors import sample_types, strategies

#: The edit form's fields, named as the service names them (so its refusals land next to the right field).
EDIT_FIELDS = (
    "sample_type",
    "collected_at",
    "laboratory",
    "strategy",
    "substrategy",
    "surveillance_number",
    "without_medical_order",
    "ordering_physician_run",
    "active_case_finding",
)
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


def choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format=DATETIME_INPUT, **kwargs)


class SampleEditForm(forms.Form):
    sample_type = forms.ChoiceField(label=_("Sample type"))
    collected_at = forms.DateTimeField(
        label=_("Collection time"), input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M"], widget=DateTimeLocalInput()
    )
    laboratory = forms.ChoiceField(label=_("Destination laboratory"))
    strategy = forms.ChoiceField(label=_("Testing strategy"), required=False)
    substrategy = forms.ChoiceField(label=_("Sub-strategy"), required=False)
    surveillance_number = forms.CharField(label=_("Surveillance notification number"), required=False, max_length=40)
    without_medical_order = forms.BooleanField(label=_("Without medical order"), required=False)
    ordering_physician_run = forms.CharField(label=_("Ordering physician's RUN"), required=False, max_length=12)
    active_case_finding = forms.BooleanField(label=_("Active case finding"), required=False)

    def __init__(self, *args: Any, sample: Sample, **kwargs: Any) -> None:
        self.sample = sample
        kwargs.setdefault("initial", self.initial_for(sample))
        super().__init__(*args, **kwargs)
        test = lookups.by_pk(Test, sample.test_id)
        choice_field(self, "sample_type").choices = [
            (st.code, st.display_name)
            for st in sample_types()
            if test is not None and lookups.test_accepts(test, sample_type_id=st.pk)
        ] or [(self.initial["sample_type"], str(sample.sample_type))]
        assigned = lookups.assigned_lab_ids(sample.establishment_id)
        labs = [lookups.laboratory_by_pk(pk) for pk in sorted(assigned)]
        lab_choices = [(str(lab.platform_id), lab.name) for lab in labs if lab is not None and lab.active]
        current = lookups.laboratory_by_pk(sample.laboratory_id)
        if current is not None and current.pk not in assigned:
            # The sample's lab is no longer assigned: still shown, so the form does not silently change it.
            lab_choices.insert(0, (str(current.platform_id), current.name))
        choice_field(self, "laboratory").choices = lab_choices
        if sample.state != SampleState.REGISTERED:
            # A tube on its way keeps its laboratory (only that lab may forward it).
            self.fields["laboratory"].disabled = True
            self.fields["laboratory"].help_text = _("The sample is on its way: only its laboratory can forward it.")
        rows = strategies()
        none: list[tuple[str, Any]] = [("", _("— none —"))]
        choice_field(self, "strategy").choices = none + [(s.code, s.display_name) for s in rows if s.parent_id is None]
        choice_field(self, "substrategy").choices = none + [
            (s.code, f"{s.parent.display_name} › {s.display_name}" if s.parent else s.display_name)
            for s in rows
            if s.parent_id is not None
        ]
        self.fields["collected_at"].widget.attrs["max"] = timezone.localtime().strftime(DATETIME_INPUT)
        self.fields["ordering_physician_run"].widget.attrs.update({"autocomplete": "off", "inputmode": "text"})

    @staticmethod
    def initial_for(sample: Sample) -> dict[str, Any]:
        def code(model: Any, pk: int | None) -> str:
            row = lookups.by_pk(model, pk)
            return row.code if row is not None else ""

        lab = lookups.laboratory_by_pk(sample.laboratory_id)
        return {
            "sample_type": code(SampleType, sample.sample_type_id),
            "collected_at": timezone.localtime(sample.collected_at).replace(second=0, microsecond=0),
            "laboratory": str(lab.platform_id) if lab is not None else "",
            "strategy": code(Strategy, sample.strategy_id),
            "substrategy": code(Strategy, sample.substrategy_id),
            "surveillance_number": sample.surveillance_number,
            "without_medical_order": sample.without_medical_order,
            "ordering_physician_run": sample.ordering_physician_run,
            "active_case_finding": sample.active_case_finding,
        }

    def changes(self) -> dict[str, Any]:
        """Only what the person changed, as the service takes it (codes, an aware datetime, booleans)."""
        initial = self.initial_for(self.sample)
        changes: dict[str, Any] = {}
        for name in EDIT_FIELDS:
            if self.fields[name].disabled:
                continue
            value = self.cleaned_data.get(name)
            before = initial[name]
            if name == "collected_at":
                if isinstance(value, datetime) and value.replace(second=0, microsecond=0) != before:
                    changes[name] = value
            elif name == "laboratory":
                if value and value != before:
                    changes[name] = int(value)
            elif isinstance(before, bool):
                if bool(value) != before:
                    changes[name] = bool(value)
            elif (value or "") != (before or ""):
                changes[name] = value or None if name in {"strategy", "substrategy"} else value or ""
        return changes


class SampleCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for cancelling"),
        max_length=250,
        help_text=_("For example: registered twice, the tube broke before it was sent."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
