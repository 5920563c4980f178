"""HL7 v2.5.1 ORU^R01 results, through the samples services (docs/hl7.md).

`receive(actor, content)` is the one entry point of the HTTP endpoint and the MLLP listener: it records the unit in
the intake log, reads every message of it (one bad message never rejects the others), finds the orders' samples in
one query per chunk (`samples.selectors.samples_by_identifiers`), delivers the plain results in one
`result_deliver_batch` call and the rest (corrections...) one by one with `result_deliver`/`result_correct`, all
with `Channel.HL7`, records each order's outcome as an intake item and answers with the ACK(s). Orders whose sample
cannot be identified without doubt are HELD for a person to match on /matching/ (`integrations.matching`);
`held_apply` applies one once that person has named the sample.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from muestra.accounts.scoping import Actor
from muestra.catalog.models import ResultValue, Test
from muestra.core.errors import DomainError, ValidationFailed
from muestra.integrations import services as intake_services
from muestra.integrations.hl7 import er7
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples import lookups
from muestra.samples.models import Channel, Sample, SampleState
from muestra.samples.selectors import IdentifiedSamples, SampleIdentifier, samples_by_identifiers
from muestra.samples.services import (
    ReportFile,
    ResultItem,
    result_correct,
    result_deliver,
    result_deliver_batch,
    sample_answers_record,
)

KIND = "ORU^R01"
CONTENT_TYPE = "x-application/hl7-v2+er7; charset=utf-8"
#: A collection time that differs by more than this from the registered one is refused (SPM-17/OBR-7).
COLLECTION_TOLERANCE = timedelta(minutes=1)
#: Messages of a batch processed per database transaction (one sample look-up and one batch of deliveries each).
COMMIT_EVERY = 1000

#: What checking and applying an order reads of its sample.
SAMPLE_FIELDS = ("test_id", "collected_at", "state", "result_value_id", "result_at", "laboratory_id")

#: Result texts and codes seen in LIS messages that are not the catalogue's own words, casefolded.
RESULT_SYNONYMS = {
    "positive": ("detected", "detectado", "positivo", "pos", "reactive", "reactivo", "260373001", "dương tính"),
    "negative": (
        "not detected",
        "no detectado",
        "negativo",
        "neg",
        "undetected",
        "non-reactive",
        "no reactivo",
        "260415000",
        "âm tính",
        "không phát hiện",
    ),
    "indeterminate": ("indeterminado", "equivocal", "invalid", "inválido"),
    "unsatisfactory": ("muestra no apta", "specimen unsatisfactory", "rejected specimen"),
}

#: Error codes that make the answer AR (the message itself is refused) rather than AE.
REFUSED_CODES = frozenset({"unsupported_message", "unreadable"})

#: Our field names (services) → the HL7 field they came from, for ERR-2.
SERVICE_FIELDS = {
    "result": "OBX-5",
    "report": "OBX-5",
    "reported_at": "OBR-22",
    "reason": "NTE-3",
    "sample": "SPM-2",
}


class NotLab(Exception):
    """The caller is not a laboratory: only labs send results."""


@dataclass
class Order:
    """One OBR group of a message: what it says about one sample."""

    index: int
    obr: er7.Segment
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (HL7 field, value)
    results: list[tuple[er7.Segment, Test]] = field(default_factory=list)
    report: ReportFile | None = None
    answers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    collected_raw: str = ""
    collected_field: str = ""


@dataclass
class Outcome:
    outcome: str
    sample: Sample | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    warning: str = ""


def _error(field_name: str, code: str, message: str) -> dict[str, str]:
    return {"field": field_name, "code": code, "message": str(message)}


def _domain_errors(exc: DomainError) -> list[dict[str, str]]:
    errors = [e.as_dict() for e in exc.errors] or [_error("", exc.code, str(exc.message))]
    for e in errors:
        e["field"] = SERVICE_FIELDS.get(e.get("field", ""), e.get("field", "")) or "OBX-5"
    return errors


# ----------------------------------------------------------------------------------------------------- reading


def _test_by_loinc(code: str) -> Test | None:
    code = code.strip()
    if not code:
        return None
    return next((t for t in lookups.active_rows(Test) if t.loinc_code == code), None)


def _obx_loinc(obx: er7.Segment) -> str:
    """OBX-3's LOINC code: the first triplet, or the alternate one when the first is a local code."""
    if obx.component(3, 3).upper() in {"LN", "LOINC", ""} and obx.component(3, 1):
        return obx.component(3, 1)
    if obx.component(3, 6).upper() in {"LN", "LOINC"}:
        return obx.component(3, 4)
    return obx.component(3, 1)


