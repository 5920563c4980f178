"""POST /fhir/: a Bundle of lab results, read entry by entry and recorded through the sample services.

A result is an Observation whose code is a test's LOINC code. Around it, found by reference (`fullUrl`,
`Type/id`, or a logical `Reference.identifier`): the Specimen (Observation.specimen, else the DiagnosticReport's),
the ServiceRequest (Observation.basedOn, the report's, or Specimen.request) and the DiagnosticReport that lists
the Observation in `result` (its `presentedForm` carries the signed PDF). The sample is the one every identifier
of the Specimen and the ServiceRequest names: our 10-digit number, the tube barcode, or the lab's own code
(`docs/fhir.md` lists the systems). Missing or out of scope is the same answer; in a batch such a result is held
for the lab's staff to match, never guessed.

Bundle semantics: a `transaction` is atomic (FHIR): every entry is checked first, then all results are recorded
in one database transaction, or none is and the answer is one OperationOutcome naming every failing entry.
`batch`, `collection`, `document` and `message` are processed entry by entry: one bad entry never stops the
others, and the answer is a `batch-response` with a status and an OperationOutcome per entry.

Every Bundle is recorded in the intake log (`Bundle/<type>`), each entry's fate as an item. The same bytes sent
again by the same sender are answered from the log without touching anything, unless some entry was refused the
first time (then the Bundle is read again: the services ignore what is already recorded).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from fhir.resources.R4B import fhirtypes, get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from muestra.accounts.scoping import Actor
from muestra.api.errors import field_path, translate_pydantic_error
from muestra.catalog.models import ResultValue, Test
from muestra.core.errors import DomainError, NotFound
from muestra.integrations import services as intake_services
from muestra.integrations.fhir import systems
from muestra.integrations.fhir.outcomes import Issue, issues_from_domain_error, operation_outcome, status_line
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples import lookups
from muestra.samples.models import Channel, Sample, SampleState
from muestra.samples.selectors import IdentifierKind, SampleIdentifier, public_number, samples_by_identifiers
from muestra.samples.services import (
    ReportFile,
    ResultItem,
    result_correct,
    result_deliver,
    result_deliver_batch,
    sample_answers_record,
)

BUNDLE_TYPES = ("transaction", "batch", "collection", "document", "message")
RESULT_RESOURCES = ("Observation", "DiagnosticReport", "Specimen", "ServiceRequest", "Patient")
#: Results are coded in SNOMED CT; labs often send "Detected"/"Not detected" rather than positive/negative.
RESULT_ALIASES = {"260373001": "positive", "260415000": "negative", "895231008": "negative"}
#: HL7 v3 ObservationInterpretation codes, used when the Observation has no value.
INTERPRETATION_VALUES = {
    "POS": "positive",
    "DET": "positive",
    "NEG": "negative",
    "ND": "negative",
    "IND": "indeterminate",
}
FINAL = {"final"}
#: What checking and applying a result reads of its sample.
SAMPLE_FIELDS = ("test_id", "state", "result_value_id", "laboratory_id")
CORRECTION = {"corrected", "amended"}
PDF_MAGIC = b"%PDF"

#: The services' field names -> where the element lives in the entry's resource.
EXPRESSIONS = {
    "sample": "Specimen.identifier",
    "laboratory": "Specimen.identifier",
    "result": "Observation.value",
    "reported_at": "Observation.issued",
    "report": "DiagnosticReport.presentedForm",
    "reason": "Observation.note",
}


class BundleInvalid(Exception):
    """The whole Bundle cannot be read: answered 400 with an OperationOutcome, nothing processed."""

    def __init__(self, issues: list[Issue], status: int = 400) -> None:
        super().__init__(str(issues[0].diagnostics) if issues else "invalid")
        self.issues = issues
        self.status = status


@dataclass
class Entry:
    index: int
    raw: dict[str, Any]
    resource_type: str = ""
    resource: Any = None
    full_url: str = ""
    issues: list[Issue] = field(default_factory=list)
    answer: bool = False  # an answer to an order question, stored with its results' sample

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"


@dataclass
class Item:
    """One result to record: an Observation and what the Bundle says around it."""

    observation: Entry
    report: Entry | None = None
    specimen: Entry | None = None
    order: Entry | None = None
    patient: Entry | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    test: Test | None = None
    value: ResultValue | None = None
    correction: bool = False
    reported_at: datetime | None = None
    report_file: ReportFile | None = None
    reason: str = ""
    sample_pk: int | None = None
    #: Ask-on-order-entry answers (Observations of the same order or specimen that are not a test's result).
    answers: dict[str, str] = field(default_factory=dict)
    # outcome
    held_status: int = 0
    status: int = 0
    outcome: str = ""
    issues: list[Issue] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return " ".join(value for _system, value in self.identifiers)[:120]

    def fail(self, status: int, issues: list[Issue], outcome: str = IntakeItem.Outcome.REJECTED) -> None:
        self.status, self.outcome, self.issues = status, outcome, issues
        if outcome == IntakeItem.Outcome.HELD:
            # Not refused: kept for a person of the lab to match (202). A transaction refuses it with `held_status`.
            self.held_status, self.status = status, 202
            self.issues = [Issue("warning", i.code, i.diagnostics, i.expression) for i in issues]
            self.issues.append(
                Issue(
                    "information",
                    "informational",
                    _("Held for your laboratory's staff to match with a sample."),
                    [self.observation.path],
                )
            )

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "identifiers": [f"{s}|{v}" if s else v for s, v in self.identifiers],
            "test": self.test.code if self.test else "",
            "result": self.value.code if self.value else "",
            "correction": self.correction,
            "reported_at": self.reported_at.isoformat() if self.reported_at else "",
            "report_sha256": self.report_file.sha256 if self.report_file else "",
        }
        if self.outcome == IntakeItem.Outcome.HELD:
            # What a person matching it by hand needs to see (the patient is context, never used to match).
            data["patient"] = _patient_summary(self.patient)
            data["collected"] = _collected_text(self.specimen)
            data["test_text"] = _code_text(self.observation.resource.code)
            data["result_text"] = _code_text(self.observation.resource.valueCodeableConcept) or str(
                self.observation.resource.valueString or ""
            )
        return data


def _code_text(concept: Any) -> str:
    if concept is None:
        return ""
    if concept.text:
        return str(concept.text)
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return str(coding.display or coding.code)
    return ""


def _patient_summary(patient: Entry | None) -> dict[str, str]:
    if patient is None or patient.resource is None:
        return {}
    resource = patient.resource
    document = next((str(i.value) for i in resource.identifier or [] if i.value), "")
    name = (resource.name or [None])[0]
    return {
        "document": document,
        "family": str(name.family or "") if name is not None else "",
        "given": " ".join(str(g) for g in name.given or []) if name is not None else "",
        "birth": str(resource.birthDate or ""),
    }


def _collected_text(specimen: Entry | None) -> str:
    collection = specimen.resource.collection if specimen is not None and specimen.resource is not None else None
    when = getattr(collection, "collectedDateTime", None) if collection is not None else None
    return when.isoformat() if isinstance(when, datetime) else str(when or "")


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


# --- reading the Bundle -----------------------------------------------------------------------------------------


def _pydantic_issues(errors: Iterable[ErrorDetails], prefix: str) -> list[Issue]:
    issues = []
    for err in errors:
        code, message = translate_pydantic_error(err)
        if err.get("type") == "value_error":  # fhir.resources' own checks speak English only
            text = str(err.get("msg", "")).casefold()
            if "date" in text or "instant" in text or "time" in text:
                code, message = "invalid_datetime", _("Enter a valid date/time.")
            else:
                code, message = "invalid", _("Enter a valid value.")
        path = field_path(err.get("loc", ()), strip_source=False)
        fhir_code = {"required": "required", "unknown_field": "structure"}.get(code, "value")
        issues.append(Issue("error", fhir_code, message, [f"{prefix}.{path}" if path else prefix]))
    return issues


# Stands for an entry's fullUrl while the rest of its envelope is validated (the URLs are validated together).
_URL_STAND_IN = "urn:uuid:00000000-0000-0000-0000-000000000000"
_FULL_URLS: TypeAdapter[list[str]] = TypeAdapter(list[fhirtypes.UriType])


def _entry_order(error: ErrorDetails) -> int:
    loc = error["loc"]
    return loc[1] if len(loc) > 1 and loc[0] == "entry" and isinstance(loc[1], int) else -1


def _validated_envelope(data: dict[str, Any], raw_entries: list[dict[str, Any]]) -> str:
    """Validates the Bundle without its resources (so one bad resource is that entry's problem only) and returns
    its type; raises BundleInvalid with every envelope error.

    fhir.resources builds and checks two models per entry (BundleEntry and its request) in Python, which cost a
    third of a large Bundle's validation, and a LIS sends the same envelope again and again: `{"request":
    {"method": "POST", "url": "Observation"}}` apart from the fullUrl. So the Bundle's own elements are validated
    once, each distinct envelope once with its fullUrl stood in for, and the fullUrls together as the type
    fhir.resources gives `BundleEntry.fullUrl`: the same checks and error locations as validating the whole
    shell, paid once per distinct envelope instead of once per entry."""
    errors: list[ErrorDetails] = []
    try:
        bundle = Bundle.model_validate({k: v for k, v in data.items() if k != "entry"})
    except ValidationError as exc:
        errors.extend(exc.errors())
        bundle = None
    checked: dict[str, list[ErrorDetails]] = {}
    urls: list[tuple[int, str]] = []
    for index, raw in enumerate(raw_entries):
        envelope = {}
        for key, value in raw.items():
            if key == "fullUrl" and isinstance(value, str):
                urls.append((index, value))
                value = _URL_STAND_IN
            if key != "resource":
                envelope[key] = value
        signature = json.dumps(envelope, sort_keys=True)
        found = checked.get(signature)
        if found is None:
            try:
                BundleEntry.model_validate(envelope)
                found = []
            except ValidationError as exc:
                found = exc.errors()
            checked[signature] = found
        errors.extend({**err, "loc": ("entry", index, *err["loc"])} for err in found)
    try:
        _FULL_URLS.validate_python([url for _index, url in urls])
    except ValidationError as exc:
        for err in exc.errors():
            index = urls[int(err["loc"][0])][0]
            errors.append({**err, "loc": ("entry", index, "fullUrl", *err["loc"][1:])})
    if errors or bundle is None:
        errors.sort(key=_entry_order)  # stable: the Bundle's own errors first, then entry by entry
        raise BundleInvalid(_pydantic_issues(errors, "Bundle"))
    return str(bundle.type or "")


def parse_bundle(content: bytes) -> tuple[str, list[Entry]]:
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise BundleInvalid([Issue("fatal", "structure", _("The body is not valid JSON."))]) from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise BundleInvalid(
            [Issue("fatal", "structure", _('Send a Bundle resource (resourceType "Bundle").'), ["Bundle"])]
        )
    raw_entries = data.get("entry") or []
    if not isinstance(raw_entries, list) or not all(isinstance(e, dict) for e in raw_entries):
        raise BundleInvalid(
            [Issue("fatal", "structure", _("Bundle.entry must be a list of entries."), ["Bundle.entry"])]
        )
    limit = settings.MUESTRA["MAX_BATCH_ITEMS"] * 5
    if len(raw_entries) > limit:
        raise BundleInvalid(
            [
                Issue(
                    "fatal",
                    "too-costly",
                    _("A Bundle may hold at most %(max)s entries.") % {"max": limit},
                    ["Bundle.entry"],
                )
            ],
            413,
        )
    kind = _validated_envelope(data, raw_entries)
    if kind not in BUNDLE_TYPES:
        raise BundleInvalid(
            [
                Issue(
                    "fatal",
                    "not-supported",
                    _("Bundle type %(type)s is not accepted here; send one of: %(types)s.")
                    % {"type": kind or "?", "types": ", ".join(BUNDLE_TYPES)},
                    ["Bundle.type"],
                )
            ]
        )
    entries = []
    for index, raw in enumerate(raw_entries):
        entry = Entry(index=index, raw=raw, full_url=str(raw.get("fullUrl") or ""))
        resource = raw.get("resource")
        if not isinstance(resource, dict):
            entry.issues.append(
                Issue("error", "required", _("This entry has no resource."), [f"{entry.path}.resource"])
            )
        else:
            entry.resource_type = str(resource.get("resourceType") or "")
            try:
                model = get_fhir_model_class(entry.resource_type)
            except (ValueError, KeyError):
                entry.issues.append(
                    Issue(
                        "error",
                        "not-supported",
                        _("Unknown resource type %(type)s.") % {"type": entry.resource_type or "?"},
                        [f"{entry.path}.resource.resourceType"],
                    )
                )
            else:
                try:
                    entry.resource = model.model_validate(resource)
                except ValidationError as exc:
                    entry.issues.extend(_pydantic_issues(exc.errors(), f"{entry.path}.resource"))
        entries.append(entry)
    return kind, entries


class Index:
    """Entries by fullUrl and by `Type/id`, to resolve references inside the Bundle."""

    def __init__(self, entries: list[Entry]) -> None:
        self.by_key: dict[str, Entry] = {}
        for entry in entries:
            if entry.resource is None:
                continue
            if entry.full_url:
                self.by_key[entry.full_url] = entry
            rid = getattr(entry.resource, "id", None)
            if rid:
                self.by_key[f"{entry.resource_type}/{rid}"] = entry

    def resolve(self, reference: Any, kind: str) -> Entry | None:
        text = getattr(reference, "reference", None) if reference is not None else None
        if not text:
            return None
        found = self.by_key.get(text)
        if found is None and "/" in text:
            parts = text.rstrip("/").split("/")
            found = self.by_key.get("/".join(parts[-2:]))
        return found if found is not None and found.resource_type == kind else None


def _server_id(reference: Any, kind: str) -> str | None:
    """`Specimen/1000000123` (or an absolute URL ending so) not found in the Bundle: one of our resources."""
    text = getattr(reference, "reference", None) if reference is not None else None
    if not text or "/" not in text:
        return None
    parts = text.rstrip("/").split("/")
    return parts[-1] if parts[-2] == kind else None


def _identifier_pairs(identifiers: Iterable[Any]) -> list[tuple[str, str]]:
    pairs = []
    for identifier in identifiers:
        if identifier is not None and identifier.value:
            pairs.append((str(identifier.system or ""), str(identifier.value).strip()))
    return pairs


def _tests_by_loinc() -> dict[str, Test]:
    return {t.loinc_code: t for t in lookups.active_rows(Test) if t.loinc_code}


def _loinc_test(resource: Any, tests: dict[str, Test]) -> Test | None:
    for coding in getattr(resource.code, "coding", None) or []:
        if coding.code and (not coding.system or coding.system == systems.LOINC) and coding.code in tests:
            return tests[coding.code]
    return None


def _result_value(observation: Any) -> ResultValue | None:
    concept = observation.valueCodeableConcept
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code:
            code = RESULT_ALIASES.get(coding.code, coding.code)
            value = lookups.result_value(code)
            if value is not None:
                return value
    if observation.valueString:
        value = lookups.result_value(observation.valueString)
        if value is not None:
            return value
    for concept in observation.interpretation or []:
        for coding in concept.coding or []:
            if coding.code in INTERPRETATION_VALUES:
                return lookups.result_value(INTERPRETATION_VALUES[coding.code])
    return None


def _has_value(observation: Any) -> bool:
    return bool(observation.valueCodeableConcept or observation.valueString or observation.interpretation)


def _as_datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _report_file(report: Entry) -> ReportFile | None:
    for attachment in report.resource.presentedForm or []:
        content = attachment.data
        if not content:
            continue
        content_type = str(attachment.contentType or "application/pdf")
        if "pdf" not in content_type.casefold() or not bytes(content).startswith(PDF_MAGIC):
            raise _ItemRefused(
                422,
                [
                    Issue(
                        "error", "value", _("The report must be a PDF file."), [f"{report.path}.resource.presentedForm"]
                    )
                ],
            )
        return ReportFile(content=bytes(content), content_type="application/pdf", name="report.pdf")
    return None


class _ItemRefused(Exception):
    def __init__(self, status: int, issues: list[Issue], outcome: str = IntakeItem.Outcome.REJECTED) -> None:
        super().__init__("refused")
        self.status, self.issues, self.outcome = status, issues, outcome


def build_items(entries: list[Entry]) -> tuple[list[Item], dict[int, list[Item]]]:
    """The results in the Bundle, and for each entry index the results it belongs to."""
    index = Index(entries)
    tests = _tests_by_loinc()
    reports = [e for e in entries if e.resource_type == "DiagnosticReport" and e.resource is not None]
    items: list[Item] = []
    links: dict[int, list[Item]] = {}
    # Each Observation's report: the first DiagnosticReport listing it in `result` (one pass over the reports).
    report_of: dict[int, Entry] = {}
    for report in reports:
        for ref in report.resource.result or []:
            found = index.resolve(ref, "Observation")
            if found is not None:
                report_of.setdefault(id(found), report)
    context: list[Entry] = []
    for entry in entries:
        if entry.resource_type != "Observation" or entry.resource is None:
            continue
        test = _loinc_test(entry.resource, tests)
        if test is None and id(entry) not in report_of:
            context.append(entry)  # an answer to an order question, a Ct value...: context, not a result
            continue
        item = Item(observation=entry, test=test, report=report_of.get(id(entry)))
        items.append(item)
        _gather(item, index)
        for linked in (item.observation, item.report, item.specimen, item.order, item.patient):
            if linked is not None:
                links.setdefault(linked.index, []).append(item)
    _gather_answers(items, context, index)
    return items, links


def _answer_text(observation: Any) -> str:
    """An answer's value as text: a coded answer's display (or code), a string, a date, a number, a yes/no."""
    if observation.valueCodeableConcept is not None:
        return _code_text(observation.valueCodeableConcept)
    for name in ("valueString", "valueDateTime", "valueBoolean", "valueInteger"):
        value = getattr(observation, name, None)
        if value is not None:
            return value.isoformat() if isinstance(value, datetime) else str(value)
    if observation.valueQuantity is not None and observation.valueQuantity.value is not None:
        return f"{observation.valueQuantity.value} {observation.valueQuantity.unit or ''}".strip()
    return ""


def _gather_answers(items: list[Item], context: list[Entry], index: Index) -> None:
    """Observations that answer the order's questions (LOINC-coded, not a test of the catalogue) belong to the
    results of the same ServiceRequest (`basedOn`) or Specimen: they are stored with the sample as answers."""
    by_order: dict[int, list[Item]] = {}
    by_specimen: dict[int, list[Item]] = {}
    for item in items:
        if item.order is not None:
            by_order.setdefault(item.order.index, []).append(item)
        if item.specimen is not None:
            by_specimen.setdefault(item.specimen.index, []).append(item)
    for entry in context:
        obs = entry.resource
        code = next((str(c.code) for c in obs.code.coding or [] if c.code), "") if obs.code else ""
        text = _answer_text(obs)
        if not code or not text:
            continue
        owners: dict[int, Item] = {}
        for ref in obs.basedOn or []:
            found = index.resolve(ref, "ServiceRequest")
            for item in by_order.get(found.index, []) if found is not None else []:
                owners[id(item)] = item
        found = index.resolve(obs.specimen, "Specimen")
        for item in by_specimen.get(found.index, []) if found is not None else []:
            owners[id(item)] = item
        for item in owners.values():
            item.answers[code] = text
        if owners:
            entry.answer = True


def _gather(item: Item, index: Index) -> None:
    obs = item.observation.resource
    report = item.report.resource if item.report else None
    specimen_refs = [obs.specimen, *list(report.specimen or [] if report else [])]
    order_refs = list(obs.basedOn or []) + list(report.basedOn or [] if report else [])
    for ref in specimen_refs:
        if ref is None:
            continue
        found = index.resolve(ref, "Specimen")
        if found is not None and item.specimen is None:
            item.specimen = found
        elif found is None and (number := _server_id(ref, "Specimen")):
            item.identifiers.append((systems.SAMPLE_NUMBER, number))
        item.identifiers.extend(_identifier_pairs([ref.identifier]))
    if item.specimen is not None:
        spec = item.specimen.resource
        item.identifiers.extend(_identifier_pairs([*list(spec.identifier or []), spec.accessionIdentifier]))
        order_refs.extend(spec.request or [])
    for ref in order_refs:
        found = index.resolve(ref, "ServiceRequest")
        if found is not None and item.order is None:
            item.order = found
        elif found is None and (number := _server_id(ref, "ServiceRequest")):
            item.identifiers.append((systems.SAMPLE_NUMBER, number))
        item.identifiers.extend(_identifier_pairs([ref.identifier]))
    if item.order is not None:
        item.identifiers.extend(_identifier_pairs(item.order.resource.identifier or []))
    # The person is context only (never used to find the sample), but its entry shares the result's fate.
    for holder in (item.observation, item.specimen, item.order, item.report):
        if holder is not None and item.patient is None:
            item.patient = index.resolve(getattr(holder.resource, "subject", None), "Patient")
    item.identifiers = list(dict.fromkeys(item.identifiers))


# --- checking each result ---------------------------------------------------------------------------------------


def _kind_of(system: str) -> IdentifierKind:
    if system in systems.SAMPLE_NUMBER_ALIASES:
        return IdentifierKind.NUMBER
    if system == systems.TUBE_BARCODE:
        return IdentifierKind.TUBE
    if system.startswith(systems.LAB_SAMPLE_CODE):
        return IdentifierKind.CLIENT
    return IdentifierKind.ANY if not system else IdentifierKind.CLIENT


def _sample_identifiers(item: Item) -> list[SampleIdentifier]:
    return [SampleIdentifier(value, _kind_of(system)) for system, value in item.identifiers]


def resolve_samples(actor: Actor, items: list[Item]) -> dict[int, Sample]:
    """Finds each item's sample among those the actor sees, in one query for the whole Bundle."""
    found = samples_by_identifiers(
        actor, [i for item in items for i in _sample_identifiers(item)], fields=SAMPLE_FIELDS
    )
    for item in items:
        candidates = found.candidates(_sample_identifiers(item))
        if len(candidates) == 1:
            item.sample_pk = candidates[0].pk
        elif len(candidates) > 1:
            item.fail(
                409,
                [
                    Issue(
                        "error",
                        "conflict",
                        _("The identifiers of this result name different samples; it is held for your staff to match."),
                        [f"{item.observation.path}.resource.specimen"],
                    )
                ],
                IntakeItem.Outcome.HELD,
            )
    return found.samples


def check_item(item: Item, samples: dict[int, Sample]) -> None:
    """Everything that can be known before writing; sets `item.status` when the item cannot be recorded."""
    if item.status:
        return
    obs_path = f"{item.observation.path}.resource"
    try:
        if not item.identifiers:
            raise _ItemRefused(
                422,
                [
                    Issue(
                        "error",
                        "required",
                        _(
                            "No sample identifier: give the Specimen (identifier or accessionIdentifier) or the "
                            "ServiceRequest."
                        ),
                        [f"{obs_path}.specimen"],
                    )
                ],
            )
        if item.test is None:
            raise _ItemRefused(
                422,
                [
                    Issue(
                        "error",
                        "value",
                        _("Unknown test: Observation.code must be a test's LOINC code."),
                        [f"{obs_path}.code"],
                    )
                ],
            )
        status = str(item.observation.resource.status or "")
        report_status = str(item.report.resource.status or "") if item.report else ""
        if status not in FINAL | CORRECTION:
            raise _ItemRefused(
                422,
                [
                    Issue(
                        "error",
                        "not-supported",
                        _("Only final, corrected or amended results are recorded (status is %(status)s).")
                        % {"status": status},
                        [f"{obs_path}.status"],
                    )
                ],
            )
        item.correction = status in CORRECTION or report_status in CORRECTION
        item.value = _result_value(item.observation.resource)
        if item.value is None:
            raise _ItemRefused(
                422,
                [
                    Issue(
                        "error",
                        "value" if _has_value(item.observation.resource) else "required",
                        _("Unknown result: send valueCodeableConcept with a SNOMED CT result code."),
                        [f"{obs_path}.valueCodeableConcept"],
                    )
                ],
            )
        obs = item.observation.resource
        item.reported_at = _as_datetime(obs.issued) or (
            _as_datetime(item.report.resource.issued) if item.report else None
        )
        notes = [n.text for n in (obs.note or []) if n.text]
        if item.report is not None and item.report.resource.conclusion:
            notes.append(item.report.resource.conclusion)
        item.reason = (notes[0] if notes else "Corrected by the laboratory system (FHIR)")[:250]
        if item.report is not None:
            item.report_file = _report_file(item.report)
        sample = samples.get(item.sample_pk) if item.sample_pk is not None else None
        if sample is None:
            raise _ItemRefused(
                404,
                [
                    Issue(
                        "error",
                        "not-found",
                        _("Sample not found: no sample of yours has these identifiers (%(ids)s).")
                        % {"ids": item.reference},
                        [f"{item.specimen.path}.resource.identifier" if item.specimen else f"{obs_path}.specimen"],
                    )
                ],
                IntakeItem.Outcome.HELD,
            )
        if sample.test_id != item.test.pk:
            test = lookups.by_pk(Test, sample.test_id)
            raise _ItemRefused(
                422,
                [
                    Issue(
                        "error",
                        "business-rule",
                        _("Sample %(number)s was registered for test %(test)s, not this one.")
                        % {"number": sample.number, "test": test.display_name if test else "?"},
                        [f"{obs_path}.code"],
                    )
                ],
            )
    except _ItemRefused as refused:
        item.fail(refused.status, refused.issues, refused.outcome)


def apply_item(actor: Actor, item: Item, samples: dict[int, Sample]) -> None:
    """Records one checked result (and its order's answers) through the services; raises DomainError when they
    refuse it."""
    _apply_result(actor, item, samples)
    _record_answers(actor, item)


def _record_answers(actor: Actor, item: Item) -> None:
    if item.answers and item.sample_pk is not None:
        sample_answers_record(actor=actor, sample_id=item.sample_pk, answers=item.answers, channel=Channel.FHIR)


def _apply_result(actor: Actor, item: Item, samples: dict[int, Sample]) -> None:
    assert item.sample_pk is not None and item.value is not None
    sample = samples[item.sample_pk]
    if item.correction and sample.state == SampleState.RESULT:
        if sample.result_value_id == item.value.pk and item.report_file is None:
            item.status, item.outcome = 200, IntakeItem.Outcome.UNCHANGED
            return
        if sample.result_value_id == item.value.pk:
            current = sample.results.order_by("-version").values_list("report_sha256", flat=True).first()
            if current == item.report_file.sha256:  # type: ignore[union-attr]
                item.status, item.outcome = 200, IntakeItem.Outcome.UNCHANGED
                return
        result_correct(
            actor=actor,
            sample_id=sample.pk,
            value=item.value.code,
            reason=item.reason,
            reported_at=item.reported_at,
            report=item.report_file,
            channel=Channel.FHIR,
        )
        item.status, item.outcome = 201, IntakeItem.Outcome.ACCEPTED
        sample.result_value_id = item.value.pk
        return
    _result, recorded = result_deliver(
        actor=actor,
        sample_id=sample.pk,
        value=item.value.code,
        reported_at=item.reported_at,
        report=item.report_file,
        channel=Channel.FHIR,
    )
    # Another entry of the same Bundle may name this sample again (a correction after the first result).
    sample.state, sample.result_value_id = SampleState.RESULT, item.value.pk
    item.status = 201 if recorded else 200
    item.outcome = IntakeItem.Outcome.ACCEPTED if recorded else IntakeItem.Outcome.UNCHANGED


def apply_items(actor: Actor, items: list[Item], samples: dict[int, Sample], *, all_or_nothing: bool = False) -> None:
    """Records every checked result of a Bundle: plain deliveries in one `result_deliver_batch` (one transaction,
    one outcome each), corrections of stored results and samples named by several results one by one, in Bundle
    order. With `all_or_nothing` the first refusal raises `_Rollback` (the caller's transaction undoes the rest)."""
    todo = [item for item in items if not item.status and item.sample_pk is not None]
    named = Counter(item.sample_pk for item in todo)
    batch: list[Item] = []
    one_by_one: list[Item] = []
    for item in todo:
        correcting = item.correction and samples[item.sample_pk].state == SampleState.RESULT  # type: ignore[index]
        (one_by_one if correcting or named[item.sample_pk] > 1 else batch).append(item)
    if batch:
        outcomes = result_deliver_batch(
            actor=actor,
            items=[
                ResultItem(
                    sample_id=item.sample_pk,  # type: ignore[arg-type]
                    value=item.value.code,  # type: ignore[union-attr]
                    reported_at=item.reported_at,
                    report=item.report_file,
                    answers=item.answers or None,
                )
                for item in batch
            ],
            channel=Channel.FHIR,
        )
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome.error is not None:
                _domain_failure(item, outcome.error)
                if all_or_nothing:
                    raise _Rollback from outcome.error
                continue
            item.status = 201 if outcome.recorded else 200
            item.outcome = IntakeItem.Outcome.ACCEPTED if outcome.recorded else IntakeItem.Outcome.UNCHANGED
            if not outcome.recorded and item.answers:
                # A repeat: its answers are stored on their own (nothing changes when they already are).
                with contextlib.suppress(DomainError):
                    _record_answers(actor, item)
    for item in one_by_one:
        try:
            apply_item(actor, item, samples)
        except DomainError as exc:
            _domain_failure(item, exc)
            if all_or_nothing:
                raise _Rollback from exc


def _domain_failure(item: Item, exc: DomainError) -> None:
    prefix = f"{item.observation.path}.resource."
    expressions = {k: v.split(".", 1)[1] for k, v in EXPRESSIONS.items() if v.startswith("Observation.")}
    issues = issues_from_domain_error(exc, expressions, prefix)
    if isinstance(exc, NotFound):
        item.fail(404, issues, IntakeItem.Outcome.HELD)
    else:
        item.fail(exc.status, issues)


# --- the answer ---------------------------------------------------------------------------------------------------


@dataclass
class EntryResult:
    status: int
    outcome: str
    issues: list[Issue]
    location: str = ""
    sample_id: int | None = None
    reference: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _informational(entry: Entry, message: str | Promise) -> EntryResult:
    """An entry accepted but not stored on its own."""
    return EntryResult(
        200, IntakeItem.Outcome.UNCHANGED, [Issue("information", "informational", message, [entry.path])]
    )


def _entry_results(entries: list[Entry], items: list[Item], links: dict[int, list[Item]]) -> list[EntryResult]:
    results = []
    for entry in entries:
        if entry.issues:
            results.append(EntryResult(422, IntakeItem.Outcome.REJECTED, entry.issues))
            continue
        linked = links.get(entry.index, [])
        if not linked:
            message = (
                _("An answer to the order's questions: stored with the sample of its result.")
                if entry.answer
                else _("Not stored: this entry is not part of a result (or is context only).")
            )
            results.append(_informational(entry, message))
            continue
        worst = max(linked, key=lambda i: (i.status >= 300, i.status))
        own = worst.observation is entry
        location = ""
        if worst.status < 300 and worst.sample_pk is not None and entry.resource_type in RESULT_RESOURCES[:4]:
            location = f"{entry.resource_type}/{public_number(worst.sample_pk)}"
        if own or worst.status >= 300:
            issues = worst.issues or [_accepted_issue(worst, entry)]
        else:
            issues = [_accepted_issue(worst, entry)]
        results.append(
            EntryResult(
                worst.status,
                worst.outcome,
                issues,
                location=location,
                sample_id=worst.sample_pk if worst.status < 300 else None,
                reference=worst.reference,
                data=worst.data() if own else {"result_entry": worst.observation.index},
            )
        )
    return results


def _accepted_issue(item: Item, entry: Entry) -> Issue:
    number = public_number(item.sample_pk) if item.sample_pk else "?"
    if item.status == 201:
        message = _("Result recorded for sample %(number)s.") % {"number": number}
    else:
        message = _("Sample %(number)s already had this result; nothing changed.") % {"number": number}
    return Issue("information", "informational", message, [entry.path])


def _response_bundle(kind: str, results: list[EntryResult]) -> dict[str, Any]:
    entries = []
    for result in results:
        response: dict[str, Any] = {"status": status_line(result.status)}
        if result.location:
            response["location"] = result.location
        response["outcome"] = operation_outcome(result.issues)
        entries.append({"response": response})
    return {
        "resourceType": "Bundle",
        "type": "transaction-response" if kind == "transaction" else "batch-response",
        "entry": entries,
    }


def _record(actor: Actor, intake: Intake, results: list[EntryResult]) -> None:
    records = [
        intake_services.ItemOutcomeRecord(
            position=i + 1,
            outcome=r.outcome,
            reference=r.reference,
            sample_id=r.sample_id,
            errors=[
                {"field": ",".join(issue.expression), "code": issue.code, "message": str(issue.diagnostics)}
                for issue in r.issues
                if issue.severity in ("error", "fatal", "warning")
            ],
            data={**r.data, "status": status_line(r.status), "location": r.location},
        )
        for i, r in enumerate(results)
    ]
    for start in range(0, len(records), 1000):
        intake_services.intake_items_record(intake=intake, items=records[start : start + 1000])
    intake_services.intake_finish(actor=actor, intake=intake)


def _replay(intake: Intake) -> Answer:
    """The answer to a Bundle already processed, rebuilt from the intake log."""
    results = []
    for row in intake.items.order_by("position", "pk"):
        status = int(str(row.data.get("status", "200")).split()[0])
        issues = [
            Issue(
                "error" if row.outcome == IntakeItem.Outcome.REJECTED else "warning",
                e.get("code", "processing"),
                e.get("message", ""),
                [e["field"]] if e.get("field") else [],
            )
            for e in row.errors
        ] or [Issue("information", "informational", _("Already received; nothing changed."))]
        results.append(EntryResult(status, row.outcome, issues, location=str(row.data.get("location", ""))))
    return Answer(200, _response_bundle(intake.kind.removeprefix("Bundle/"), results))


def _lab_of(actor: Actor) -> int | None:
    return next(iter(actor.laboratory_ids)) if len(actor.laboratory_ids) == 1 else None


def _establishment_of(actor: Actor) -> int | None:
    return next(iter(actor.establishment_ids)) if len(actor.establishment_ids) == 1 else None


def _peek_type(content: bytes) -> str:
    try:
        data = json.loads(content.decode("utf-8-sig"))
        kind = data.get("type") if isinstance(data, dict) else None
    except (UnicodeDecodeError, ValueError):
        kind = None
    return kind if isinstance(kind, str) and kind in BUNDLE_TYPES else "invalid"


def process_bundle(actor: Actor, content: bytes) -> Answer:
    kind = _peek_type(content)
    open_args = {
        "actor": actor,
        "channel": IntakeChannel.FHIR,
        "kind": f"Bundle/{kind}",
        "content": content,
        "filename": "bundle.json",
        "laboratory_id": _lab_of(actor),
        "establishment_id": _establishment_of(actor),
    }
    intake, created = intake_services.intake_open(**open_args)  # type: ignore[arg-type]
    if not created:
        if intake.state == Intake.State.DONE and not intake.rejected:
            return _replay(intake)
        intake, _created = intake_services.intake_open(**open_args, detect_repeat=False)  # type: ignore[arg-type]
    try:
        return _process(actor, intake, content)
    except Exception:
        # A bug, not the Bundle's fault: the unit is closed as failed (the same bytes are read again when resent).
        intake_services.intake_finish(actor=actor, intake=intake, error="Internal error; it has been logged.")
        raise


def _process(actor: Actor, intake: Intake, content: bytes) -> Answer:
    try:
        kind, entries = parse_bundle(content)
    except BundleInvalid as exc:
        intake_services.intake_finish(
            actor=actor, intake=intake, error="; ".join(str(i.diagnostics) for i in exc.issues)[:2000]
        )
        return Answer(exc.status, operation_outcome(exc.issues))
    intake_services.intake_start(intake=intake, total=len(entries))
    items, links = build_items(entries)
    samples = resolve_samples(actor, items)
    for item in items:
        check_item(item, samples)
    if kind == "transaction":
        answer = _process_transaction(actor, entries, items, links, samples)
    else:
        apply_items(actor, items, samples)
        answer = None
    results = _entry_results(entries, items, links)
    if answer is not None:  # a refused transaction: nothing stored, every entry refused
        for position, result in enumerate(results):
            if result.status < 300:
                results[position] = EntryResult(400, IntakeItem.Outcome.REJECTED, [_not_applied_issue()])
            result = results[position]
            result.outcome, result.sample_id = IntakeItem.Outcome.REJECTED, None
        _record(actor, intake, results)
        return answer
    _record(actor, intake, results)
    return Answer(200, _response_bundle(kind, results))


def _not_applied_issue() -> Issue:
    return Issue("error", "processing", _("Not applied: the transaction was refused because of other entries."))


class _Rollback(Exception):
    pass


def _process_transaction(
    actor: Actor, entries: list[Entry], items: list[Item], links: dict[int, list[Item]], samples: dict[int, Sample]
) -> Answer | None:
    """All or nothing. Returns the refusal, or None when every result was recorded."""
    if not any(e.issues for e in entries) and not any(i.status for i in items):
        try:
            with transaction.atomic():
                apply_items(actor, items, samples, all_or_nothing=True)
        except _Rollback:
            for item in items:
                if item.status < 300:
                    item.status, item.outcome, item.issues = 0, "", []
        else:
            return None
    issues: list[Issue] = []
    statuses: set[int] = set()
    for entry in entries:
        issues.extend(entry.issues)
        if entry.issues:
            statuses.add(400)
    for item in items:
        if item.outcome == IntakeItem.Outcome.HELD:  # nothing is held from a refused transaction
            item.status, item.outcome = item.held_status, IntakeItem.Outcome.REJECTED
            item.issues = [Issue("error", i.code, i.diagnostics, i.expression) for i in item.issues[:-1]]
        if item.status >= 300:
            issues.extend(item.issues)
            statuses.add(item.status)
    for item in items:
        if item.status == 0:  # checked but not applied: say so on its entry
            item.fail(400, [_not_applied_issue()])
    issues.append(Issue("information", "informational", _("Transaction refused: nothing was stored.")))
    status = statuses.pop() if len(statuses) == 1 else 400
    return Answer(status, operation_outcome(issues))
