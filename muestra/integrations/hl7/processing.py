"""HL7 v2.5.1 ORU^R01 results, message by message, through the samples services (docs/hl7.md).

`receive(actor, content)` is the one entry point of the HTTP endpoint and the MLLP listener: it records the unit in
the intake log, reads every message of it (one bad message never rejects the others), finds each order's sample,
calls `result_deliver`/`result_correct` with `Channel.HL7`, records each order's outcome as an intake item and
answers with the ACK(s). Orders whose sample cannot be identified without doubt are HELD for a person to match on
/matching/; `held_resolve` applies them once that person has named the sample.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from muestra.accounts.scoping import Actor, scoped
from muestra.catalog.models import ResultValue, Test
from muestra.core.errors import DomainError, NotFound, ValidationFailed
from muestra.integrations import services as intake_services
from muestra.integrations.hl7 import er7
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples import lookups
from muestra.samples.models import Channel, Sample, SampleState
from muestra.samples.services import ReportFile, result_correct, result_deliver

KIND = "ORU^R01"
CONTENT_TYPE = "x-application/hl7-v2+er7; charset=utf-8"
#: A collection time that differs by more than this from the registered one is refused (SPM-17/OBR-7).
COLLECTION_TOLERANCE = timedelta(minutes=1)
#: Messages of a batch processed per database transaction.
COMMIT_EVERY = 50

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


def _candidates(actor: Actor, laboratory_id: int, identifiers: Iterable[str]) -> list[Sample]:
    """The samples in the actor's scope that any identifier names: our number, the tube barcode, or this lab's
    own code. Several different samples = ambiguous; none = unknown (out of scope looks exactly the same)."""
    codes = sorted({c.strip() for c in identifiers if c.strip()})
    if not codes:
        return []
    q = Q(tube_code__in=codes) | Q(client_lab_id=laboratory_id, client_code__in=codes)
    pks = [pk for pk in (Sample.pk_from_number(c) if c.isdigit() and len(c) == 10 else None for c in codes) if pk]
    if pks:
        q |= Q(pk__in=pks)
    return list(scoped(actor, Sample.objects.filter(q)).order_by("pk")[:3])  # more than one is enough to hold


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


def _apply(actor: Actor, order: Order, sample: Sample) -> Outcome:
    """Delivers or corrects each result-bearing OBX of `order` on `sample`, through the services."""
    problem = _collection_problem(order, sample)
    if problem is not None:
        return Outcome(IntakeItem.Outcome.REJECTED, sample, [problem])
    recorded = False
    for number, (obx, test) in enumerate(order.results):
        if number:
            sample.refresh_from_db(fields=["state", "result_value", "result_at"])
        if sample.test_id != test.pk:
            return Outcome(
                IntakeItem.Outcome.REJECTED,
                sample,
                [
                    _error(
                        "OBX-3",
                        "wrong_test",
                        _("Sample %(number)s was not registered for test %(loinc)s.")
                        % {"number": sample.number, "loinc": test.loinc_code},
                    )
                ],
            )
        value = result_value_for(obx)
        if value is None:
            return Outcome(
                IntakeItem.Outcome.REJECTED,
                sample,
                [_error("OBX-5", "unknown_code", _("Unknown result %(value)r.") % {"value": obx.value(5)})],
            )
        status = obx.value(11).upper()
        reported_at = er7.parse_ts(order.obr.component(22, 1)) or er7.parse_ts(obx.component(19, 1))
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
            elif status in {"F", "C"}:
                _result, created = result_deliver(
                    actor=actor,
                    sample_id=sample.pk,
                    value=value.code,
                    reported_at=reported_at,
                    report=order.report,
                    channel=Channel.HL7,
                )
                recorded = recorded or created
            else:
                return Outcome(
                    IntakeItem.Outcome.REJECTED,
                    sample,
                    [
                        _error(
                            "OBX-11",
                            "not_final",
                            _("Only final (F) or corrected (C) results are recorded; this one is %(status)r.")
                            % {"status": status},
                        )
                    ],
                )
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


def _process_message(
    actor: Actor, laboratory_id: int, position: int, message: er7.Message
) -> list[intake_services.ItemOutcomeRecord]:
    records: list[intake_services.ItemOutcomeRecord] = []
    base = {"message": position, "control_id": message.control_id}
    if message.message_type != "ORU^R01":
        return [
            intake_services.ItemOutcomeRecord(
                position,
                IntakeItem.Outcome.REJECTED,
                message.control_id,
                errors=[
                    _error(
                        "MSH-9",
                        "unsupported_message",
                        _("Only ORU^R01 messages are accepted, not %(type)s.") % {"type": message.message_type},
                    )
                ],
                data=base,
            )
        ]
    orders = [o for o in _orders(message) if o.results]
    if not orders:
        return [
            intake_services.ItemOutcomeRecord(
                position,
                IntakeItem.Outcome.REJECTED,
                message.control_id,
                errors=[
                    _error(
                        "OBX-3", "no_result", _("The message has no result for a test of the catalogue (OBX-3 LOINC).")
                    )
                ],
                data=base,
            )
        ]
    for order in orders:
        data = _order_data(message, position, order)
        reference = " ".join(dict.fromkeys(v for _f, v in order.identifiers))[:120]
        candidates = _candidates(actor, laboratory_id, (v for _f, v in order.identifiers))
        if len(candidates) != 1:
            why = (
                _("No sample of this laboratory has these identifiers.")
                if not candidates
                else _("The identifiers name several different samples.")
            )
            data["held_reason"] = why
            records.append(
                intake_services.ItemOutcomeRecord(
                    position,
                    IntakeItem.Outcome.HELD,
                    reference,
                    errors=[_error("SPM-2", "held" if not candidates else "ambiguous", why)],
                    data=data,
                )
            )
            continue
        sample = candidates[0]
        outcome = _apply(actor, order, sample)
        records.append(
            intake_services.ItemOutcomeRecord(position, outcome.outcome, reference, sample.pk, outcome.errors, data)
        )
    return records


def _process_in_savepoint(
    actor: Actor, laboratory_id: int, position: int, message: er7.Message
) -> list[intake_services.ItemOutcomeRecord]:
    try:
        with transaction.atomic():
            return _process_message(actor, laboratory_id, position, message)
    except Exception as exc:  # one message's surprise never loses the others' outcomes
        return [
            intake_services.ItemOutcomeRecord(
                position,
                IntakeItem.Outcome.REJECTED,
                message.control_id,
                errors=[
                    _error(
                        "",
                        "internal",
                        _("The message could not be processed (%(error)s).") % {"error": type(exc).__name__},
                    )
                ],
            )
        ]


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
            # One commit per chunk of messages (each message in its own savepoint): a commit waits for the disk,
            # and one per result made HL7 twenty times slower. Locks are held for one chunk at most.
            with transaction.atomic():
                for position, message in numbered[first : first + COMMIT_EVERY]:
                    records = _process_in_savepoint(actor, laboratory_id, position, message)
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


def held_items(actor: Actor) -> Any:
    """The HL7 items waiting for a person to name their sample, in the actor's labs, oldest first."""
    return (
        scoped(actor, IntakeItem.objects.filter(intake__channel=IntakeChannel.HL7))
        .filter(
            outcome=IntakeItem.Outcome.HELD, superseded_by__isnull=True, intake__laboratory_id__in=actor.laboratory_ids
        )
        .select_related("intake")
        .order_by("pk")
    )