def _orders(message: er7.Message) -> list[Order]:
    """The OBR groups of a message with their OBX, NTE and SPM segments."""
    orders: list[Order] = []
    current: Order | None = None
    last: er7.Segment | None = None
    ids_from_orc: list[tuple[str, str]] = []
    after_spm = False
    for seg in message.segments[1:]:
        if seg.id == "ORC":
            ids_from_orc = [(f"ORC-{n}", seg.component(n, 1)) for n in (2, 3) if seg.component(n, 1)]
        elif seg.id == "OBR":
            current = Order(index=len(orders) + 1, obr=seg)
            orders.append(current)
            after_spm = False
            for n in (2, 3):
                if seg.component(n, 1):
                    current.identifiers.append((f"OBR-{n}", seg.component(n, 1)))
            current.identifiers.extend(ids_from_orc)
            if seg.component(7, 1):
                current.collected_raw, current.collected_field = seg.component(7, 1), "OBR-7"
        elif current is None:
            pass
        elif seg.id == "OBX":
            value_type = seg.value(2).upper()
            if value_type == "ED":
                current.report = _report(seg) or current.report
            else:
                test = None if after_spm or seg.value(29).upper() == "QST" else _test_by_loinc(_obx_loinc(seg))
                if test is not None:
                    current.results.append((seg, test))
                else:
                    label = _obx_loinc(seg) or seg.component(3, 2) or f"OBX-{seg.value(1)}"
                    current.answers[label] = _answer_text(seg)
        elif seg.id == "NTE":
            if last is not None and last.id in {"OBX", "OBR"}:
                text = " ".join(seg.value(3).split())
                if text:
                    current.notes.append(text)
            continue  # several NTE in a row follow the same segment
        elif seg.id == "SPM":
            after_spm = True
            for c in (1, 2):
                value = seg.component(2, c)
                if value:
                    current.identifiers.insert(0, ("SPM-2", value))
            if seg.component(17, 1):
                current.collected_raw, current.collected_field = seg.component(17, 1), "SPM-17"
        last = seg
    return orders


def _answer_text(obx: er7.Segment) -> str:
    value_type = obx.value(2).upper()
    if value_type in {"CWE", "CE", "CNE"}:
        return obx.component(5, 2) or obx.component(5, 1)
    return obx.value(5)


def _report(obx: er7.Segment) -> ReportFile | None:
    # ED: source application ^ type of data ^ subtype ^ encoding ^ data
    subtype = obx.component(5, 3).lower() or "pdf"
    encoding = obx.component(5, 4).lower()
    data = obx.component(5, 5)
    if not data:
        return None
    if encoding not in {"base64", ""}:
        return None
    try:
        content = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    mime = f"{obx.component(5, 2).lower() or 'application'}/{subtype}"
    return ReportFile(content=content, content_type=mime, name=f"report.{subtype}")


def _result_index() -> dict[str, ResultValue]:
    index: dict[str, ResultValue] = {}
    for value in lookups.active_result_values():
        for name in (value.name, value.name_en, value.name_vi):
            if name:
                index.setdefault(name.casefold(), value)
    for code, words in RESULT_SYNONYMS.items():
        target = lookups.result_value(code)
        if target is not None:
            for word in words:
                index.setdefault(word.casefold(), target)
    return index


