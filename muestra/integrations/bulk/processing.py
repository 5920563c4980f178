"""Processing a stored upload row by row, in chunks, through the samples services.

Results rows are checked against the file's own rules, then delivered a chunk at a time through
`services.result_deliver_batch`, with an outcome per row (a lab's own samples only; a result whose catalogue
entry requires a signed report is refused for that row, since a file carries no report). Samples rows go in
chunks through `services.sample_register_batch` (national field names mapped by `pntm.mapping.sample_from_wire`),
and a result given with a sample that is not a point-of-care test is then delivered by the lab that uploaded it.
Each chunk's outcomes are written with `intake_items_record`, so memory stays bounded whatever the file's length,
and the progress (processed / total) is visible while it runs. A large results file is processed in parts
(`IntakePart`), one task each, so several workers share it; each part resumes after its last committed chunk if
a worker was interrupted, and a part run twice applies nothing twice.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from muestra.accounts.scoping import SYSTEM, Actor, actor_for_api_key, actor_for_user
from muestra.catalog.models import ResultValue
from muestra.core.errors import DomainError, FieldError
from muestra.integrations import services as intake_services
from muestra.integrations.bulk.parsing import FileUnreadable, Table, open_table
from muestra.integrations.bulk.templates import KINDS, Kind
from muestra.integrations.models import Intake, IntakeItem, IntakePart
from muestra.integrations.pntm import mapping
from muestra.integrations.pntm.parsing import ParseError, parse_datetime, parse_run
from muestra.samples import lookups, services
from muestra.samples.models import Channel, Sample
from muestra.samples.selectors import IdentifierKind, SampleIdentifier, sample_values_by_identifiers

logger = logging.getLogger(__name__)

CHUNK = 500
Outcome = IntakeItem.Outcome
Record = intake_services.ItemOutcomeRecord
_RUN_LIKE = re.compile(r"^[\d.]{1,12}-?[\dkK]$")


def actor_for_intake(intake: Intake) -> Actor:
    if intake.api_key is not None:
        return actor_for_api_key(intake.api_key)
    if intake.submitted_by is not None:
        return actor_for_user(intake.submitted_by)
    return SYSTEM


def _chunks(rows: Iterable[tuple[int, dict[str, str]]], size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    chunk: list[tuple[int, dict[str, str]]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _error(position: int, field: str, code: str, message: str, *, reference: str, data: dict[str, Any]) -> Record:
    return Record(
        position, Outcome.REJECTED, reference, None, [{"field": field, "code": code, "message": message}], data
    )


def _refused(
    position: int, exc: DomainError, *, reference: str, data: dict[str, Any], sample_id: int | None = None
) -> Record:
    errors = exc.errors or [FieldError(exc.field or "", exc.code, exc.message)]
    return Record(position, Outcome.REJECTED, reference, sample_id, [e.as_dict() for e in errors], data)


def process_intake(intake_id: int, *, chunk_size: int = CHUNK) -> Intake:
    """Reads the intake's stored file and records every row's outcome; safe to run again (resumes).

    A large results file is cut into parts (`_plan`): the other parts are queued for other task workers and this
    run processes the first; whichever run finishes the last part closes the unit. A smaller file, or a samples
    file, is one part processed here.
    """
    return _run(intake_id, part_id=None, chunk_size=chunk_size)


def process_intake_part(intake_id: int, part_id: int, *, chunk_size: int = CHUNK) -> Intake:
    """Processes one part of a file that `process_intake` cut into parts (a task of its own)."""
    return _run(intake_id, part_id=part_id, chunk_size=chunk_size)


def process_rows(actor: Actor, intake: Intake, rows: list[tuple[int, dict[str, str]]]) -> list[Record]:
    """The outcomes of `rows` (position, canonical row) of the intake's kind, applied through the services.

    For rows that do not come from the stored file, such as a row a person fixed on the supervision page. The
    caller owns the transaction and records the outcomes (`intake_items_record`).
    """
    kind = KINDS[intake.kind]
    seen: dict[str, int] = {}
    return _results_chunk(actor, rows, seen) if kind.results else _samples_chunk(actor, intake, rows, seen)


def _run(intake_id: int, *, part_id: int | None, chunk_size: int) -> Intake:
    intake = Intake.objects.select_related("submitted_by", "api_key").get(pk=intake_id)
    actor = actor_for_intake(intake)
    if intake.state in (Intake.State.DONE, Intake.State.FAILED):
        return intake
    with translation.override(intake.language or settings.LANGUAGE_CODE):
        kind = KINDS.get(intake.kind)
        try:
            if kind is None:
                raise FileUnreadable(_("Unknown kind of file %(kind)s.") % {"kind": intake.kind})
            with intake.payload.storage.open(intake.payload.name, "rb") as stored:
                handle = getattr(stored, "file", stored)
                table = open_table(handle, intake.filename)
                table.header = kind.canonical(table.header)
                missing = [name for name in kind.required if name not in table.header]
                if missing:
                    raise FileUnreadable(
                        _("The file has no column %(columns)s: is it the right template?")
                        % {"columns": ", ".join(missing)}
                    )
                if part_id is None:
                    parts = _parts(intake, kind, table)
                    intake_services.intake_start(intake=intake, total=table.total)
                    part = parts[0]
                    _queue(intake, [p for p in parts[1:] if p.finished_at is None])
                else:
                    part = IntakePart.objects.get(pk=part_id, intake=intake)
                if part.finished_at is None:
                    _process(actor, intake, kind, table, part, chunk_size)
        except FileUnreadable as exc:
            return intake_services.intake_finish(actor=actor, intake=intake, error=exc.message)
        return _part_finished(actor, intake, part)


def _plan(kind: Kind, table: Table) -> list[tuple[int, int]]:
    """The row ranges (first, last) a file is processed in: one, or for a results file of at least twice
    UPLOAD_PART_MIN_ROWS rows, up to UPLOAD_PARTS equal ranges, one task each.

    Only results files are cut: their rows change existing samples, each row its own, and a sample named in two
    parts is locked by one transaction at a time. Rows of a samples file may create the same new patient, which
    two concurrent transactions would both try to insert.
    """
    wanted = settings.MUESTRA["UPLOAD_PARTS"]
    smallest = max(1, settings.MUESTRA["UPLOAD_PART_MIN_ROWS"])
    count = max(1, min(wanted, table.total // smallest)) if kind.results else 1
    last = max(table.last, 1)
    size = -(-last // count)
    return [(first, min(first + size - 1, last)) for first in range(1, last + 1, size)]


def _parts(intake: Intake, kind: Kind, table: Table) -> list[IntakePart]:
    """The intake's parts, created on its first run (a run again finds them)."""
    with transaction.atomic():
        # Two runs of the same unit at once create its parts once: the second waits here, then finds them.
        Intake.objects.select_for_update().filter(pk=intake.pk).values_list("pk", flat=True).get()
        parts = list(IntakePart.objects.filter(intake=intake).order_by("first_row"))
        if parts:
            return parts
        # Rows recorded before the unit had parts (a worker of an earlier release, interrupted): they were
        # recorded in file order, so every row up to the last one recorded is done.
        done = IntakeItem.objects.filter(intake=intake).aggregate(last=Max("position"))["last"] or 0
        return IntakePart.objects.bulk_create(
            [
                IntakePart(intake=intake, first_row=first, last_row=last, done_through=min(done, last))
                for first, last in _plan(kind, table)
            ]
        )


