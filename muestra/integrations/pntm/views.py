"""The national platform's API (PNTM), operation by operation, on top of the same services as everything else.

Each view only authenticates the lab's key, reads the wire format tolerantly (`parsing`), builds service inputs
(`mapping`), calls the sample services with `Channel.PNTM` and writes the answer in the national shapes: arrays
of `{"id_muestra", "codigo_muestra_cliente"}`, `{"MENSAJE": ...}` for results, and `{"error": "<Spanish>"}` for
every refusal. The exact shapes and choices are documented in docs/pntm.md.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt

from muestra.accounts.scoping import Actor, actor_for_api_key, scoped
from muestra.accounts.services import api_key_authenticate
from muestra.audit.services import AuditItem, audit_record_many
from muestra.catalog.models import DocumentValidator, ResultValue
from muestra.core.errors import DomainError, ErrorCollector
from muestra.facilities.models import Laboratory
from muestra.integrations import services as intake_services
from muestra.integrations.models import IntakeChannel, IntakeItem
from muestra.integrations.pntm import mapping
from muestra.integrations.pntm.mapping import COVID, MPOX, Module, WireError, WireSample
from muestra.integrations.pntm.parsing import (
    ParseError,
    decode_body,
    is_blank,
    load_json,
    local_day_bounds,
    looks_like_json,
    loose_text,
    parse_date,
    parse_datetime,
    parse_int,
    parse_run,
    payload_items,
)
from muestra.patients.models import Patient
from muestra.samples import lookups
from muestra.samples.inputs import resolve_sample
from muestra.samples.models import Channel, Sample
from muestra.samples.services import (
    ItemOutcome,
    ReportFile,
    result_deliver,
    sample_forward,
    sample_receive,
    sample_register_batch,
    sample_return,
)

logger = logging.getLogger(__name__)

JSON_PARAMS = {"ensure_ascii": False}


class PntmError(Exception):
    """A refusal of the whole request, answered as `{"error": message, **extra}` with `status`."""

    def __init__(self, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


@dataclass(frozen=True)
class Caller:
    actor: Actor
    laboratory: Laboratory
    operation: str
    #: Each item's outcome, for the intake log (written once per call, after the answer was built).
    log: list[intake_services.ItemOutcomeRecord] = field(default_factory=list, compare=False)


Outcome = IntakeItem.Outcome
_LEADING_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_/]*):")


def _field_of(message: str) -> str:
    """The national field a Spanish refusal starts with ("id_muestra: ..."), or ""."""
    found = _LEADING_FIELD.match(message)
    return found.group(1) if found else ""


def _logged_data(raw: Any) -> dict[str, Any]:
    """What the intake log keeps of an item: the item itself, or a non-object item under "value"."""
    return raw if isinstance(raw, dict) else {"value": raw}


def _log_refused(caller: Caller, position: int, reference: str, errors: Sequence[WireError], raw: Any) -> None:
    caller.log.append(
        intake_services.ItemOutcomeRecord(
            position,
            Outcome.REJECTED,
            reference,
            errors=[{"field": e.field, "code": "invalid", "message": e.message} for e in errors],
            data=_logged_data(raw),
        )
    )


def _log_message(caller: Caller, position: int, reference: str, message: str, raw: Any) -> None:
    caller.log.append(
        intake_services.ItemOutcomeRecord(
            position,
            Outcome.REJECTED,
            reference,
            errors=[{"field": _field_of(message), "code": "refused", "message": message}],
            data=_logged_data(raw),
        )
    )


def _log_done(caller: Caller, position: int, reference: str, sample_id: int, changed: bool, raw: Any) -> None:
    outcome = Outcome.ACCEPTED if changed else Outcome.UNCHANGED
    caller.log.append(
        intake_services.ItemOutcomeRecord(position, outcome, reference, sample_id, data=_logged_data(raw))
    )


def _json(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, json_dumps_params=JSON_PARAMS)


def _error(message: str, status: int, **extra: Any) -> JsonResponse:
    return _json({"error": message, **extra}, status=status)


# --- transport ------------------------------------------------------------------------------------------------


def _authenticate(request: HttpRequest, operation: str) -> Caller:
    raw_key = request.headers.get("ACCESSKEY", "").strip()
    if not raw_key:
        raise PntmError("Falta la cabecera ACCESSKEY con la clave de acceso del laboratorio.", 401)
    key = api_key_authenticate(raw_key)
    if key is None:
        raise PntmError("La clave de acceso (ACCESSKEY) no es válida o fue revocada.", 401)
    if key.laboratory is None:
        raise PntmError("La clave de acceso no corresponde a un laboratorio; esta API es para laboratorios.", 403)
    if not key.laboratory.active:
        raise PntmError("El laboratorio de esta clave de acceso está inactivo.", 403)
    return Caller(actor=actor_for_api_key(key), laboratory=key.laboratory, operation=operation)


_FORM_KEYS = ("parametros", "raw")


def _form_value(form: QueryDict) -> str | None:
    by_name = {key.strip().casefold(): key for key in form}
    for wanted in _FORM_KEYS:
        if wanted in by_name:
            return str(form.get(by_name[wanted], ""))
    return None


def _payload(request: HttpRequest) -> Any:
    """The request's JSON payload in whatever envelope the client used: a JSON body (any content type), or a
    form (multipart or urlencoded) whose `parametros` field holds the JSON as a string."""
    if request.content_type == "multipart/form-data":
        value = _form_value(request.POST)
        as_file = request.FILES.get("parametros")
        if value is None and as_file is not None:
            # Some HTTP libraries send every part with a file name; `parametros` then arrives as a file.
            value = decode_body(as_file.read())
        if value is None:
            raise PntmError("Falta el campo «parametros» (JSON) en el formulario.", 400)
        return value
    text = decode_body(request.body)
    if not text.strip():
        raise PntmError("El cuerpo de la solicitud está vacío.", 400)
    if looks_like_json(text):
        return load_json(text)
    value = _form_value(QueryDict(text, encoding="utf-8"))
    if value is None:
        raise PntmError("El cuerpo no es JSON ni un formulario con el campo «parametros».", 400)
    return value


def _items(request: HttpRequest) -> list[dict[str, Any]]:
    try:
        items = payload_items(_payload(request))
    except ParseError as exc:
        raise PntmError(f"Cuerpo no válido: {exc.message}.", 400) from exc
    if not items:
        raise PntmError("El arreglo está vacío: envíe al menos un elemento.", 400)
    limit = settings.MUESTRA["MAX_BATCH_ITEMS"]
    if len(items) > limit:
        raise PntmError(f"Un envío admite como máximo {limit} elementos; se recibieron {len(items)}.", 422)
    return items


# --- create ---------------------------------------------------------------------------------------------------


def _validation_errors(row: WireSample, module: Module) -> list[WireError]:
    """Everything wrong with a row the adapter already refused, without storing anything: the adapter's own
    findings plus the services' validation of the rest, so the client can fix all of it at once."""
    collector = ErrorCollector()
    resolve_sample(row.data, collector)
    found = [
        mapping.field_error_to_wire(e, raw=row.raw, document_field=row.document_field, modulo=module.label)
        for e in collector.errors
    ]
    return mapping.merge_errors(row.errors, found)