def result_value_for(obx: er7.Segment) -> ResultValue | None:
    """OBX-5 as a catalogue result value: a SNOMED CT or our code (CWE), or a text, tolerant to the usual words."""
    candidates = [obx.component(5, 1), obx.component(5, 4), obx.component(5, 2), obx.component(5, 5), obx.value(5)]
    index: dict[str, ResultValue] | None = None
    for candidate in candidates:
        text = " ".join(candidate.split())
        if not text:
            continue
        value = lookups.result_value(text)
        if value is not None and value.interpretation != "retest":
            return value
        index = index if index is not None else _result_index()
        if text.casefold() in index:
            return index[text.casefold()]
    return None


# ------------------------------------------------------------------------------------------------ identifying


def _sample_identifiers(order: Order) -> list[SampleIdentifier]:
    """SPM-2, OBR-2/3 and ORC-2/3 may each carry our number, the tube barcode or the lab's own code."""
    return [SampleIdentifier(value) for _field, value in order.identifiers]


def _collection_problem(order: Order, sample: Sample) -> dict[str, str] | None:
    if not order.collected_raw:
        return None
    when = er7.parse_ts(order.collected_raw)
    if when is None:
        return _error(
            order.collected_field,
            "invalid",
            _("The collection time %(value)r is not a date.") % {"value": order.collected_raw},
        )
    precision = er7.ts_precision(order.collected_raw)
    if precision <= 8:
        same = timezone.localtime(sample.collected_at).date() == when.date()
    else:
        same = abs(sample.collected_at - when) <= COLLECTION_TOLERANCE
    if same:
        return None
    return _error(
        order.collected_field,
        "collection_mismatch",
        _("The collection time %(sent)s does not match the registered one (%(ours)s); the result was not recorded.")
        % {
            "sent": timezone.localtime(when).strftime("%Y-%m-%d %H:%M"),
            "ours": timezone.localtime(sample.collected_at).strftime("%Y-%m-%d %H:%M"),
        },
    )


# -------------------------------------------------------------------------------------------------- applying


def _wrong_test(sample: Sample, test: Test) -> dict[str, str]:
    return _error(
        "OBX-3",
        "wrong_test",
        _("Sample %(number)s was not registered for test %(loinc)s.")
        % {"number": sample.number, "loinc": test.loinc_code},
    )


def _unknown_result(obx: er7.Segment) -> dict[str, str]:
    return _error("OBX-5", "unknown_code", _("Unknown result %(value)r.") % {"value": obx.value(5)})


def _not_final(status: str) -> dict[str, str]:
    return _error(
        "OBX-11",
        "not_final",
        _("Only final (F) or corrected (C) results are recorded; this one is %(status)r.") % {"status": status},
    )


def _checked(sample: Sample, obx: er7.Segment, test: Test) -> tuple[ResultValue, str] | dict[str, str]:
    """One result OBX's value and status (F or C) for `sample`, or the error refusing it."""
    if sample.test_id != test.pk:
        return _wrong_test(sample, test)
    value = result_value_for(obx)
    if value is None:
        return _unknown_result(obx)
    status = obx.value(11).upper()
    if status not in {"F", "C"}:
        return _not_final(status)
    return value, status


def _reported_at(order: Order, obx: er7.Segment) -> datetime | None:
    return er7.parse_ts(order.obr.component(22, 1)) or er7.parse_ts(obx.component(19, 1))


def _apply(actor: Actor, order: Order, sample: Sample) -> Outcome:
    """Delivers or corrects each result-bearing OBX of `order` on `sample`, one by one through the services."""
    problem = _collection_problem(order, sample)
    if problem is not None:
        return Outcome(IntakeItem.Outcome.REJECTED, sample, [problem])
    recorded = False
    for number, (obx, test) in enumerate(order.results):
        if number:
            sample.refresh_from_db(fields=["state", "result_value", "result_at"])
        checked = _checked(sample, obx, test)
        if isinstance(checked, dict):
            return Outcome(IntakeItem.Outcome.REJECTED, sample, [checked])
        value, status = checked
        reported_at = _reported_at(order, obx)
        try:
            if status == "C" and sample.state == SampleState.RESULT:
                if sample.result_value_id == value.pk:
                    continue  # the correction was already recorded
                reason = " ".join(order.notes)[:250] or _("Corrected by the laboratory system (HL7 OBX-11 C).")
                result_correct(
                    actor=actor,
                    sample_id=sample.pk,
                    value=value.code,
                    reason=reason,
                    reported_at=reported_at,
                    report=order.report,
                    channel=Channel.HL7,
                )
                recorded = True
            else:
                _result, created = result_deliver(
                    actor=actor,
                    sample_id=sample.pk,
                    value=value.code,
                    reported_at=reported_at,
                    report=order.report,
                    channel=Channel.HL7,
                )
                recorded = recorded or created
        except DomainError as exc:
            return Outcome(IntakeItem.Outcome.REJECTED, sample, _domain_errors(exc))
    return Outcome(IntakeItem.Outcome.ACCEPTED if recorded else IntakeItem.Outcome.UNCHANGED, sample)