def _queue(intake: Intake, parts: list[IntakePart]) -> None:
    from muestra.integrations.bulk.tasks import process_upload_part  # the task module imports this one

    for part in parts:
        # A part queued again while a worker still runs it waits for each chunk's lock and skips the rows done.
        process_upload_part.enqueue(intake.pk, part.pk)


def _reference(kind: Kind, row: dict[str, str]) -> str:
    return row.get("sample" if kind.results else "codigo_muestra_cliente", "").strip()


def _process(actor: Actor, intake: Intake, kind: Kind, table: Table, part: IntakePart, size: int) -> None:
    seen: dict[str, int] = {}  # reference -> first row: a row repeated in the file is reported, not applied twice

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for number, row in table.rows():
            if number > part.last_row:
                return
            if number >= part.first_row:
                yield number, row
            elif ref := _reference(kind, row):  # an earlier part's row: only what it names
                seen.setdefault(ref, number)

    for chunk in _chunks(rows(), size):
        # One transaction per chunk: the rows' writes, their outcomes and the part's progress are committed
        # together (one commit per chunk instead of one per row). The part's row lock makes a second run of the
        # same part wait, then skip what the first one committed: no row is ever applied twice.
        with transaction.atomic():
            done = IntakePart.objects.select_for_update().values_list("done_through", flat=True).get(pk=part.pk)
            todo = []
            for number, row in chunk:
                if number > done:
                    todo.append((number, row))
                elif ref := _reference(kind, row):
                    seen.setdefault(ref, number)
            if not todo:
                continue
            records = _results_chunk(actor, todo, seen) if kind.results else _samples_chunk(actor, intake, todo, seen)
            intake_services.intake_items_record(intake=intake, items=records)
            IntakePart.objects.filter(pk=part.pk).update(done_through=todo[-1][0])