def _outcome_errors(row: WireSample, outcome: ItemOutcome, module: Module, laboratory: Laboratory) -> list[WireError]:
    context: dict[str, Any] = {"modulo": module.label}
    if any(e.code == "conflict" and e.field == "client_code" for e in outcome.errors):
        existing = Sample.objects.filter(client_lab=laboratory, client_code=row.client_code).first()
        context["id_muestra"] = existing.number if existing is not None else "?"
    wire = [
        mapping.field_error_to_wire(e, raw=row.raw, document_field=row.document_field, **context)
        for e in outcome.errors
    ]
    return mapping.merge_errors(wire)


def _outcome_status(outcome: ItemOutcome | None) -> int:
    return outcome.error.status if outcome is not None and outcome.error is not None else 422


def _row_summary(row: WireSample, errors: Sequence[WireError]) -> str:
    code = f" (codigo_muestra_cliente «{row.client_code}»)" if row.client_code else ""
    return f"fila {row.row}{code}: " + " ".join(e.message for e in errors)


def _failed_row(row: WireSample, errors: Sequence[WireError]) -> dict[str, Any]:
    return {
        "fila": row.row,
        "codigo_muestra_cliente": row.client_code,
        "error": " ".join(e.message for e in errors),
        "errores": [e.as_dict() for e in errors],
    }


def _created(row: WireSample, sample: Sample) -> dict[str, Any]:
    return {"id_muestra": sample.number, "codigo_muestra_cliente": row.client_code}


