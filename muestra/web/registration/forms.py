"""The registration form: what it offers an actor (only their establishments, the labs assigned to the chosen one,
the sample types of the chosen test), and the translation of what was typed into the service's `SampleInput`.

The form parses types (dates, times) and nothing else: every rule (required fields, RUN check digit, plausible
dates, codes) is the service's, reached through `sample_register_check` while typing and `sample_register` on
submit, so the screen can never accept what the API would refuse or the other way round.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from html import escape as html_escape
from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import Role
from muestra.accounts.scoping import Actor
from muestra.catalog.models import (
    DocumentValidator,
    HealthInsurance,
    IdentityDocumentType,
    Interpretation,
    ResultValue,
    SampleType,
    Strategy,
    Test,
)
from muestra.facilities.models import Establishment, Laboratory
from muestra.patients.models import Patient, Sex
from muestra.samples import lookups
from muestra.samples.inputs import PatientInput, SampleInput
from muestra.territories.models import Country, CountryProfile

Choice = tuple[str, str | Promise]

#: The service's field names (`patient.document_number`) -> this form's (`document_number`).
SAMPLE_FIELDS = ("establishment", "laboratory", "test", "sample_type", "strategy", "collected_at", "tube_code")
RESULT_FIELDS = ("result", "result_at")
PATIENT_FIELDS = (
    "document_type",
    "document_number",
    "document_issuer",
    "given_names",
    "paternal_surname",
    "maternal_surname",
    "birth_date",
    "sex",
    "residence",
    "address",
    "phone",
    "email",
    "insurance",
    "nationality",
)
GUARDIAN_FIELDS = (
    "document_type",
    "document_number",
    "document_issuer",
    "given_names",
    "paternal_surname",
    "birth_date",
    "sex",
)
FIELD_MAP: dict[str, str] = {
    **{name: name for name in (*SAMPLE_FIELDS, *RESULT_FIELDS)},
    **{f"patient.{name}": name for name in PATIENT_FIELDS},
    **{f"patient.guardian.{name}": f"guardian_{name}" for name in GUARDIAN_FIELDS},
    "patient": "document_type",
    "patient.guardian": "guardian_document_type",
    "client_code": "tube_code",
}
#: What is cleared after each registration (the next sample is another person's).
PERSON_FIELDS = (*PATIENT_FIELDS, *(f"guardian_{name}" for name in GUARDIAN_FIELDS))
#: Remembered per user (User.registration_defaults) and offered first next time.
REMEMBERED_FIELDS = ("establishment", "laboratory", "test", "sample_type", "strategy")

#: Fields the service always requires (marked for assistive technology; the service still decides).
ALWAYS_REQUIRED = {
    "establishment",
    "test",
    "sample_type",
    "collected_at",
    "document_type",
    "given_names",
    "paternal_surname",
    "birth_date",
    "sex",
}

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
DATETIME_INPUTS = [DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M"]
DATE_INPUTS = ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"]
#: Chile's identity cards carry a QR code with a link such as ...docstatus?RUN=12345678-5&type=CEDULA...
_CARD_QR_RUN = re.compile(r"RUN=([0-9.]{1,12}-?[0-9kK])")


class FastSelect(forms.Select):
    """A select rendered in Python: option lists of hundreds of comunas or countries cost a millisecond instead
    of a template per option, and each option may carry attributes (`option_attrs[value]`)."""

    def __init__(
        self,
        attrs: dict[str, Any] | None = None,
        choices: Iterable[Choice] = (),
        option_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(attrs, choices)
        self.option_attrs: Mapping[str, Mapping[str, Any]] = option_attrs or {}

    # Plain (value, label) pairs: Django's setter normalises every list again, hundreds of options per page.
    @property  # type: ignore[override]
    def choices(self) -> list[Choice]:
        return self._plain_choices

    @choices.setter
    def choices(self, value: Iterable[Any]) -> None:
        self._plain_choices = list(value)

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        current = "" if value is None else str(value)
        parts = [f"<select{flatatt(final)}>"]
        option_attrs = self.option_attrs
        for option_value, label in self.choices:
            text = str(option_value)
            selected = " selected" if text == current else ""
            extra = flatatt(dict(option_attrs[text])) if text in option_attrs else ""
            parts.append(f'<option value="{html_escape(text)}"{extra}{selected}>{html_escape(str(label))}</option>')
        parts.append("</select>")
        return mark_safe("".join(parts))  # noqa: S308 - every value and label is escaped above


class FastInputMixin:
    """An <input> rendered in Python, as Django's `input.html` template would, without a template per field (the
    form has some forty fields; template-rendered widgets made most of the page's CPU time)."""

    input_type: str

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]  # type: ignore[attr-defined]
        shown = "" if widget["value"] is None else f' value="{html_escape(str(widget["value"]))}"'
        html = (
            f'<input type="{html_escape(widget["type"])}" name="{html_escape(name)}"{shown}{flatatt(widget["attrs"])}>'
        )
        return mark_safe(html)  # noqa: S308 - every part is escaped above (flatatt escapes the attributes)