def _part_finished(actor: Actor, intake: Intake, part: IntakePart) -> Intake:
    """Marks the part finished; the run that finishes the unit's last part closes it (exactly one does)."""
    with transaction.atomic():
        # Every part of the unit locked, in one order: two parts finishing at once decide one after the other.
        parts = list(IntakePart.objects.select_for_update().filter(intake=intake).order_by("pk"))
        for each in parts:
            if each.pk == part.pk and each.finished_at is None:
                each.finished_at = timezone.now()
                each.save(update_fields=["finished_at"])
        intake.refresh_from_db(fields=["state", "accepted", "rejected", "held"])
        if intake.state != Intake.State.PROCESSING or any(each.finished_at is None for each in parts):
            return intake
        # The count pass may have counted rows that turned out to hold nothing readable: the total is what was read.
        intake_services.intake_start(intake=intake, total=intake.processed)
        return intake_services.intake_finish(actor=actor, intake=intake)


# --- results ---------------------------------------------------------------------------------------------------


def _digits(text: str) -> str:
    return re.sub(r"[^0-9K]", "", text.upper())


def _results_chunk(actor: Actor, chunk: list[tuple[int, dict[str, str]]], seen: dict[str, int]) -> list[Record]:
    refs = {pos: row.get("sample", "").strip() for pos, row in chunk}
    # A reference is our public number (digits) or the tube's barcode: the visible samples and their patients'
    # documents in one query.
    identifiers = {
        ref: SampleIdentifier(ref, IdentifierKind.NUMBER if ref.isdigit() else IdentifierKind.TUBE)
        for ref in refs.values()
        if ref
    }
    found = sample_values_by_identifiers(actor, identifiers.values(), values=["patient__document_number"])
    pks = {ref: min(named) for ref, identifier in identifiers.items() if (named := found.named.get(identifier))}
    visible = {pk: row["patient__document_number"] or "" for pk, row in found.values.items()}
    records: dict[int, Record] = {}
    ready: list[tuple[int, dict[str, str], str, services.ResultItem]] = []
    for pos, row in chunk:
        ref = refs[pos]
        checked = _result_row(pos, row, ref, pks.get(ref), visible, seen)
        if isinstance(checked, Record):
            records[pos] = checked
        else:
            ready.append((pos, row, ref, checked))
    # The rows that passed the file's own checks go to the service in one batch: one lock, bulk writes.
    delivered = services.result_deliver_batch(
        actor=actor, items=[item for _p, _r, _ref, item in ready], channel=Channel.IMPORT
    )
    for (pos, row, ref, item), outcome in zip(ready, delivered, strict=True):
        if outcome.error is not None:
            records[pos] = _refused(pos, _clear(outcome.error, row.get("result", "").strip()), reference=ref, data=row)
        else:
            records[pos] = Record(pos, Outcome.ACCEPTED if outcome.recorded else Outcome.UNCHANGED, ref, item.sample_id)
    return [records[pos] for pos, _row in chunk]