def _create(
    request: HttpRequest, caller: Caller, *, module: Module, per_item: bool, require_laboratory: bool
) -> HttpResponse:
    rows = [
        mapping.sample_from_wire(
            raw, position, module=module, laboratory=caller.laboratory, require_laboratory=require_laboratory
        )
        for position, raw in enumerate(_items(request), start=1)
    ]
    if per_item:
        return _create_per_item(caller, rows, module)
    return _create_all_or_nothing(caller, rows, module)


def _refuse_batch(failures: list[tuple[WireSample, list[WireError], int]], total: int) -> JsonResponse:
    statuses = {status for _row, _errors, status in failures}
    status = statuses.pop() if len(statuses) == 1 else 422
    message = f"No se creó ninguna muestra: {len(failures)} de {total} filas tienen errores. " + " | ".join(
        _row_summary(row, errors) for row, errors, _status in failures
    )
    return _error(message, status, errores=[_failed_row(row, errors) for row, errors, _status in failures])


Failures = list[tuple[WireSample, list[WireError], int]]


def _log_refused_batch(caller: Caller, rows: list[WireSample], failures: Failures) -> None:
    """Every row of a refused all-or-nothing batch is rejected: its own errors, or the batch's refusal."""
    by_row = {row.row: errors for row, errors, _status in failures}
    for row in rows:
        errors = by_row.get(row.row) or [
            WireError("", "No se creó: el envío fue rechazado completo por errores en otras filas.")
        ]
        _log_refused(caller, row.row, row.client_code, errors, row.raw)


def _create_all_or_nothing(caller: Caller, rows: list[WireSample], module: Module) -> HttpResponse:
    """crearMuestras, crearMuestras_v2, crearMuestraMP: one bad row refuses the whole batch, nothing stored."""
    if any(row.errors for row in rows):
        failures = [(row, errors, 422) for row in rows if (errors := _validation_errors(row, module))]
        _log_refused_batch(caller, rows, failures)
        return _refuse_batch(failures, len(rows))
    # The service undoes every row when any fails, including conflicts found after other rows were written.
    outcomes = sample_register_batch(
        actor=caller.actor, items=[row.data for row in rows], channel=Channel.PNTM, all_or_nothing=True
    )
    refused = [
        (row, _outcome_errors(row, outcome, module, caller.laboratory), _outcome_status(outcome))
        for row, outcome in zip(rows, outcomes, strict=True)
        if outcome.errors
    ]
    if refused:
        _log_refused_batch(caller, rows, refused)
        return _refuse_batch(refused, len(rows))
    for row, outcome in zip(rows, outcomes, strict=True):
        if outcome.sample is not None:
            _log_done(caller, row.row, row.client_code, outcome.sample.pk, outcome.created, row.raw)
    return _json([_created(row, outcome.sample) for row, outcome in zip(rows, outcomes, strict=True) if outcome.sample])


def _create_per_item(caller: Caller, rows: list[WireSample], module: Module) -> HttpResponse:
    """crearMuestras_v3: good rows are stored; the answer has one element per row, in the request's order."""
    good = [row for row in rows if not row.errors]
    outcomes: dict[int, ItemOutcome] = {}
    if good:
        batch = sample_register_batch(actor=caller.actor, items=[row.data for row in good], channel=Channel.PNTM)
        outcomes = {row.row: outcome for row, outcome in zip(good, batch, strict=True)}
    answer = []
    for row in rows:
        outcome = outcomes.get(row.row)
        if outcome is None:
            errors = _validation_errors(row, module)
            answer.append(_failed_row(row, errors))
            _log_refused(caller, row.row, row.client_code, errors, row.raw)
        elif outcome.sample is not None:
            answer.append(_created(row, outcome.sample))
            _log_done(caller, row.row, row.client_code, outcome.sample.pk, outcome.created, row.raw)
        else:
            errors = _outcome_errors(row, outcome, module, caller.laboratory)
            answer.append(_failed_row(row, errors))
            _log_refused(caller, row.row, row.client_code, errors, row.raw)
    return _json(answer)


# --- lab steps on existing samples ------------------------------------------------------------------------------


class ItemError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class SampleRef:
    pk: int
    number: int


def _visible(caller: Caller) -> QuerySet[Sample]:
    return scoped(caller.actor, Sample.objects.all())