def held_get(actor: Actor, item_id: int) -> IntakeItem | None:
    return held_items(actor).filter(pk=item_id).first()


def held_resolve(*, actor: Actor, item_id: int, sample_id: int) -> IntakeItem:
    """A person named the sample of a held item: its result is applied through the services and a new item
    records the outcome, superseding the held one. Raises DomainError (nothing changed) when it cannot apply."""
    item = held_get(actor, item_id)
    if item is None:
        raise NotFound(_("Unknown held item."))
    sample = scoped(actor, Sample.objects.filter(pk=sample_id)).first()
    if sample is None:
        raise NotFound(_("Unknown sample."), field="sample")
    intake = item.intake
    envelope = er7.parse(er7.decode(intake.payload.open("rb").read()))
    intake.payload.close()
    position, order_index = int(item.data.get("message", 0)), int(item.data.get("order", 0))
    if not 0 < position <= len(envelope.messages):
        raise ValidationFailed(_("The held message can no longer be read."), field="sample")
    order = next((o for o in _orders(envelope.messages[position - 1]) if o.index == order_index), None)
    if order is None or not order.results:
        raise ValidationFailed(_("The held message can no longer be read."), field="sample")
    outcome = _apply(actor, order, sample)
    if outcome.outcome == IntakeItem.Outcome.REJECTED:
        raise ValidationFailed("; ".join(e["message"] for e in outcome.errors), field="sample")
    data = dict(item.data, matched_by=actor.label, matched_from=item.pk)
    with transaction.atomic():
        (new,) = intake_services.intake_items_record(
            intake=intake,
            items=[
                intake_services.ItemOutcomeRecord(item.position, outcome.outcome, item.reference, sample.pk, [], data)
            ],
        )
        updated = IntakeItem.objects.filter(pk=item.pk, superseded_by__isnull=True).update(superseded_by=new)
        if updated:
            # The unit's counters say what is still waiting: the held item is now settled.
            Intake.objects.filter(pk=intake.pk, held__gt=0).update(held=F("held") - 1)
    return new