def _result_row(
    pos: int,
    row: dict[str, str],
    ref: str,
    pk: int | None,
    visible: dict[int, str],
    seen: dict[str, int],
) -> Record | services.ResultItem:
    """The row's refusal by the file's own checks, or the result it asks the service to deliver."""

    def reject(field: str, code: str, message: str) -> Record:
        return _error(pos, field, code, message, reference=ref, data=row)

    if not ref:
        return reject("sample", "required", _("The sample is missing."))
    if ref in seen:
        return reject(
            "sample",
            "duplicate",
            _("Sample %(sample)s already appears in row %(row)d of this file.") % {"sample": ref, "row": seen[ref]},
        )
    seen[ref] = pos
    if pk is None or pk not in visible:
        return reject(
            "sample",
            "not_found",
            _("Unknown sample %(sample)s (or not assigned to your laboratory).") % {"sample": ref},
        )
    document = visible[pk]
    patient = row.get("patient", "").strip()
    if patient:
        if _RUN_LIKE.match(patient) and "-" in document:  # the sample's patient has a RUN: check this one's digit
            try:
                parse_run(patient, allow_compact=True)
            except ParseError:
                return reject("patient", "invalid", _("Invalid RUN %(value)s (check digit).") % {"value": patient})
        if _digits(patient) != _digits(document):
            return reject(
                "patient",
                "mismatch",
                _("The patient %(value)s is not the patient of this sample.") % {"value": patient},
            )
    value = row.get("result", "").strip()
    if not value:
        return reject("result", "required", _("The result is missing."))
    try:
        reported_at = _when(row, "reported_at")
        received_at = _when(row, "received_at")
    except _BadDate as bad:
        return reject(bad.field, "invalid_date", _("Unreadable date %(value)s.") % {"value": bad.value})
    code = mapping.catalog_code(ResultValue, lookups.result_value, value) or value
    return services.ResultItem(pk, code, reported_at=reported_at, received_at=received_at)


def _clear(exc: DomainError, value: str) -> DomainError:
    """The service's refusal, with a clearer reason where a file changes what the person must do."""
    fields = {e.field for e in exc.errors} | {exc.field or ""}
    if "report" in fields:
        return DomainError(
            _(
                "The result %(value)s needs its signed report: a file cannot carry it. Deliver this result on the "
                "sample's page or through the API with the report."
            )
            % {"value": value},
            code="report_required",
            field="result",
        )
    return exc


class _BadDate(Exception):
    def __init__(self, field: str, value: str) -> None:
        super().__init__(field)
        self.field, self.value = field, value


def _when(row: dict[str, str], name: str) -> datetime | None:
    text = row.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_datetime(text)
    except ParseError:
        raise _BadDate(name, text) from None


# --- samples -----------------------------------------------------------------------------------------------------


def _module(row: dict[str, str]) -> mapping.Module:
    text = mapping._fold(row.get("modulo", ""))
    return mapping.MPOX if text in {"mpox", "monkeypox", "viruela del mono", "viruela simica"} else mapping.COVID