class FastTextInput(FastInputMixin, forms.TextInput):
    pass


class FastDateInput(FastInputMixin, forms.DateInput):
    pass


class FastDateTimeInput(FastInputMixin, forms.DateTimeInput):
    pass


class FastHiddenInput(FastInputMixin, forms.HiddenInput):
    pass


@dataclass
class Offer:
    """What the form offers one actor, resolved from the cached reference rows (no query)."""

    establishments: list[Establishment]
    establishment: Establishment | None
    profile: CountryProfile | None
    laboratories: list[Laboratory]
    tests: list[Test]
    test: Test | None
    sample_types: list[SampleType]
    result_values: list[ResultValue]

    @property
    def fixed_establishment(self) -> bool:
        return len(self.establishments) == 1

    @property
    def point_of_care(self) -> bool:
        return self.test is not None and self.test.result_at_registration


def may_register(actor: Actor) -> bool:
    """Sample takers, establishment managers and national administrators use the registration form."""
    return actor.is_admin or bool(
        actor.establishment_ids and {Role.SAMPLE_TAKER, Role.ESTABLISHMENT_MANAGER} & set(actor.roles)
    )


def actor_establishments(actor: Actor) -> list[Establishment]:
    """The establishments the actor registers for: their own (every active one for a national administrator)."""
    if actor.is_admin and not actor.establishment_ids:
        rows = lookups.active_rows(Establishment)
    else:
        rows = [e for e in (lookups.by_pk(Establishment, pk) for pk in actor.establishment_ids) if e is not None]
    return sorted((e for e in rows if e.active), key=lambda e: e.name)


def make_offer(actor: Actor, values: Mapping[str, Any]) -> Offer:
    establishments = actor_establishments(actor)
    by_code = {e.code: e for e in establishments}
    establishment = by_code.get(str(values.get("establishment") or "")) or (
        establishments[0] if establishments else None
    )
    profile = lookups.by_pk(CountryProfile, establishment.profile_id) if establishment is not None else None
    tests = lookups.active_rows(Test)
    test = lookups.test(values.get("test")) or (tests[0] if tests else None)
    laboratories: list[Laboratory] = []
    if establishment is not None:
        assigned = (lookups.laboratory_by_pk(pk) for pk in sorted(lookups.assigned_lab_ids(establishment.pk)))
        laboratories = [
            lab
            for lab in assigned
            if lab is not None and lab.active and (test is None or test.disease_id in lookups.lab_disease_ids(lab.pk))
        ]
        laboratories.sort(key=lambda lab: lab.name)
    sample_types: list[SampleType] = []
    result_values: list[ResultValue] = []
    if test is not None:
        type_ids, value_ids = lookups.test_allowed(test)
        sample_types = [t for t in lookups.active_rows(SampleType) if not type_ids or t.pk in type_ids]
        sample_types.sort(key=lambda t: t.display_name.casefold())
        result_values = [
            v
            for v in lookups.active_rows(ResultValue)
            if v.pk in value_ids and v.interpretation != Interpretation.RETEST
        ]
    return Offer(establishments, establishment, profile, laboratories, tests, test, sample_types, result_values)


def _named(rows: Iterable[Any], value: str = "code") -> list[Choice]:
    return [(str(getattr(row, value)), row.display_name) for row in rows]


def _blank(label: str | Promise = "—") -> Choice:
    return ("", label)


def now_local_input() -> str:
    return timezone.localtime().strftime(DATETIME_LOCAL)


def new_token() -> str:
    return uuid.uuid4().hex