def _lab_mismatch(caller: Caller, item: dict[str, Any]) -> str | None:
    """Any body may repeat `id_laboratorio`; when it does, it must be the key's lab."""
    try:
        declared = parse_int(item.get("id_laboratorio"))
    except ParseError as exc:
        return f"id_laboratorio: {exc.message}."
    if declared is None or declared == caller.laboratory.platform_id:
        return None
    return (
        f"id_laboratorio: el laboratorio {declared} no corresponde a la clave de acceso usada (laboratorio "
        f"{caller.laboratory.platform_id})."
    )


def _sample_ref(caller: Caller, item: dict[str, Any]) -> SampleRef:
    """The sample an item points at, by `id_muestra` or else by the lab's own `codigo_muestra_cliente`."""
    if (mismatch := _lab_mismatch(caller, item)) is not None:
        raise ItemError(mismatch, 422)
    try:
        number = parse_int(item.get("id_muestra"))
    except ParseError as exc:
        raise ItemError(f"id_muestra: {exc.message}.", 422) from exc
    if number is None:
        code = loose_text(item.get("codigo_muestra_cliente"))
        if not code:
            raise ItemError("id_muestra: falta este campo obligatorio (o codigo_muestra_cliente).", 422)
        pk = (
            _visible(caller)
            .filter(client_lab_id__in=caller.actor.laboratory_ids, client_code=code)
            .values_list("pk", flat=True)
            .first()
        )
        if pk is None:
            raise ItemError(
                f"codigo_muestra_cliente: no hay ninguna muestra de su laboratorio con el código «{code}».", 404
            )
        return SampleRef(pk=pk, number=Sample(pk=pk).number)
    pk = Sample.pk_from_number(number)
    if pk is None:
        raise ItemError(f"id_muestra: la muestra {number} no existe o no está asignada a su laboratorio.", 404)
    return SampleRef(pk=pk, number=number)


def _own_code(caller: Caller, sample: Sample) -> str:
    # The LIS's own code is only repeated back to the lab that issued it.
    return sample.client_code if sample.client_lab_id in caller.actor.laboratory_ids else ""


def _step_failure(
    caller: Caller, exc: DomainError, *, step: str, ref: SampleRef, item: dict[str, Any], when: datetime | None
) -> ItemError:
    sample = _visible(caller).select_related("result_value", "test").filter(pk=ref.pk).first()
    message = mapping.step_error_message(exc, step=step, number=ref.number, sample=sample, item=item, when=when)
    return ItemError(message, exc.status)


def _parsed_time(item: dict[str, Any], name: str) -> datetime | None:
    try:
        return parse_datetime(item.get(name))
    except ParseError as exc:
        raise ItemError(f"{name}: {exc.message}.", 422) from exc


#: A lab step on one item: the sample, and whether anything changed (False for a repeated receipt).
StepAction = Callable[[Caller, SampleRef, dict[str, Any]], tuple[Sample, bool]]


def _run_steps(request: HttpRequest, caller: Caller, action: StepAction) -> HttpResponse:
    """Applies a lab step to each item on its own: one bad item never blocks the others.

    All good: the national success array. Any failure: `{"error": ...}` with the failure's HTTP status, so a
    client that only checks the status never mistakes a refusal for a success; `resultados` then lists every
    item (successes included, they are stored) in the request's order. Retrying the whole request is harmless:
    each of these steps is idempotent."""
    items = _items(request)
    results: list[dict[str, Any]] = []
    failures: list[tuple[int, ItemError]] = []
    for position, item in enumerate(items, start=1):
        reference = _item_reference(item)
        try:
            ref = _sample_ref(caller, item)
            sample, changed = action(caller, ref, item)
            results.append({"id_muestra": sample.number, "codigo_muestra_cliente": _own_code(caller, sample)})
            _log_done(caller, position, reference, sample.pk, changed, item)
        except ItemError as exc:
            failures.append((position, exc))
            _log_message(caller, position, reference, exc.message, item)
            results.append(
                {
                    "id_muestra": _item_number(item),
                    "codigo_muestra_cliente": loose_text(item.get("codigo_muestra_cliente")),
                    "error": exc.message,
                }
            )
    if not failures:
        return _json(results)
    if len(items) == 1:
        return _error(failures[0][1].message, failures[0][1].status)
    statuses = {exc.status for _position, exc in failures}
    message = f"{len(failures)} de {len(items)} elementos no se procesaron (los demás sí): " + " | ".join(
        f"elemento {position}: {exc.message}" for position, exc in failures
    )
    return _error(message, statuses.pop() if len(statuses) == 1 else 422, resultados=results)