def _samples_chunk(
    actor: Actor, intake: Intake, chunk: list[tuple[int, dict[str, str]]], seen: dict[str, int]
) -> list[Record]:
    records: dict[int, Record] = {}
    pending: list[tuple[int, dict[str, str], mapping.WireSample, bool]] = []  # (pos, row, wire, deliver later)
    ready: list[tuple[int, dict[str, str], str, bool, services.ResultItem]] = []  # (pos, row, ref, created, item)
    own_lab = lookups.laboratory_by_pk(intake.laboratory_id) if intake.laboratory_id else None
    for pos, row in chunk:
        raw: dict[str, Any] = dict(row)
        if not raw.get("rut_responsable"):
            raw["rut_responsable"] = raw.get("rut_profesional_responsable", "")
        ref = raw.get("codigo_muestra_cliente", "").strip()
        lab = own_lab or lookups.laboratory(raw.get("id_laboratorio"))
        if lab is None:
            records[pos] = _error(
                pos,
                "id_laboratorio",
                "unknown_code",
                _("Unknown laboratory %(value)s.") % {"value": raw.get("id_laboratorio", "")},
                reference=ref,
                data=row,
            )
            continue
        if ref and ref in seen:
            records[pos] = _error(
                pos,
                "codigo_muestra_cliente",
                "duplicate",
                _("Code %(code)s already appears in row %(row)d of this file.") % {"code": ref, "row": seen[ref]},
                reference=ref,
                data=row,
            )
            continue
        if ref:
            seen[ref] = pos
        wire = mapping.sample_from_wire(raw, pos, module=_module(raw), laboratory=lab, require_laboratory=False)
        if wire.errors:
            records[pos] = Record(
                pos,
                Outcome.REJECTED,
                ref,
                None,
                [{"field": e.field, "code": "invalid", "message": e.message} for e in wire.errors],
                row,
            )
            continue
        test = lookups.test(wire.data.test)
        deliver_later = bool(wire.data.result) and not (test is not None and test.result_at_registration)
        if deliver_later and not actor.laboratory_ids:
            deliver_later = False  # an establishment may not deliver a lab result: the service says why
        elif deliver_later:
            wire.data = dataclasses.replace(wire.data, result="", result_at=None)
            wire.raw["_result"] = row.get("resultado", "")
        pending.append((pos, row, wire, deliver_later))
    if pending:
        outcomes = services.sample_register_batch(
            actor=actor, items=[w.data for _p, _r, w, _d in pending], channel=Channel.IMPORT
        )
        for (pos, row, wire, deliver_later), outcome in zip(pending, outcomes, strict=True):
            ref = wire.client_code
            if outcome.sample is None:
                records[pos] = Record(
                    pos,
                    Outcome.REJECTED,
                    ref,
                    None,
                    [
                        {
                            "field": mapping.national_field(e.field, document_field=wire.document_field),
                            "code": e.code,
                            "message": str(e.message),
                        }
                        for e in outcome.errors
                    ],
                    row,
                )
                continue
            prepared = _result_with_sample(
                pos, row, ref, outcome.sample, created=outcome.created, deliver=deliver_later
            )
            if isinstance(prepared, Record):
                records[pos] = prepared
            else:
                ready.append((pos, row, ref, outcome.created, prepared))
    # The results given with the samples, in one batch once the samples exist.
    delivered = services.result_deliver_batch(
        actor=actor, items=[item for *_head, item in ready], channel=Channel.IMPORT
    )
    for (pos, row, ref, created, item), result in zip(ready, delivered, strict=True):
        if result.error is not None:
            refused = _refused(
                pos,
                _clear(result.error, row.get("resultado", "").strip()),
                reference=ref,
                data=row,
                sample_id=item.sample_id,
            )
            for error in refused.errors:
                error["field"] = mapping.national_field(error["field"]) if error["field"] else "resultado"
            records[pos] = refused
        else:
            records[pos] = Record(
                pos, Outcome.ACCEPTED if (created or result.recorded) else Outcome.UNCHANGED, ref, item.sample_id
            )
    return [records[pos] for pos, _row in chunk]


def _result_with_sample(
    pos: int, row: dict[str, str], ref: str, sample: Sample, *, created: bool, deliver: bool
) -> Record | services.ResultItem:
    """The row's outcome when nothing is left to deliver (or its dates are unreadable), else the result to deliver."""
    outcome = Outcome.ACCEPTED if created else Outcome.UNCHANGED
    if not deliver:
        return Record(pos, outcome, ref, sample.pk)
    value = row.get("resultado", "").strip()
    try:
        received_at = _when(row, "fecha_recepcion")
        reported_at = _when(row, "fecha_hora_resultado_laboratorio")
    except _BadDate as bad:
        return _error(
            pos,
            bad.field,
            "invalid_date",
            _("Unreadable date %(value)s.") % {"value": bad.value},
            reference=ref,
            data=row,
        )
    code = mapping.catalog_code(ResultValue, lookups.result_value, value) or value
    return services.ResultItem(sample.pk, code, reported_at=reported_at, received_at=received_at)
