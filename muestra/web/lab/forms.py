"""Forms of the laboratory screens: scanning, sample actions, result entry (with the signed PDF report)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from muestra.catalog.models import RejectionReason, ResultValue
from muestra.facilities.models import Laboratory
from muestra.samples.services import ReportFile

PDF_MAGIC = b"%PDF-"

#: Attributes of every scan input: the scanning contract (scan.js), and no browser help that would get in the way.
SCAN_ATTRS = {
    "data-scan": "",
    "autocomplete": "off",
    "autocapitalize": "none",
    "spellcheck": "false",
    "enterkeyhint": "go",
    "data-scan-camera-label": _("Scan with camera"),
    "data-scan-camera-stop-label": _("Stop camera"),
}


def checked_report(upload: UploadedFile | None) -> ReportFile | None:
    """The uploaded report as a ReportFile, refused unless it is a PDF within the size limit."""
    if upload is None:
        return None
    limit = settings.MUESTRA["MAX_REPORT_BYTES"]
    if upload.size is not None and upload.size > limit:
        raise forms.ValidationError(
            _("The report file is too large (at most %(limit)s).") % {"limit": filesizeformat(limit)}, code="too_large"
        )
    content = upload.read()
    if not content:
        raise forms.ValidationError(_("The report file is empty."), code="empty")
    if not content.startswith(PDF_MAGIC):
        raise forms.ValidationError(_("The report must be a PDF file."), code="not_pdf")
    return ReportFile(content, "application/pdf", (upload.name or "report.pdf")[:100])


class ReportField(forms.FileField):
    widget = forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"})

    def clean(self, data: Any, initial: Any = None) -> ReportFile | None:  # type: ignore[override]
        upload = super().clean(data, initial)
        return checked_report(upload or None)


def _value_choices(values: Sequence[ResultValue], *, blank: str | None) -> list[tuple[str, str]]:
    choices = [(v.code, v.display_name) for v in values]
    return [("", blank), *choices] if blank is not None else choices


class ScanForm(forms.Form):
    code = forms.CharField(label=_("Tube barcode or sample number"), max_length=60, widget=forms.TextInput(SCAN_ATTRS))

    def clean_code(self) -> str:
        return str(self.cleaned_data["code"]).strip()


class ManifestForm(forms.Form):
    manifest = forms.CharField(label=_("Shipment manifest barcode"), max_length=60, widget=forms.TextInput(SCAN_ATTRS))

    def clean_manifest(self) -> str:
        return str(self.cleaned_data["manifest"]).strip()


class DamageForm(forms.Form):
    sample = forms.TypedChoiceField(label=_("Damaged tube"), coerce=int)
    reason = forms.CharField(
        label=_("What is wrong with it"),
        max_length=250,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. cracked tube, leaking cap")}),
    )

    def __init__(self, *args: Any, tubes: Sequence[tuple[int, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sample"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Choose the tube")), *[(str(pk), label) for pk, label in tubes]]


class RejectForm(forms.Form):
    reason = forms.ChoiceField(label=_("Official rejection reason"))
    note = forms.CharField(label=_("Note (optional)"), max_length=250, required=False)

    def __init__(self, *args: Any, reasons: Sequence[RejectionReason] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reason"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Choose a reason")), *[(r.code, r.display_name) for r in reasons]]


class ReturnForm(forms.Form):
    reason = forms.CharField(label=_("Why is it returned"), max_length=250)


class ForwardForm(forms.Form):
    laboratory = forms.ChoiceField(label=_("Forward to laboratory"))
    reason = forms.CharField(label=_("Reason (optional)"), max_length=250, required=False)

    def __init__(self, *args: Any, laboratories: Sequence[Laboratory] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["laboratory"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Choose a laboratory")), *[(str(lab.platform_id), lab.name) for lab in laboratories]]


class ResultForm(forms.Form):
    value = forms.ChoiceField(label=_("Result"))
    reported_at = forms.DateTimeField(
        label=_("Result time (optional, now if empty)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    report = ReportField(label=_("Signed report (PDF)"), required=False)

    def __init__(self, *args: Any, values: Sequence[ResultValue] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["value"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _value_choices(values, blank=str(_("Choose the result")))


class CorrectForm(forms.Form):
    value = forms.ChoiceField(label=_("Corrected result"))
    reason = forms.CharField(label=_("Reason for the correction"), max_length=250)
    report = ReportField(label=_("New signed report (PDF)"), required=False)

    def __init__(self, *args: Any, values: Sequence[ResultValue] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["value"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _value_choices(values, blank=str(_("Choose the result")))


class CorrectionRequestForm(forms.Form):
    proposed_value = forms.ChoiceField(label=_("Proposed result"))
    reason = forms.CharField(label=_("Why the result must change"), max_length=250, widget=forms.Textarea({"rows": 3}))

    def __init__(self, *args: Any, values: Sequence[ResultValue] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["proposed_value"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _value_choices(values, blank=str(_("Choose the result")))


class GridRowForm(forms.Form):
    """One row of the result grid; a row left without a result is simply skipped."""

    value = forms.ChoiceField(label=_("Result"), required=False)
    report = ReportField(label=_("Signed report (PDF)"), required=False)

    def __init__(self, *args: Any, values: Sequence[ResultValue] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.values = values
        field = self.fields["value"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _value_choices(values, blank="—")

    @property
    def is_blank(self) -> bool:
        """Nothing entered on this row (no result chosen, no file attached)."""
        return not self.data.get(self.add_prefix("value")) and not self.files.get(self.add_prefix("report"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("value") and "value" not in self.errors:
            self.add_error("value", _("Choose the result for this report."))
        return cleaned