def _item_reference(item: dict[str, Any]) -> str:
    number = _item_number(item)
    return str(number) if number is not None else loose_text(item.get("codigo_muestra_cliente"))


def _item_number(item: dict[str, Any]) -> int | None:
    try:
        return parse_int(item.get("id_muestra"))
    except ParseError:
        return None


def _receive(caller: Caller, ref: SampleRef, item: dict[str, Any]) -> tuple[Sample, bool]:
    when = _parsed_time(item, "fecha_recepcion_laboratorio")
    try:
        sample, recorded = sample_receive(actor=caller.actor, sample_id=ref.pk, received_at=when, channel=Channel.PNTM)
    except DomainError as exc:
        raise _step_failure(caller, exc, step="receive", ref=ref, item=item, when=when) from exc
    return sample, recorded


def _forward(caller: Caller, ref: SampleRef, item: dict[str, Any]) -> tuple[Sample, bool]:
    try:
        new_lab = parse_int(item.get("id_nuevo_laboratorio"))
    except ParseError as exc:
        raise ItemError(f"id_nuevo_laboratorio: {exc.message}.", 422) from exc
    if new_lab is None:
        raise ItemError("id_nuevo_laboratorio: falta este campo obligatorio.", 422)
    try:
        sample = sample_forward(
            actor=caller.actor,
            sample_id=ref.pk,
            new_laboratory=new_lab,
            reason=_reason(item),
            channel=Channel.PNTM,
        )
    except DomainError as exc:
        raise _step_failure(caller, exc, step="forward", ref=ref, item=item, when=None) from exc
    return sample, True


def _return(caller: Caller, ref: SampleRef, item: dict[str, Any]) -> tuple[Sample, bool]:
    try:
        return sample_return(actor=caller.actor, sample_id=ref.pk, reason=_reason(item), channel=Channel.PNTM), True
    except DomainError as exc:
        raise _step_failure(caller, exc, step="return", ref=ref, item=item, when=None) from exc


def _reason(item: dict[str, Any]) -> str:
    for name in ("motivo", "observacion", "razon"):
        value = item.get(name)
        if not is_blank(value):
            return loose_text(value)[:250]
    return ""


# --- results ----------------------------------------------------------------------------------------------------


def _report(request: HttpRequest) -> ReportFile | None:
    """The uploaded report: part `upfile`, or the only file part when a client named it otherwise. An empty
    file counts as none (clients sent one with "Muestra no apta")."""
    if request.content_type != "multipart/form-data":
        return None
    upload = request.FILES.get("upfile")
    others = [name for name in request.FILES if name != "parametros"]
    if upload is None and len(others) == 1:
        upload = request.FILES.get(others[0])
    if upload is None or not upload.size:
        return None
    limit = settings.MUESTRA["MAX_REPORT_BYTES"]
    if upload.size > limit:
        raise PntmError(f"upfile: el archivo supera el tamaño máximo de {limit // (1024 * 1024)} MB.", 422)
    return ReportFile(
        content=upload.read(),
        content_type=(upload.content_type or "application/octet-stream")[:80],
        name=upload.name or "informe",
    )


def _deliver_result(request: HttpRequest, caller: Caller) -> HttpResponse:
    """entregaResultado(MP): one sample per call. The assigned lab may deliver to a sample it has not marked
    received: the services record the receipt implicitly first (a result proves the lab holds the tube)."""
    items = _items(request)
    if len(items) != 1:
        raise PntmError("entregaResultado recibe una sola muestra por llamada (un objeto en «parametros»).", 400)
    item = items[0]
    try:
        ref = _sample_ref(caller, item)
        value = loose_text(item.get("resultado"))
        if not value:
            raise ItemError("resultado: falta este campo obligatorio.", 422)
        when = _parsed_time(item, "fecha_hora_resultado_laboratorio")
        report = _report(request)
        code = mapping.catalog_code(ResultValue, lookups.result_value, value) or value
        try:
            result, recorded = result_deliver(
                actor=caller.actor,
                sample_id=ref.pk,
                value=code,
                reported_at=when,
                report=report,
                channel=Channel.PNTM,
            )
        except DomainError as exc:
            raise _step_failure(caller, exc, step="result", ref=ref, item=item, when=when) from exc
    except ItemError as exc:
        _log_message(caller, 1, _item_reference(item), exc.message, item)
        return _error(exc.message, exc.status)
    _log_done(caller, 1, str(ref.number), ref.pk, recorded, item)
    name = result.value.pntm_name or result.value.name
    if recorded:
        return _json({"MENSAJE": f"Resultado «{name}» registrado para la muestra {ref.number}."})
    return _json({"MENSAJE": f"La muestra {ref.number} ya tenía registrado el resultado «{name}»; sin cambios."})