def _order_data(message: er7.Message, position: int, order: Order) -> dict[str, Any]:
    result = order.results[0][0] if order.results else None
    return {
        "message": position,
        "order": order.index,
        "control_id": message.control_id,
        "sending_facility": message.msh.component(4, 1),
        "identifiers": [{"field": f, "value": v} for f, v in order.identifiers],
        "test": result.component(3, 1) if result else "",
        "test_name": result.component(3, 2) if result else "",
        "result": (result.component(5, 2) or result.value(5)) if result else "",
        "result_code": result.component(5, 1) if result else "",
        "status": result.value(11) if result else "",
        "collected": order.collected_raw,
        "patient": _patient_summary(message),
        "answers": order.answers,
        "notes": order.notes,
        "has_report": order.report is not None,
    }


def _patient_summary(message: er7.Message) -> dict[str, str]:
    pid = message.first("PID")
    if pid is None:
        return {}
    return {
        "document": pid.component(3, 1),
        "family": pid.component(5, 1),
        "given": pid.component(5, 2),
        "birth": pid.value(7)[:8],
    }


@dataclass
class _Planned:
    """One order of a request on its way to its outcome."""

    position: int
    order: Order
    data: dict[str, Any]
    reference: str
    sample: Sample | None = None
    record: intake_services.ItemOutcomeRecord | None = None  # set once the order's fate is known

    def settle(self, outcome: Outcome) -> None:
        sample_id = outcome.sample.pk if outcome.sample is not None else None
        self.record = intake_services.ItemOutcomeRecord(
            self.position, outcome.outcome, self.reference, sample_id, outcome.errors, self.data
        )


def _refused(
    position: int, control_id: str, field_name: str, code: str, message: str
) -> intake_services.ItemOutcomeRecord:
    return intake_services.ItemOutcomeRecord(
        position,
        IntakeItem.Outcome.REJECTED,
        control_id,
        errors=[_error(field_name, code, message)],
        data={"message": position, "control_id": control_id},
    )


def _read_message(position: int, message: er7.Message) -> list[_Planned] | intake_services.ItemOutcomeRecord:
    """The orders of one message that carry a result, or the record refusing the whole message."""
    if message.message_type != "ORU^R01":
        return _refused(
            position,
            message.control_id,
            "MSH-9",
            "unsupported_message",
            _("Only ORU^R01 messages are accepted, not %(type)s.") % {"type": message.message_type},
        )
    orders = [o for o in _orders(message) if o.results]
    if not orders:
        return _refused(
            position,
            message.control_id,
            "OBX-3",
            "no_result",
            _("The message has no result for a test of the catalogue (OBX-3 LOINC)."),
        )
    return [
        _Planned(
            position,
            order,
            _order_data(message, position, order),
            " ".join(dict.fromkeys(v for _f, v in order.identifiers))[:120],
        )
        for order in orders
    ]


def _internal(position: int, control_id: str, exc: Exception) -> intake_services.ItemOutcomeRecord:
    return intake_services.ItemOutcomeRecord(
        position,
        IntakeItem.Outcome.REJECTED,
        control_id,
        errors=[
            _error(
                "",
                "internal",
                _("The message could not be processed (%(error)s).") % {"error": type(exc).__name__},
            )
        ],
    )


