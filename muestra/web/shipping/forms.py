"""Forms of the shipments screens: opening a shipment, and the scan field that fills it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from muestra.facilities.models import Establishment
from muestra.web.mysamples.forms import choice_field


class ShipmentForm(forms.Form):
    """Opens a shipment from one of the person's establishments to one of the labs assigned to it."""

    establishment = forms.ChoiceField(label=_("From (establishment)"))
    laboratory = forms.ChoiceField(label=_("To (laboratory)"))
    note = forms.CharField(label=_("Note for the laboratory"), required=False, max_length=250)

    def __init__(self, *args: Any, establishments: list[Establishment], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "establishment").choices = [(e.code, f"{e.name} ({e.code})") for e in establishments]
        if len(establishments) == 1:
            self.fields["establishment"].initial = establishments[0].code
        # The labs are grouped by establishment when there are several (the service checks the pair).
        labs_by_establishment: list[tuple[str, list[tuple[str, str]]]] = []
        for establishment in establishments:
            labs = [
                (str(a.laboratory.platform_id), a.laboratory.name)
                for a in establishment.assignments.all()
                if a.laboratory.active
            ]
            labs_by_establishment.append((establishment.name, labs))
        if len(establishments) == 1:
            choice_field(self, "laboratory").choices = labs_by_establishment[0][1] if labs_by_establishment else []
        else:
            choice_field(self, "laboratory").choices = labs_by_establishment
        self.fields["note"].widget.attrs["autocomplete"] = "off"


class ScanForm(forms.Form):
    code = forms.CharField(
        label=_("Scan or type the tube's sample number or barcode"),
        max_length=60,
        widget=forms.TextInput(
            attrs={
                "data-scan": "",
                "autocomplete": "off",
                "autocapitalize": "none",
                "spellcheck": "false",
                "enterkeyhint": "go",
                "autofocus": True,
                # Texts of the scanning helper (scan.js), translated here.
                "data-scan-camera-label": _("Scan with camera"),
                "data-scan-camera-stop-label": _("Stop camera"),
                "data-scan-error-label": _("The server could not be reached. Scan the tube again."),
            }
        ),
    )