# --- reads -------------------------------------------------------------------------------------------------------


def _readable(caller: Caller) -> QuerySet[Sample]:
    """What a lab may read here: its scope (`scoped`), narrowed to the samples assigned to it now, without the
    cancelled ones (the national platform deleted abandoned samples)."""
    return (
        _visible(caller)
        .filter(laboratory_id__in=caller.actor.laboratory_ids, state__in=mapping.visible_states())
        .select_related(*mapping.READ_RELATED)
    )


def _read_answer(caller: Caller, samples: list[Sample], *, search: bool) -> HttpResponse:
    professionals = mapping.professionals_by_run(samples)
    rows = [mapping.sample_to_wire(s, professionals) for s in samples]
    audit = [
        AuditItem("sample.read", "sample", s.number, {"channel": Channel.PNTM.value, "operation": caller.operation})
        for s in samples
    ]
    if search:
        # The search itself is recorded (without its terms, which are personal data) even when it finds nothing.
        audit.append(
            AuditItem(
                "sample.search", "pntm", caller.operation, {"channel": Channel.PNTM.value, "results": len(samples)}
            )
        )
    audit_record_many(actor=caller.actor.label, items=audit)
    return _json(rows)


def _read_items(request: HttpRequest, caller: Caller) -> list[dict[str, Any]]:
    items = _items(request)
    for item in items:
        if (mismatch := _lab_mismatch(caller, item)) is not None:
            raise PntmError(mismatch, 422)
    return items


def _read_field(item: dict[str, Any], name: str, parser: Callable[[Any], Any], *, required: bool = True) -> Any:
    try:
        value = parser(item.get(name))
    except ParseError as exc:
        raise PntmError(f"{name}: {exc.message}.", 422) from exc
    if value is None and required:
        raise PntmError(f"{name}: falta este campo obligatorio.", 422)
    return value


def _by_id(request: HttpRequest, caller: Caller) -> HttpResponse:
    numbers = [_read_field(item, "id_muestra", parse_int) for item in _read_items(request, caller)]
    pks = [pk for n in numbers if (pk := Sample.pk_from_number(n)) is not None]
    found = {s.pk: s for s in _readable(caller).filter(pk__in=pks)}
    return _read_answer(caller, [found[pk] for pk in dict.fromkeys(pks) if pk in found], search=False)


def _patient_run(item: dict[str, Any]) -> str:
    for name in ("rut_paciente", "run_paciente", "paciente_run"):
        if not is_blank(item.get(name)):
            try:
                dv = item.get("paciente_dv") if name == "paciente_run" else None
                return parse_run(item.get(name), None if is_blank(dv) else dv, allow_compact=True)
            except ParseError as exc:
                raise PntmError(f"{name}: RUT inválido: {exc.message}.", 422) from exc
    raise PntmError("rut_paciente: falta este campo obligatorio.", 422)


def _by_run(request: HttpRequest, caller: Caller) -> HttpResponse:
    runs = list(dict.fromkeys(_patient_run(item) for item in _read_items(request, caller)))
    samples = list(
        _readable(caller)
        .filter(
            patient__in=Patient.objects.with_document().filter(
                document_type__validator=DocumentValidator.CL_RUN, document_number__in=runs
            )
        )
        .order_by("collected_at", "pk")
    )
    return _read_answer(caller, samples, search=True)