def _identify(plans: list[_Planned], found: IdentifiedSamples) -> None:
    """Each order's sample, from one look-up for the whole chunk; unknown or ambiguous orders are held."""
    for plan in plans:
        candidates = found.candidates(_sample_identifiers(plan.order))
        if len(candidates) == 1:
            plan.sample = candidates[0]
            continue
        why = (
            _("No sample of this laboratory has these identifiers.")
            if not candidates
            else _("The identifiers name several different samples.")
        )
        plan.data["held_reason"] = why
        plan.settle(
            Outcome(IntakeItem.Outcome.HELD, None, [_error("SPM-2", "held" if not candidates else "ambiguous", why)])
        )


def _batch_item(plan: _Planned) -> ResultItem | None:
    """The delivery of a plain order (one final result for a sample), checked as `_apply` would; None when the
    order needs the one-by-one path (several results, a correction of a stored result). Settles refused orders."""
    order, sample = plan.order, plan.sample
    assert sample is not None
    problem = _collection_problem(order, sample)
    if problem is not None:
        plan.settle(Outcome(IntakeItem.Outcome.REJECTED, sample, [problem]))
        return None
    if len(order.results) != 1:
        return None
    obx, test = order.results[0]
    checked = _checked(sample, obx, test)
    if isinstance(checked, dict):
        plan.settle(Outcome(IntakeItem.Outcome.REJECTED, sample, [checked]))
        return None
    value, status = checked
    if status == "C" and sample.state == SampleState.RESULT:
        return None
    return ResultItem(
        sample_id=sample.pk,
        value=value.code,
        reported_at=_reported_at(order, obx),
        report=order.report,
        answers=order.answers or None,
    )


def _record_answers(actor: Actor, order: Order, sample: Sample) -> None:
    """Ask-on-order-entry answers stored with the sample (the same answers again change nothing)."""
    if order.answers:
        sample_answers_record(actor=actor, sample_id=sample.pk, answers=order.answers, channel=Channel.HL7)


def _one_by_one(actor: Actor, plan: _Planned) -> None:
    assert plan.sample is not None
    try:
        with transaction.atomic():
            outcome = _apply(actor, plan.order, plan.sample)
            if outcome.outcome != IntakeItem.Outcome.REJECTED:
                _record_answers(actor, plan.order, plan.sample)
    except DomainError as exc:
        outcome = Outcome(IntakeItem.Outcome.REJECTED, plan.sample, _domain_errors(exc))
    plan.settle(outcome)