class RegistrationForm(forms.Form):
    establishment = forms.CharField(label=_("Establishment"), required=False, widget=FastSelect)
    laboratory = forms.CharField(label=_("Destination laboratory"), required=False, widget=FastSelect)
    test = forms.CharField(label=_("Test"), required=False, widget=FastSelect)
    sample_type = forms.CharField(label=_("Sample type"), required=False, widget=FastSelect)
    strategy = forms.CharField(label=_("Strategy"), required=False, widget=FastSelect)

    document_type = forms.CharField(label=_("Identity document"), required=False, widget=FastSelect)
    document_number = forms.CharField(label=_("Document number"), required=False, max_length=200, widget=FastTextInput)
    document_issuer = forms.CharField(label=_("Issuing country"), required=False, widget=FastSelect)
    given_names = forms.CharField(label=_("Given names"), required=False, max_length=200, widget=FastTextInput)
    paternal_surname = forms.CharField(label=_("First surname"), required=False, max_length=200, widget=FastTextInput)
    maternal_surname = forms.CharField(label=_("Second surname"), required=False, max_length=200, widget=FastTextInput)
    birth_date = forms.DateField(
        label=_("Date of birth"),
        required=False,
        input_formats=DATE_INPUTS,
        widget=FastDateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    sex = forms.CharField(label=_("Sex"), required=False, widget=FastSelect)
    residence = forms.CharField(label=_("Comuna or district of residence"), required=False, widget=FastSelect)
    address = forms.CharField(label=_("Address"), required=False, max_length=300, widget=FastTextInput)
    phone = forms.CharField(
        label=_("Phone"), required=False, max_length=40, widget=FastTextInput(attrs={"type": "tel"})
    )
    email = forms.CharField(
        label=_("E-mail (optional)"), required=False, max_length=300, widget=FastTextInput(attrs={"type": "email"})
    )
    insurance = forms.CharField(label=_("Health insurance"), required=False, widget=FastSelect)
    nationality = forms.CharField(label=_("Nationality (optional)"), required=False, widget=FastSelect)

    guardian_document_type = forms.CharField(label=_("Guardian's identity document"), required=False, widget=FastSelect)
    guardian_document_number = forms.CharField(
        label=_("Guardian's document number"), required=False, max_length=200, widget=FastTextInput
    )
    guardian_document_issuer = forms.CharField(label=_("Guardian's issuing country"), required=False, widget=FastSelect)
    guardian_given_names = forms.CharField(
        label=_("Guardian's given names"), required=False, max_length=200, widget=FastTextInput
    )
    guardian_paternal_surname = forms.CharField(
        label=_("Guardian's first surname"), required=False, max_length=200, widget=FastTextInput
    )
    guardian_birth_date = forms.DateField(
        label=_("Guardian's date of birth"),
        required=False,
        input_formats=DATE_INPUTS,
        widget=FastDateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    guardian_sex = forms.CharField(label=_("Guardian's sex"), required=False, widget=FastSelect)

    collected_at = forms.DateTimeField(
        label=_("Collected at"),
        required=False,
        input_formats=DATETIME_INPUTS,
        widget=FastDateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    result = forms.CharField(label=_("Result"), required=False, widget=FastSelect)
    result_at = forms.DateTimeField(
        label=_("Result time (optional, default: collection time)"),
        required=False,
        input_formats=DATETIME_INPUTS,
        widget=FastDateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    tube_code = forms.CharField(label=_("Tube barcode (optional)"), required=False, max_length=60, widget=FastTextInput)
    idempotency_token = forms.CharField(required=False, widget=FastHiddenInput, max_length=64)

    def __init__(self, *args: Any, actor: Actor, offer: Offer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.offer = offer
        self._set_choices()
        self._set_accessibility()

    # --- choices -------------------------------------------------------------------------------------------

    def _select(self, name: str, choices: list[Choice], option_attrs: Mapping[str, Mapping[str, Any]] | None = None):
        widget = self.fields[name].widget
        assert isinstance(widget, FastSelect)
        widget.choices = choices
        if option_attrs is not None:
            widget.option_attrs = option_attrs

    def _set_choices(self) -> None:
        offer = self.offer
        profile_code = offer.profile.code if offer.profile is not None else ""
        self._select("establishment", [(e.code, f"{e.name} ({e.code})") for e in offer.establishments])
        labs: list[Choice] = [(str(lab.platform_id), lab.name) for lab in offer.laboratories]
        if offer.point_of_care or not labs:
            labs.insert(0, _blank(_("None (point-of-care test)") if offer.point_of_care else "—"))
        self._select("laboratory", labs)
        self._select(
            "test",
            _named(offer.tests),
            {t.code: {"data-point-of-care": "1"} for t in offer.tests if t.result_at_registration},
        )
        sample_types = _named(offer.sample_types)
        # No silent default among several specimens: a wrong one would be stored unnoticed (it is remembered).
        self._select("sample_type", sample_types if len(sample_types) == 1 else [_blank(), *sample_types])
        self._select("strategy", [_blank(), *_named(lookups.active_rows(Strategy))])
        documents = [d for d in lookups.active_rows(IdentityDocumentType) if d.profile_code in ("", profile_code)]
        documents.sort(key=lambda d: (d.profile_code != profile_code, d.pk))  # the country's own documents first
        document_attrs: dict[str, dict[str, str]] = {}
        for d in documents:
            attrs = document_attrs.setdefault(d.code, {})
            if d.requires_issuing_country:
                attrs["data-needs-issuer"] = "1"
            if d.validator in (DocumentValidator.NONE, DocumentValidator.NEWBORN):
                attrs["data-no-number"] = "1"
            if d.validator == DocumentValidator.NEWBORN:
                attrs["data-newborn"] = "1"
        self._select("document_type", _named(documents), document_attrs)
        guardian_documents = [
            d for d in documents if d.validator not in (DocumentValidator.NONE, DocumentValidator.NEWBORN)
        ]
        self._select("guardian_document_type", _named(guardian_documents), document_attrs)
        countries: list[Choice] = [_blank(), *[(c.iso_numeric, c.name) for c in lookups.countries() if c.iso_numeric]]
        for name in ("document_issuer", "guardian_document_issuer", "nationality"):
            self._select(name, countries)
        sexes: list[Choice] = [_blank(), *Sex.choices]
        self._select("sex", sexes)
        self._select("guardian_sex", sexes)
        self._select("residence", [_blank(), *[(code, t.name) for code, t in lookups.residences(profile_code)]])
        insurances = [i for i in lookups.active_rows(HealthInsurance) if i.profile_code in ("", profile_code)]
        self._select("insurance", [_blank(), *_named(insurances)])
        self._select("result", [_blank(), *_named(offer.result_values)])

    # --- markup --------------------------------------------------------------------------------------------

    def _set_accessibility(self) -> None:
        check_url = reverse("registration:check")
        for name, field in self.fields.items():
            if name == "idempotency_token":
                continue
            attrs = field.widget.attrs
            attrs["aria-describedby"] = f"id_{name}_error"
            if name in ALWAYS_REQUIRED:
                attrs["aria-required"] = "true"
            # Live validation: the field is checked by the service as soon as it is left.
            attrs.update(
                {
                    "hx-post": f"{check_url}?field={name}",
                    "hx-trigger": "change" if isinstance(field.widget, FastSelect) else "blur",
                    "hx-target": f"#id_{name}_error",
                    "hx-swap": "innerHTML",
                }
            )
        text = {"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}
        self.fields["document_number"].widget.attrs.update(
            {
                **text,
                "hx-post": reverse("registration:patient"),
                "hx-trigger": "change, lookup",
                "hx-target": "#patient-details",
                "hx-swap": "outerHTML",
                "data-lookup": "1",
                "inputmode": "text",
            }
        )
        self.fields["tube_code"].widget.attrs.update(
            {
                **text,
                "data-scan": "1",
                "data-last-field": "1",
                "data-scan-camera-label": _("Scan with camera"),
                "data-scan-camera-stop-label": _("Stop camera"),
            }
        )
        self.fields["guardian_document_number"].widget.attrs.update(text)
        self.fields["phone"].widget.attrs["autocomplete"] = "off"
        for name in ("establishment", "test"):
            # Changing where or what refreshes the labs, sample types and result fields that depend on it.
            self.fields[name].widget.attrs.pop("hx-target", None)
            self.fields[name].widget.attrs.update(
                {
                    "hx-post": reverse("registration:refresh"),
                    "hx-trigger": "change",
                    "hx-swap": "none",
                }
            )
        if self.offer.fixed_establishment:
            self.fields["establishment"].widget = FastHiddenInput()

    # --- field markup, rendered in Python (some forty fields: a template include each cost most of the page) ----

    def hidden_fields_now(self) -> set[str]:
        """Fields that do not apply to the chosen documents (registration.js shows them when they start to)."""
        hidden = set()
        if self.document_kind() in (DocumentValidator.NONE, DocumentValidator.NEWBORN):
            hidden.add("document_number")
        if not self.document_needs_issuer():
            hidden.add("document_issuer")
        if not self.document_needs_issuer("guardian_document_type"):
            hidden.add("guardian_document_issuer")
        return hidden

    def field_html(self, name: str, *, oob: bool = False) -> SafeString:
        """One field as `<div class="field">`: label, widget, and the message slot next to it (announced)."""
        bound = self[name]
        errors = " ".join(str(e) for e in bound.errors)
        if not hasattr(self, "_hidden_now"):
            self._hidden_now = self.hidden_fields_now()
        ident = bound.id_for_label
        classes = "field has-error" if errors else "field"
        extra = (' hx-swap-oob="true"' if oob else "") + (" hidden" if name in self._hidden_now else "")
        label = html_escape(str(bound.label))
        return mark_safe(  # noqa: S308 - the label and messages are escaped; the widget escapes itself
            f'<div class="{classes}" id="field-{name}"{extra}><label for="{ident}">{label}</label>{bound}'
            f'<p class="field-error" id="{ident}_error" aria-live="polite">{html_escape(errors)}</p></div>'
        )

    @property
    def f(self) -> FieldsHtml:
        """`{{ form.f.given_names }}` in a template: that field's markup."""
        return FieldsHtml(self, oob=False)

    @property
    def f_oob(self) -> FieldsHtml:
        """The same markup marked for an htmx out-of-band swap (replaces the field of the same id in the page)."""
        return FieldsHtml(self, oob=True)

    def mark_invalid(self) -> None:
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-invalid"] = "true"

    # --- values --------------------------------------------------------------------------------------------

    def clean_sample_type(self) -> str:
        value = str(self.cleaned_data.get("sample_type") or "")
        if not value:
            raise forms.ValidationError(_("Choose the sample type."), code="required")
        return value

    def clean_document_number(self) -> str:
        return scanned_run(self.cleaned_data.get("document_number") or "")

    def document_needs_issuer(self, name: str = "document_type") -> bool:
        doc = lookups.document_type(self._value(name))
        return doc is not None and doc.requires_issuing_country

    def document_kind(self) -> str:
        doc = lookups.document_type(self._value("document_type"))
        return doc.validator if doc is not None else ""

    def _value(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(name) or "")
        return str(self.initial.get(name) or self.fields[name].initial or "")

    def sample_input(self) -> SampleInput:
        """What was typed, as the service's input (call after `is_valid()`; unparsable dates count as missing)."""
        data: dict[str, Any] = {**getattr(self, "cleaned_data", {})}
        for name in self.fields:
            if name not in data:
                data[name] = None if name in ("birth_date", "guardian_birth_date", "collected_at", "result_at") else ""
        guardian = None
        if self.document_kind() == DocumentValidator.NEWBORN:
            guardian = PatientInput(
                document_type=data["guardian_document_type"],
                document_number=data["guardian_document_number"],
                document_issuer=data["guardian_document_issuer"]
                if self.document_needs_issuer("guardian_document_type")
                else "",
                given_names=data["guardian_given_names"],
                paternal_surname=data["guardian_paternal_surname"],
                birth_date=data["guardian_birth_date"],
                sex=data["guardian_sex"],
            )
        number = data["document_number"]
        if self.document_kind() in (DocumentValidator.NONE, DocumentValidator.NEWBORN):
            number = ""
        patient = PatientInput(
            document_type=data["document_type"],
            document_number=number,
            document_issuer=data["document_issuer"] if self.document_needs_issuer() else "",
            given_names=data["given_names"],
            paternal_surname=data["paternal_surname"],
            maternal_surname=data["maternal_surname"],
            birth_date=data["birth_date"],
            sex=data["sex"],
            residence=data["residence"],
            address=data["address"],
            phone=data["phone"],
            email=data["email"],
            insurance=data["insurance"],
            nationality=data["nationality"],
            guardian=guardian,
        )
        point_of_care = self.offer.point_of_care
        return SampleInput(
            establishment=data["establishment"],
            laboratory=data["laboratory"] or None,
            test=data["test"],
            sample_type=data["sample_type"],
            strategy=data["strategy"],
            collected_at=data["collected_at"],
            tube_code=(data["tube_code"] or "").strip(),
            patient=patient,
            result=data["result"] if point_of_care else "",
            result_at=data["result_at"] if point_of_care else None,
        )

    def remembered(self) -> dict[str, str]:
        data = getattr(self, "cleaned_data", {})
        return {name: str(data.get(name) or "") for name in REMEMBERED_FIELDS}


class FieldsHtml:
    def __init__(self, form: RegistrationForm, *, oob: bool) -> None:
        self.form = form
        self.oob = oob

    def __getitem__(self, name: str) -> SafeString:
        if name not in self.form.fields:
            raise KeyError(name)
        return self.form.field_html(name, oob=self.oob)


def scanned_run(raw: str) -> str:
    """A document number as typed, or the RUN inside the QR code of a Chilean identity card read by a scanner."""
    text = (raw or "").strip()
    match = _CARD_QR_RUN.search(text)
    return match.group(1) if match else text


def initial_values(actor: Actor, offer: Offer, remembered: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh form: the remembered settings where they are still valid, a new person, collected now."""
    initial: dict[str, Any] = {"collected_at": now_local_input(), "idempotency_token": new_token()}
    if offer.establishment is not None:
        initial["establishment"] = offer.establishment.code
    lab_ids = {str(lab.platform_id) for lab in offer.laboratories}
    if str(remembered.get("laboratory") or "") in lab_ids:
        initial["laboratory"] = str(remembered["laboratory"])
    elif offer.laboratories and not offer.point_of_care:
        initial["laboratory"] = str(offer.laboratories[0].platform_id)
    if offer.test is not None:
        initial["test"] = offer.test.code
    type_codes = [t.code for t in offer.sample_types]
    remembered_type = str(remembered.get("sample_type") or "")
    if remembered_type in type_codes:
        initial["sample_type"] = remembered_type
    elif len(type_codes) == 1:
        initial["sample_type"] = type_codes[0]
    strategy = lookups.strategy(remembered.get("strategy"))
    if strategy is not None:
        initial["strategy"] = strategy.code
    initial.update(person_initial(offer))
    return initial


def person_initial(offer: Offer) -> dict[str, Any]:
    """The patient part of a fresh form: the country's usual document, living where the establishment is."""
    initial: dict[str, Any] = {name: "" for name in PERSON_FIELDS}
    profile_code = offer.profile.code if offer.profile is not None else ""
    documents = [d for d in lookups.active_rows(IdentityDocumentType) if d.profile_code == profile_code]
    if documents:
        initial["document_type"] = documents[0].code
        initial["guardian_document_type"] = documents[0].code
    if offer.establishment is not None:
        for code, territory in lookups.residences(profile_code):
            if territory.pk == offer.establishment.territory_id:
                initial["residence"] = code
                break
    return initial


def patient_values(patient: Patient, profile_code: str) -> dict[str, Any]:
    """A known patient's details as form values (identity, and contact details the taker may update)."""
    residence = ""
    if patient.residence_id is not None:
        for code, territory in lookups.residences(profile_code):
            if territory.pk == patient.residence_id:
                residence = code
                break
    insurance = lookups.by_pk(HealthInsurance, patient.insurance_id)
    nationality = lookups.by_pk(Country, patient.nationality_id)
    values: dict[str, Any] = {
        "document_issuer": patient.document_issuer,
        "given_names": patient.given_names,
        "paternal_surname": patient.paternal_surname,
        "maternal_surname": patient.maternal_surname,
        "birth_date": patient.birth_date.isoformat() if isinstance(patient.birth_date, date) else "",
        "sex": patient.sex,
        "residence": residence,
        "address": patient.address,
        "phone": patient.phone,
        "email": patient.email,
        "insurance": insurance.code if insurance is not None else "",
        "nationality": nationality.iso_numeric if nationality is not None else "",
    }
    return values


def as_local_input(value: datetime | None) -> str:
    return timezone.localtime(value).strftime(DATETIME_LOCAL) if value is not None else ""