def _by_date(request: HttpRequest, caller: Caller) -> HttpResponse:
    samples: dict[int, Sample] = {}
    for item in _read_items(request, caller):
        day = _read_field(item, "fecha_muestra", parse_date)
        code = _read_field(item, "estado_muestra", parse_int, required=False)
        qs = _readable(caller)
        if code is not None:
            if str(code) not in mapping.KNOWN_STATE_CODES:
                raise PntmError(f"estado_muestra: estado desconocido «{code}» (use un número de 1 a 9).", 422)
            qs = qs.filter(state__in=mapping.states_for_code(str(code)))
        start, end = local_day_bounds(day)
        for sample in qs.filter(collected_at__gte=start, collected_at__lt=end).order_by("collected_at", "pk"):
            samples.setdefault(sample.pk, sample)
    return _read_answer(caller, list(samples.values()), search=True)


# --- dispatch ----------------------------------------------------------------------------------------------------

Handler = Callable[[HttpRequest, Caller], HttpResponse]


def _creator(module: Module, *, per_item: bool, require_laboratory: bool) -> Handler:
    def handler(request: HttpRequest, caller: Caller) -> HttpResponse:
        return _create(request, caller, module=module, per_item=per_item, require_laboratory=require_laboratory)

    return handler


def _stepper(action: StepAction) -> Handler:
    def handler(request: HttpRequest, caller: Caller) -> HttpResponse:
        return _run_steps(request, caller, action)

    return handler


#: Every operation of the national API. The Monkeypox module had its own paths for the same steps.
OPERATIONS: dict[str, Handler] = {
    # v1 had no id_laboratorio (the key says which lab); v2 made it required; both refuse a batch with one bad row.
    "crearMuestras": _creator(COVID, per_item=False, require_laboratory=False),
    "crearMuestras_v2": _creator(COVID, per_item=False, require_laboratory=True),
    "crearMuestras_v3": _creator(COVID, per_item=True, require_laboratory=True),
    "crearMuestraMP": _creator(MPOX, per_item=False, require_laboratory=True),
    "recepcionarMuestra": _stepper(_receive),
    "recepcionarMuestraMP": _stepper(_receive),
    "entregaResultado": _deliver_result,
    "entregaResultadoMP": _deliver_result,
    "datosMuestraID": _by_id,
    "datosMuestraRUT": _by_run,
    "datosMuestraFECHA": _by_date,
    "cambioLaboratorio": _stepper(_forward),
    "devolverMuestra": _stepper(_return),
}
_BY_FOLDED_NAME = {name.casefold(): name for name in OPERATIONS}


@csrf_exempt  # a machine API authenticated by its ACCESSKEY header; there is no browser session to protect
def endpoint(request: HttpRequest, operation: str) -> HttpResponse:
    # The national API speaks Spanish to every client, whatever its Accept-Language says.
    with translation.override("es"):
        name = _BY_FOLDED_NAME.get(operation.casefold())
        if name is None:
            return _error(f"Operación desconocida «{operation}».", 404)
        if request.method != "POST":
            response = _error(f"Método {request.method} no permitido: use POST.", 405)
            response["Allow"] = "POST"
            return response
        caller: Caller | None = None
        failure = ""
        try:
            caller = _authenticate(request, name)
            return OPERATIONS[name](request, caller)
        except PntmError as exc:
            failure = exc.message
            return _error(exc.message, exc.status, **exc.extra)
        except DomainError as exc:
            failure = f"{mapping.national_field(exc.field or '')}: {exc.message}"
            return _error(failure, exc.status)
        except Exception:
            incident = secrets.token_hex(4)
            # No request data in the log: it is full of personal data. The incident code ties the two together.
            logger.exception("PNTM %s failed (incident %s)", name, incident)
            failure = f"Error interno. Si persiste, informe el código {incident}."
            return _error(failure, 500)
        finally:
            if caller is not None and name in LOGGED_OPERATIONS:
                _log_call(caller, failure)


#: The operations that change something: each call is one unit of the intake log (reads are audited instead).
LOGGED_OPERATIONS = frozenset(name for name in OPERATIONS if not name.startswith("datosMuestra"))


def _log_call(caller: Caller, failure: str) -> None:
    """One intake and one bulk insert of its items, after the answer was built. The call's own writes are already
    committed: a failure to log is reported in the server log and never changes the national answer."""
    try:
        intake_services.intake_record_call(
            actor=caller.actor,
            channel=IntakeChannel.PNTM,
            kind=caller.operation,
            laboratory_id=caller.laboratory.pk,
            items=caller.log,
            error=failure,
        )
    except Exception:
        logger.exception("PNTM %s: the intake log could not be written", caller.operation)