def _process_chunk(
    actor: Actor, numbered: list[tuple[int, er7.Message]]
) -> dict[int, list[intake_services.ItemOutcomeRecord]]:
    """The messages of one chunk, in one transaction of the caller: every order's sample in one query, the plain
    results in one `result_deliver_batch`, the rest (corrections, several results in one order) one by one."""
    refused: dict[int, intake_services.ItemOutcomeRecord] = {}
    plans: list[_Planned] = []
    for position, message in numbered:
        try:
            read = _read_message(position, message)
        except Exception as exc:  # one message's surprise never loses the others' outcomes
            refused[position] = _internal(position, message.control_id, exc)
            continue
        if isinstance(read, list):
            plans.extend(read)
        else:
            refused[position] = read
    found = samples_by_identifiers(
        actor, [i for plan in plans for i in _sample_identifiers(plan.order)], fields=SAMPLE_FIELDS
    )
    _identify(plans, found)

    batch: list[tuple[_Planned, ResultItem]] = []
    slow: list[_Planned] = []
    for plan in plans:
        if plan.record is not None:
            continue
        try:
            item = _batch_item(plan)
        except Exception as exc:  # one order's surprise never loses the others' outcomes
            plan.record = _internal(plan.position, str(plan.data.get("control_id", "")), exc)
            continue
        if plan.record is not None:
            continue
        if item is None:
            slow.append(plan)
        else:
            batch.append((plan, item))
    # A sample named by several orders of the chunk (a result and its correction, a resent message) or that also
    # takes a one-by-one step keeps the message order: all its orders go one by one.
    named: dict[int, int] = {}
    for _plan, item in batch:
        named[item.sample_id] = named.get(item.sample_id, 0) + 1
    slow_samples = {plan.sample.pk for plan in slow if plan.sample is not None}
    slow_samples |= {sample_id for sample_id, count in named.items() if count > 1}
    if slow_samples:
        slow.extend(plan for plan, item in batch if item.sample_id in slow_samples)
        batch = [(plan, item) for plan, item in batch if item.sample_id not in slow_samples]
        slow.sort(key=lambda plan: (plan.position, plan.order.index))
    if batch:
        try:
            with transaction.atomic():
                outcomes = result_deliver_batch(actor=actor, items=[item for _plan, item in batch], channel=Channel.HL7)
        except Exception:  # a surprise in the batch: each of its orders is tried on its own instead
            slow = sorted([*slow, *(plan for plan, _item in batch)], key=lambda p: (p.position, p.order.index))
        else:
            for (plan, _item), result in zip(batch, outcomes, strict=True):
                if result.error is not None:
                    plan.settle(Outcome(IntakeItem.Outcome.REJECTED, plan.sample, _domain_errors(result.error)))
                    continue
                if not result.recorded and plan.order.answers and plan.sample is not None:
                    # A repeat: its answers are stored on their own (nothing changes when they already are).
                    with contextlib.suppress(DomainError), transaction.atomic():
                        _record_answers(actor, plan.order, plan.sample)
                plan.settle(
                    Outcome(
                        IntakeItem.Outcome.ACCEPTED if result.recorded else IntakeItem.Outcome.UNCHANGED,
                        plan.sample,
                    )
                )
    touched: set[int] = set()
    for plan in slow:
        assert plan.sample is not None
        if plan.sample.pk in touched:  # an earlier order of this chunk changed it: read its state again
            plan.sample.refresh_from_db(fields=["state", "result_value", "result_at"])
        touched.add(plan.sample.pk)
        try:
            _one_by_one(actor, plan)
        except Exception as exc:
            plan.record = _internal(plan.position, str(plan.data.get("control_id", "")), exc)

    by_message: dict[int, list[intake_services.ItemOutcomeRecord]] = {}
    for position, _message in numbered:
        by_message[position] = [refused[position]] if position in refused else []
    for plan in plans:
        assert plan.record is not None
        by_message[plan.position].append(plan.record)
    return by_message


# ------------------------------------------------------------------------------------------------ answering


def _ack_for(message: er7.Message | None, records: list[IntakeItem] | list[intake_services.ItemOutcomeRecord]) -> str:
    msh = message.msh if message is not None else None
    errors: list[er7.AckError] = []
    code = "AA"
    texts: list[str] = []
    for record in records:
        for e in record.errors:
            segment, _sep, number = (e.get("field") or "").partition("-")
            held = record.outcome == IntakeItem.Outcome.HELD
            errors.append(
                er7.AckError(
                    segment=segment if number.isdigit() else "",
                    field_no=int(number) if number.isdigit() else 0,
                    code=_hl7_error_code(e.get("code", "")),
                    text=e.get("message", ""),
                    severity="W" if held else "E",
                )
            )
            texts.append(e.get("message", ""))
            if e.get("code") in REFUSED_CODES:
                code = "AR"
            elif not held and code == "AA":
                code = "AE"
    return er7.build_ack(code, msh=msh, text=texts[0] if texts else "", errors=errors)


def _hl7_error_code(code: str) -> str:
    return {
        "unsupported_message": "200",
        "unreadable": "102",
        "held": "204",
        "ambiguous": "205",
        "unknown_code": "103",
        "wrong_test": "103",
        "no_result": "101",
        "required": "101",
        "invalid": "102",
    }.get(code, "207")


@dataclass
class Answer:
    body: str
    intake: Intake | None
    repeat: bool = False


def refuse(text: str, *, content: bytes = b"") -> str:
    """An AR for a caller that may not send, or bytes that cannot be read (answering their MSH when there is one)."""
    msh = None
    try:
        envelope = er7.parse(er7.decode(content))
        msh = envelope.messages[0].msh if envelope.messages else None
    except er7.Er7Error:
        pass
    return er7.build_ack("AR", msh=msh, text=text, errors=[er7.AckError("", 0, "207", text)])


def laboratory_of(actor: Actor) -> int:
    if not actor.laboratory_ids:
        raise NotLab
    return min(actor.laboratory_ids)


def receive(actor: Actor, content: bytes) -> Answer:
    """Reads one message or batch from a lab system and answers with the ACK(s)."""
    laboratory_id = laboratory_of(actor)
    intake, created = intake_services.intake_open(
        actor=actor, channel=IntakeChannel.HL7, kind=KIND, content=content, laboratory_id=laboratory_id
    )
    try:
        envelope = er7.parse(er7.decode(content))
    except er7.Er7Error as exc:
        reason = _("The content is not an HL7 v2 message (%(why)s).") % {"why": exc}
        intake_services.intake_finish(actor=actor, intake=intake, error=reason)
        return Answer(er7.build_ack("AR", msh=None, text=reason, errors=[er7.AckError("", 0, "102", reason)]), intake)

    if created:
        intake_services.intake_start(intake=intake)
        by_message: dict[int, list[Any]] = {}
        chunk: list[intake_services.ItemOutcomeRecord] = []
        for position, reason in envelope.broken:
            chunk.append(
                intake_services.ItemOutcomeRecord(
                    position, IntakeItem.Outcome.REJECTED, errors=[_error("MSH", "unreadable", reason)]
                )
            )
        numbered = list(enumerate(envelope.messages, start=1))
        for first in range(0, len(numbered), COMMIT_EVERY):
            # One transaction per chunk of messages: one look-up of their samples and one batch of deliveries (a
            # commit waits for the disk, and one per result made HL7 twenty times slower). Locks last one chunk.
            with transaction.atomic():
                for position, records in _process_chunk(actor, numbered[first : first + COMMIT_EVERY]).items():
                    by_message[position] = records
                    chunk.extend(records)
                intake_services.intake_items_record(intake=intake, items=chunk)
                chunk = []
        intake_services.intake_items_record(intake=intake, items=chunk)
        intake_services.intake_finish(actor=actor, intake=intake)
    else:
        # The same bytes again: nothing is applied twice; the answer is rebuilt from the first reading's outcomes.
        by_message = {}
        for item in intake.items.all():
            by_message.setdefault(item.position, []).append(item)

    acks = [_ack_for(m, by_message.get(i, [])) for i, m in enumerate(envelope.messages, start=1)]
    if envelope.is_batch:
        body = er7.build_batch(acks, header=envelope.batch_header or envelope.file_header, count_acks=len(acks))
    else:
        body = acks[0] if acks else refuse(_("The content has no message."))
    return Answer(body, intake, repeat=not created)


# -------------------------------------------------------------------------------------------------- matching


def held_apply(*, actor: Actor, item: IntakeItem, sample: Sample) -> str:
    """HL7's part of matching (the queue is `integrations.matching`): re-reads the held order from the intake's
    stored bytes and applies its results to the sample a person named. Returns the outcome (accepted or
    unchanged); raises DomainError when they cannot be applied (the caller's transaction then stores nothing)."""
    intake = item.intake
    with intake.payload.open("rb") as payload:
        envelope = er7.parse(er7.decode(payload.read()))
    position, order_index = int(item.data.get("message", 0)), int(item.data.get("order", 0))
    if not 0 < position <= len(envelope.messages):
        raise ValidationFailed(_("The held message can no longer be read."), field="sample")
    order = next((o for o in _orders(envelope.messages[position - 1]) if o.index == order_index), None)
    if order is None or not order.results:
        raise ValidationFailed(_("The held message can no longer be read."), field="sample")
    outcome = _apply(actor, order, sample)
    if outcome.outcome == IntakeItem.Outcome.REJECTED:
        raise ValidationFailed("; ".join(e["message"] for e in outcome.errors), field="sample")
    _record_answers(actor, order, sample)
    return outcome.outcome
