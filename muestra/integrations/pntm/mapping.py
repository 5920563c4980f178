"""Between the national platform's wire format and our services: sample rows -> `SampleInput`, samples -> read
rows, our states -> the national state codes, and our errors -> Spanish messages that name the national field.

The services speak in our field names (`patient.birth_date`) and error codes (`required`, `unknown_code`); a
lab's integrator only knows the national names (`paciente_fecha_nac`). Every message that leaves this adapter
therefore starts with the national field it is about and is written here in Spanish, whatever language the
service catalogues are in. An error this table does not know falls back to the service's own message (in the
active language, Spanish for this API) behind the national field name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Model

from muestra.accounts.models import User
from muestra.catalog.models import DocumentValidator, HealthInsurance, IdentityDocumentType, SampleType, Strategy, Test
from muestra.core.errors import DomainError, FieldError
from muestra.facilities.models import Laboratory
from muestra.integrations.pntm.parsing import (
    ParseError,
    clean_text,
    format_date,
    format_datetime,
    is_blank,
    loose_text,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_int,
    parse_run,
)
from muestra.samples import lookups
from muestra.samples.inputs import PatientInput, SampleInput
from muestra.samples.models import Sample, SampleState

S = SampleState

# --- states -----------------------------------------------------------------------------------------------

#: Our state -> the national `estado_muestra`. Registered and dispatched are both "2" (a lab sees a sample
#: addressed to it as "sent to lab" either way). A returned sample is back at its establishment, which must send
#: it again: that is "1" (being created) in national terms. Cancelled samples have no code: the national
#: platform deleted abandoned samples, so reads leave them out (see `visible_states`).
STATE_CODE: dict[str, str] = {
    S.REGISTERED: "2",
    S.DISPATCHED: "2",
    S.RECEIVED: "3",
    S.RESULT: "4",
    S.REJECTED: "6",
    S.RETURNED: "1",
}

#: National codes 5, 7, 8 and 9 (being modified, mutation analysis, mutation result, edit authorised) have no
#: counterpart here: a query for them is valid and finds nothing.
KNOWN_STATE_CODES = frozenset(str(n) for n in range(1, 10))


def states_for_code(code: str) -> list[str]:
    return [state for state, national in STATE_CODE.items() if national == code]


def visible_states() -> list[str]:
    return list(STATE_CODE)


STATE_LABEL_ES: dict[str, str] = {
    S.REGISTERED: "registrada (aún no enviada)",
    S.DISPATCHED: "enviada al laboratorio",
    S.RECEIVED: "recepcionada por el laboratorio",
    S.RESULT: "con resultado",
    S.REJECTED: "rechazada",
    S.RETURNED: "devuelta al establecimiento",
    S.CANCELLED: "anulada",
}

# --- modules ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    """The national platform's modules: COVID-19 (2020) and Monkeypox (Sept 2022), each with its own create."""

    disease: str
    default_technique: str
    label: str


COVID = Module(disease="covid19", default_technique="RT-PCR", label="COVID-19")
MPOX = Module(disease="mpox", default_technique="RT-PCR", label="Monkeypox")

#: Spellings of `tecnica_muestra` seen besides the official ones.
TECHNIQUE_ALIASES = {"pcr": "RT-PCR", "rt pcr": "RT-PCR", "rtpcr": "RT-PCR", "antigeno": "Test Pack"}

# --- field names --------------------------------------------------------------------------------------------

#: Our service field -> the national field. `patient.document_number` depends on the document type and is
#: decided per row (`WireSample.document_field`).
NATIONAL_FIELD: dict[str, str] = {
    "client_code": "codigo_muestra_cliente",
    "laboratory": "id_laboratorio",
    "establishment": "cod_deis",
    "responsible_run": "rut_responsable",
    "ordering_physician_run": "rut_medico",
    "without_medical_order": "sin_orden_medica",
    "surveillance_number": "epivigila",
    "test": "tecnica_muestra",
    "sample_type": "tipo_muestra",
    "collected_at": "fecha_muestra",
    "strategy": "estrategia",
    "substrategy": "subestrategia",
    "active_case_finding": "busqueda_activa",
    "result": "resultado",
    "result_at": "fecha_hora_resultado_laboratorio",
    "reported_at": "fecha_hora_resultado_laboratorio",
    "received_at": "fecha_recepcion_laboratorio",
    "report": "upfile",
    "sample": "id_muestra",
    "state": "estado_muestra",
    "new_laboratory": "id_nuevo_laboratorio",
    "items": "cuerpo",
    "patient": "paciente",
    "patient.document_type": "paciente_tipodoc",
    "patient.document_number": "paciente_run",
    "patient.document_issuer": "paciente_ext_paisorigen",
    "patient.nationality": "paciente_ext_paisorigen",
    "patient.given_names": "paciente_nombres",
    "patient.paternal_surname": "paciente_ap_pat",
    "patient.maternal_surname": "paciente_ap_mat",
    "patient.birth_date": "paciente_fecha_nac",
    "patient.sex": "paciente_sexo",
    "patient.residence": "paciente_comuna",
    "patient.address": "paciente_direccion",
    "patient.phone": "paciente_telefono",
    "patient.email": "paciente_email",
    "patient.insurance": "paciente_prevision",
    # A newborn (RECIEN NACIDO) is registered through a guardian, identified by paciente_run/paciente_dv; the
    # guardian's other data travel in our extension fields tutor_* (the national API had none).
    "patient.guardian": "tutor_nombres",
    "patient.guardian.document_type": "paciente_tipodoc",
    "patient.guardian.document_number": "paciente_run",
    "patient.guardian.given_names": "tutor_nombres",
    "patient.guardian.paternal_surname": "tutor_ap_pat",
    "patient.guardian.maternal_surname": "tutor_ap_mat",
    "patient.guardian.birth_date": "tutor_fecha_nac",
    "patient.guardian.sex": "tutor_sexo",
}


def national_field(service_field: str, *, document_field: str = "paciente_run") -> str:
    if service_field == "patient.document_number":
        return document_field
    return NATIONAL_FIELD.get(service_field, service_field or "cuerpo")


# --- errors ---------------------------------------------------------------------------------------------------


@dataclass
class WireError:
    """One problem of one item, in national terms. `message` is complete Spanish text starting with `field`."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"campo": self.field, "error": self.message}


REQUIRED = "{campo}: falta este campo obligatorio."

#: (national field, our error code) -> Spanish message. {campo} is the field, {valor} what the client sent.
SPECIFIC_MESSAGES: dict[tuple[str, str], str] = {
    ("paciente_run", "invalid"): "paciente_run/paciente_dv: RUN inválido «{valor}» (el dígito verificador no "
    "corresponde o el número no tiene de 1 a 8 dígitos).",
    ("paciente_pasaporte", "invalid"): "paciente_pasaporte: un pasaporte tiene de 4 a 20 letras o dígitos.",
    ("paciente_tipodoc", "unknown_code"): "paciente_tipodoc: tipo de documento desconocido «{valor}» (use RUN, "
    "PASAPORTE, SIN DOCUMENTACION, RECIEN NACIDO, DNI PAIS DE ORIGEN o N° FICHA CLINICA).",
    ("paciente_ext_paisorigen", "required"): "paciente_ext_paisorigen: falta el país que emitió el documento (id de "
    "país de la plataforma, p. ej. 499 para Chile).",
    ("paciente_ext_paisorigen", "unknown_code"): "paciente_ext_paisorigen: país desconocido «{valor}» (use el id de "
    "país de la plataforma, p. ej. 499 para Chile).",
    ("paciente_sexo", "invalid"): "paciente_sexo: valor no válido «{valor}» (use M, F, Intersex o Desconocido).",
    ("tutor_sexo", "invalid"): "tutor_sexo: valor no válido «{valor}» (use M, F, Intersex o Desconocido).",
    ("paciente_comuna", "unknown_code"): "paciente_comuna: código de comuna desconocido «{valor}» (use el código "
    "DEIS/CUT, p. ej. 13101 para Santiago).",
    ("paciente_direccion", "required"): "paciente_direccion: falta la dirección (no puede estar vacía ni ser «.»).",
    ("paciente_telefono", "invalid"): "paciente_telefono: teléfono no válido «{valor}» (9 dígitos, o 11-12 con el "
    "código de país).",
    ("paciente_email", "invalid"): "paciente_email: correo electrónico no válido «{valor}».",
    ("paciente_prevision", "required"): "paciente_prevision: falta la previsión, obligatoria para pacientes con RUN.",
    ("paciente_prevision", "unknown_code"): "paciente_prevision: previsión desconocida «{valor}» (use FONASA, ISAPRE, "
    "CAPREDENA, SISAN, SISAE, DIPRECA o SIN PREVISIÓN).",
    ("paciente_fecha_nac", "future"): "paciente_fecha_nac: la fecha de nacimiento no puede estar en el futuro.",
    ("paciente_fecha_nac", "too_old"): "paciente_fecha_nac: la fecha de nacimiento es de hace más de 130 años.",
    ("tutor_nombres", "required"): "tutor_nombres: un recién nacido se registra con los datos de su tutor "
    "(paciente_run/paciente_dv del tutor y tutor_nombres, tutor_ap_pat, tutor_fecha_nac, tutor_sexo).",
    ("fecha_muestra", "future"): "fecha_muestra: la fecha de toma de muestra no puede estar en el futuro.",
    ("fecha_muestra", "stale"): "fecha_muestra: la fecha de toma de muestra tiene más de {dias} días.",
    ("tipo_muestra", "unknown_code"): "tipo_muestra: tipo de muestra desconocido «{valor}».",
    ("tipo_muestra", "not_allowed"): "tipo_muestra: «{valor}» no corresponde a la técnica {tecnica} del módulo "
    "{modulo}.",
    ("estrategia", "unknown_code"): "estrategia: estrategia desconocida «{valor}».",
    ("subestrategia", "unknown_code"): "subestrategia: subestrategia desconocida «{valor}».",
    ("cod_deis", "unknown_code"): "cod_deis: establecimiento desconocido «{valor}».",
    ("cod_deis", "not_yours"): "cod_deis: no puede registrar muestras del establecimiento «{valor}».",
    ("id_laboratorio", "unknown_code"): "id_laboratorio: laboratorio desconocido «{valor}».",
    ("id_laboratorio", "required"): REQUIRED,
    ("id_laboratorio", "not_assigned"): "id_laboratorio: el laboratorio {valor} no está asignado al establecimiento "
    "cod_deis {cod_deis}.",
    ("id_laboratorio", "not_authorised"): "id_laboratorio: el laboratorio {valor} no está autorizado para el módulo "
    "{modulo}.",
    ("id_laboratorio", "wrong_laboratory"): "id_laboratorio: un laboratorio solo puede registrar muestras dirigidas "
    "a sí mismo.",
    ("rut_responsable", "invalid"): "rut_responsable: RUT inválido «{valor}».",
    ("rut_medico", "invalid"): "rut_medico: RUT inválido «{valor}».",
    ("rut_medico", "required"): "rut_medico: falta el RUT del médico, obligatorio con orden médica "
    "(sin_orden_medica = false).",
    ("resultado", "required"): "resultado: un test de antígeno (Test Pack) se registra junto con su resultado.",
    ("resultado", "unknown_code"): "resultado: resultado desconocido «{valor}».",
    ("resultado", "not_allowed"): "resultado: «{valor}» no es un resultado válido para la técnica {tecnica} (solo "
    "los test de antígeno se registran con resultado).",
    ("codigo_muestra_cliente", "too_long"): "codigo_muestra_cliente: admite como máximo 60 caracteres.",
    ("codigo_muestra_cliente", "duplicate"): "codigo_muestra_cliente: «{valor}» aparece dos veces en este envío.",
    ("codigo_muestra_cliente", "conflict"): "codigo_muestra_cliente: «{valor}» ya corresponde a la muestra "
    "{id_muestra} con otros datos (establecimiento, técnica, tipo, fecha de toma o paciente); un reintento debe "
    "repetir exactamente los mismos datos.",
}

GENERIC_MESSAGES: dict[str, str] = {
    "required": REQUIRED,
    "unknown_code": "{campo}: valor desconocido «{valor}».",
    "invalid": "{campo}: valor no válido «{valor}».",
    "future": "{campo}: la fecha no puede estar en el futuro.",
    "stale": "{campo}: la fecha tiene más de {dias} días.",
    "too_old": "{campo}: la fecha es de hace más de 130 años.",
    "before_collection": "{campo}: la fecha no puede ser anterior a la de toma de la muestra (fecha_muestra).",
    "too_long": "{campo}: el valor es demasiado largo.",
    "not_allowed": "{campo}: el valor «{valor}» no está permitido aquí.",
    "duplicate": "{campo}: «{valor}» aparece dos veces en este envío.",
    "conflict": "{campo}: «{valor}» ya está en uso con otros datos.",
}

#: Codes meaning "missing" when the client sent nothing for the field.
_MISSING_CODES = frozenset({"required", "unknown_code", "invalid"})


def _fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form: "SIN PREVISION" matches "SIN PREVISIÓN"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def field_error_to_wire(
    error: FieldError, *, raw: Mapping[str, Any], document_field: str = "paciente_run", **context: Any
) -> WireError:
    """A service field error as Spanish text naming the national field; `context` fills message details."""
    name = national_field(error.field, document_field=document_field)
    value = loose_text(raw.get(name))
    if is_blank(raw.get(name)) and error.code in _MISSING_CODES and name in WIRE_FIELDS:
        template: str | None = SPECIFIC_MESSAGES.get((name, "required"), REQUIRED)
    else:
        template = SPECIFIC_MESSAGES.get((name, error.code)) or GENERIC_MESSAGES.get(error.code)
    if template is None:
        return WireError(name, f"{name}: {error.message}")
    values = {
        "campo": name,
        "valor": value,
        "dias": settings.MUESTRA["MAX_COLLECTION_AGE_DAYS"],
        "tecnica": clean_text(raw.get("tecnica_muestra")) or "RT-PCR",
        "cod_deis": clean_text(raw.get("cod_deis")),
        "modulo": "",
        "id_muestra": "",
        **context,
    }
    return WireError(name, template.format(**values))


#: Fields that together carry one value: a problem with either is one problem (the patient's RUN).
_SAME_VALUE = {"paciente_dv": "paciente_run"}


def merge_errors(*groups: Iterable[WireError]) -> list[WireError]:
    """One message per national value, the first one found (the adapter's own checks come first)."""
    seen: set[str] = set()
    merged = []
    for group in groups:
        for error in group:
            key = _SAME_VALUE.get(error.field, error.field)
            if key not in seen:
                seen.add(key)
                merged.append(error)
    return merged


# --- create: wire row -> SampleInput ---------------------------------------------------------------------------

#: Every field a create row may carry (national names, plus the tutor_* extension for newborns).
WIRE_FIELDS = frozenset(
    {
        "codigo_muestra_cliente",
        "id_laboratorio",
        "rut_responsable",
        "cod_deis",
        "rut_medico",
        "sin_orden_medica",
        "epivigila",
        "paciente_tipodoc",
        "paciente_run",
        "paciente_dv",
        "paciente_pasaporte",
        "paciente_ext_paisorigen",
        "paciente_nombres",
        "paciente_ap_pat",
        "paciente_ap_mat",
        "paciente_fecha_nac",
        "paciente_comuna",
        "paciente_direccion",
        "paciente_telefono",
        "paciente_email",
        "paciente_sexo",
        "paciente_prevision",
        "fecha_muestra",
        "tecnica_muestra",
        "tipo_muestra",
        "busqueda_activa",
        "estrategia",
        "subestrategia",
        "resultado",
        "fecha_hora_resultado_laboratorio",
        "tutor_nombres",
        "tutor_ap_pat",
        "tutor_ap_mat",
        "tutor_fecha_nac",
        "tutor_sexo",
    }
)


@dataclass
class WireSample:
    """One create row: what the client sent, the service input built from it, and the adapter's own errors."""

    row: int  # 1-based position in the request, as integrators count rows
    raw: dict[str, Any]
    data: SampleInput
    errors: list[WireError] = field(default_factory=list)
    document_field: str = "paciente_run"

    @property
    def client_code(self) -> str:
        return self.data.client_code


def catalog_code(model: type[Model], lookup: Callable[[Any], Any], value: Any) -> str | None:
    """The catalogue code for a national name, trying our cached exact look-up first and then an accent- and
    case-insensitive match (LIS often dropped accents: "SIN PREVISION", "Torulas Nasofaringeas")."""
    text = clean_text(value)
    if not text:
        return None
    row = lookup(text)
    if row is not None:
        return str(row.code)
    wanted = _fold(text)
    for code, pntm_name, name in model._default_manager.filter(active=True).values_list("code", "pntm_name", "name"):
        if wanted in {_fold(pntm_name), _fold(name), _fold(code)}:
            return str(code)
    return None


def _test_for(technique: str, module: Module) -> Test | None:
    wanted = TECHNIQUE_ALIASES.get(_fold(technique), technique)
    found = lookups.test_for_pntm(wanted, module.disease)
    if found is None:
        folded = _fold(wanted)
        for candidate in Test.objects.filter(active=True, disease__code=module.disease):
            if _fold(candidate.pntm_name) == folded:
                return lookups.test(candidate.code)
    return found


class _Row:
    """Reads one raw row field by field, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.errors: list[WireError] = []

    def fail(self, name: str, problem: str) -> None:
        self.errors.append(WireError(name, f"{name}: {problem}."))

    def missing(self, name: str) -> None:
        self.errors.append(WireError(name, REQUIRED.format(campo=name)))

    def text(self, name: str, *, required: bool = False) -> str:
        try:
            value = clean_text(self.raw.get(name))
        except ParseError as exc:
            self.fail(name, exc.message)
            return ""
        if value.casefold() == "null":
            value = ""
        if required and not value:
            self.missing(name)
        return value

    def parsed(self, name: str, parser: Callable[[Any], Any], *, required: bool = False) -> Any:
        try:
            value = parser(self.raw.get(name))
        except ParseError as exc:
            self.fail(name, exc.message)
            return None
        if value is None and required:
            self.missing(name)
        return value

    def run(self, name: str, check_digit: Any = None, *, required: bool = False, min_digits: int = 1) -> str:
        value = self.raw.get(name)
        if is_blank(value):
            if required:
                self.missing(name)
            return ""
        try:
            return parse_run(value, check_digit, min_digits=min_digits, allow_compact=check_digit is None)
        except ParseError as exc:
            self.fail(name, f"RUT inválido «{clean_text(value)}»: {exc.message}")
            return ""


def sample_from_wire(
    raw: dict[str, Any], row: int, *, module: Module, laboratory: Laboratory, require_laboratory: bool
) -> WireSample:
    """Builds the service input of one create row. Problems only this adapter can see (formats, the national
    rules the services do not know, the caller's lab) are collected in `errors`; the rest is left to the
    services' own validation so that both kinds reach the client together."""
    r = _Row(raw)
    client_code = r.text("codigo_muestra_cliente", required=True)

    lab_id = r.parsed("id_laboratorio", parse_int, required=require_laboratory)
    if lab_id is not None and lab_id != laboratory.platform_id:
        r.fail(
            "id_laboratorio",
            f"el laboratorio {lab_id} no corresponde a la clave de acceso usada (laboratorio {laboratory.platform_id})",
        )

    responsible_run = r.run("rut_responsable", required=True, min_digits=4)
    physician_run = r.run("rut_medico")
    without_order = r.parsed("sin_orden_medica", parse_bool)
    if without_order is None:
        # Older clients sent only rut_medico: a physician's RUN means there is a medical order.
        without_order = not physician_run and is_blank(raw.get("rut_medico"))

    technique = r.text("tecnica_muestra") or module.default_technique
    test = _test_for(technique, module)
    if test is None:
        allowed = sorted({t.pntm_name for t in Test.objects.filter(active=True, disease__code=module.disease)} - {""})
        r.fail(
            "tecnica_muestra",
            f"técnica desconocida «{technique}» en el módulo {module.label} (use {' o '.join(allowed)})",
        )

    collected_at = r.parsed("fecha_muestra", parse_datetime, required=True)
    sample_type = r.text("tipo_muestra")
    strategy = r.text("estrategia")
    substrategy = r.text("subestrategia")
    if not strategy and not substrategy:
        strategy = "Sin Estrategia"
    active_case_finding = r.parsed("busqueda_activa", parse_bool) or False

    result = r.text("resultado")
    result_at = r.parsed("fecha_hora_resultado_laboratorio", parse_datetime) if result else None

    patient, document_field = _patient_from_wire(r)
    data = SampleInput(
        establishment=r.text("cod_deis"),
        test=test.code if test is not None else "",
        sample_type=catalog_code(SampleType, lookups.sample_type, sample_type) or sample_type,
        collected_at=collected_at,
        patient=patient,
        laboratory=laboratory.platform_id,
        strategy=catalog_code(Strategy, lookups.strategy, strategy) or strategy,
        substrategy=catalog_code(Strategy, lookups.strategy, substrategy) or substrategy,
        active_case_finding=bool(active_case_finding),
        client_code=client_code,
        responsible_run=responsible_run,
        ordering_physician_run=physician_run,
        without_medical_order=bool(without_order),
        surveillance_number=r.text("epivigila"),
        result=result,
        result_at=result_at,
    )
    return WireSample(row=row, raw=raw, data=data, errors=r.errors, document_field=document_field)


def _patient_from_wire(r: _Row) -> tuple[PatientInput, str]:
    raw = r.raw
    doc_name = r.text("paciente_tipodoc")
    if not doc_name:
        # The first API version had no document type: a RUN, or failing that a passport, says which it is.
        if not is_blank(raw.get("paciente_run")):
            doc_name = "RUN"
        elif not is_blank(raw.get("paciente_pasaporte")):
            doc_name = "PASAPORTE"
        else:
            r.missing("paciente_tipodoc")
    doc_code = catalog_code(IdentityDocumentType, lookups.document_type, doc_name) if doc_name else None
    doc_type = lookups.document_type(doc_code) if doc_code else None
    validator = doc_type.validator if doc_type is not None else ""

    number = ""
    # The national platform numbers countries its own way (Chile = 499); say so explicitly to the look-up.
    issuer_id = r.text("paciente_ext_paisorigen")
    issuer = f"{lookups.PNTM_COUNTRY_PREFIX}{issuer_id}" if issuer_id else ""
    document_field = "paciente_run"
    guardian = None
    if validator in (DocumentValidator.CL_RUN, DocumentValidator.NEWBORN):
        if validator == DocumentValidator.CL_RUN and is_blank(raw.get("paciente_run")):
            r.missing("paciente_run")
        elif not is_blank(raw.get("paciente_run")):
            dv = raw.get("paciente_dv")
            if is_blank(dv) and "-" not in clean_text(raw.get("paciente_run")):
                r.missing("paciente_dv")
            else:
                number = r.run("paciente_run", "" if is_blank(dv) else dv)
        if validator == DocumentValidator.NEWBORN:
            guardian = PatientInput(
                document_type="run",
                document_number=number,
                given_names=r.text("tutor_nombres"),
                paternal_surname=r.text("tutor_ap_pat"),
                maternal_surname=r.text("tutor_ap_mat"),
                birth_date=r.parsed("tutor_fecha_nac", parse_date),
                sex=r.text("tutor_sexo"),
            )
            number = ""
    elif validator == DocumentValidator.PASSPORT:
        document_field = "paciente_pasaporte"
        number = r.text("paciente_pasaporte", required=True)
    elif validator == DocumentValidator.FREE_TEXT:
        # DNI PAIS DE ORIGEN / N° FICHA CLINICA came from bulk uploads; their number travels in the passport
        # column, or in the RUN column when that was all the LIS had.
        document_field = "paciente_pasaporte" if not is_blank(raw.get("paciente_pasaporte")) else "paciente_run"
        number = r.text(document_field)
    if is_blank(raw.get("paciente_ap_mat")):
        # The national rule: required, but "." stands for "no second surname".
        r.fail("paciente_ap_mat", "falta este campo obligatorio (envíe «.» si la persona no tiene segundo apellido)")

    nationality = issuer if issuer and lookups.country(issuer) is not None else ""
    patient = PatientInput(
        document_type=doc_code or doc_name,
        document_number=number,
        document_issuer=issuer if validator in (DocumentValidator.PASSPORT, DocumentValidator.FREE_TEXT) else "",
        given_names=r.text("paciente_nombres"),
        paternal_surname=r.text("paciente_ap_pat"),
        maternal_surname=r.text("paciente_ap_mat"),
        birth_date=r.parsed("paciente_fecha_nac", parse_date),
        sex=r.text("paciente_sexo"),
        residence=r.text("paciente_comuna"),
        address=r.text("paciente_direccion"),
        phone=r.text("paciente_telefono"),
        email=r.text("paciente_email"),
        insurance=catalog_code(HealthInsurance, lookups.insurance, r.text("paciente_prevision"))
        or r.text("paciente_prevision"),
        nationality=nationality,
        guardian=guardian,
    )
    return patient, document_field


# --- reads: Sample -> wire row ---------------------------------------------------------------------------------

SEX_OUT = {"M": "M", "F": "F", "I": "Intersex", "U": "Desconocido"}

#: The related rows a read row needs, fetched with the samples in one query.
READ_RELATED = (
    "establishment",
    "laboratory",
    "test",
    "sample_type",
    "result_value",
    "registered_by",
    "patient__document_type",
    "patient__residence",
    "patient__insurance",
    "patient__nationality",
)


def _national_name(row: Any) -> str:
    if row is None:
        return ""
    return str(getattr(row, "pntm_name", "") or row.name)


def professionals_by_run(samples: Iterable[Sample]) -> dict[str, str]:
    """Full names of the responsible professionals known as users, by RUN (one query for a whole page)."""
    runs = {s.responsible_run for s in samples if s.responsible_run}
    if not runs:
        return {}
    return {str(u.national_id): u.get_full_name() for u in User.objects.filter(national_id__in=runs)}


def sample_to_wire(sample: Sample, professionals: Mapping[str, str]) -> dict[str, Any]:
    """A read row with exactly the fields of the national documentation, in its order."""
    patient = sample.patient
    if sample.responsible_run:
        professional_run = sample.responsible_run
        professional_name = professionals.get(sample.responsible_run, "")
    elif sample.registered_by is not None:
        professional_run = sample.registered_by.national_id or ""
        professional_name = sample.registered_by.get_full_name()
    else:
        professional_run = professional_name = ""
    return {
        "id_muestra": sample.number,
        "estado_muestra": STATE_CODE.get(sample.state, ""),
        "resultado": _national_name(sample.result_value),
        "nombre_profesional": professional_name,
        "rut_profesional": professional_run,
        "establecimiento_toma_muestra": sample.establishment.name,
        "rut_medico_toma_muestra": sample.ordering_physician_run,
        "fecha_muestra": format_datetime(sample.collected_at),
        "tecnica_muestra": _national_name(sample.test),
        "tipo_muestra": _national_name(sample.sample_type),
        "laboratorio": sample.laboratory.name if sample.laboratory is not None else "",
        "id_paciente": patient.document_number if patient is not None else "",
        "paciente_tipodoc": _national_name(patient.document_type) if patient is not None else "",
        "nombre_paciente": patient.given_names if patient is not None else "",
        "apellido_paterno_paciente": patient.paternal_surname if patient is not None else "",
        "apellido_materno_paciente": patient.maternal_surname if patient is not None else "",
        "fecha_nacimiento": format_date(patient.birth_date) if patient is not None else "",
        "comuna": patient.residence.name if patient is not None and patient.residence is not None else "",
        "paciente_direccion": patient.address if patient is not None else "",
        "paciente_telefono": patient.phone if patient is not None else "",
        "pais": patient.nationality.name if patient is not None and patient.nationality is not None else "",
        "paciente_sexo": SEX_OUT.get(patient.sex, "") if patient is not None else "",
        "paciente_prevision": _national_name(patient.insurance) if patient is not None else "",
    }


# --- lab steps: service errors -> Spanish ----------------------------------------------------------------------

STEP_VERB = {
    "receive": "recepcionar",
    "result": "entregar el resultado de",
    "forward": "cambiar de laboratorio",
    "return": "devolver",
}


def step_error_message(
    exc: DomainError,
    *,
    step: str,
    number: int,
    sample: Sample | None,
    item: Mapping[str, Any],
    when: Any = None,
) -> str:
    """A service refusal of a lab step on one sample, in Spanish naming the national field.

    `sample` is the sample as the caller may see it (None when out of scope), `when` the time the client sent
    for the step (used to tell "in the future" from "before the collection" apart)."""
    from django.utils import timezone

    errors = exc.errors or [FieldError(exc.field or "", exc.code, exc.message)]
    first = errors[0]
    code = exc.code if exc.code not in {"validation_error", "invalid"} else first.code
    if exc.status == 404 or sample is None:
        return f"id_muestra: la muestra {number} no existe o no está asignada a su laboratorio."
    if code in {"wrong_laboratory", "forbidden"}:
        return f"id_muestra: la muestra {number} está asignada a otro laboratorio."
    if code == "illegal_transition":
        if sample.pool_id is not None:
            return f"id_muestra: la muestra {number} es parte de un pool; actúe sobre el tubo del pool."
        state = STATE_LABEL_ES.get(sample.state, sample.state)
        return f"id_muestra: no se puede {STEP_VERB.get(step, step)} la muestra {number}: está {state}."
    if code == "conflict" and first.field == "result":
        current = _national_name(sample.result_value)
        return (
            f"resultado: la muestra {number} ya tiene otro resultado ({current}); un resultado distinto es una "
            "corrección y se hace mediante el flujo de corrección de resultados, no con entregaResultado."
        )
    name = national_field(first.field)
    if first.field in {"received_at", "reported_at"}:
        if when is not None and when > timezone.now():
            return f"{name}: la fecha no puede estar en el futuro."
        return f"{name}: la fecha no puede ser anterior a la fecha de toma de la muestra."
    if first.field == "result":
        allowed = ", ".join(
            _national_name(v) for v in sample.test.result_values.filter(active=True).exclude(pntm_name="")
        )
        return f"resultado: «{loose_text(item.get('resultado'))}» no es válido para esta muestra (use {allowed})."
    if first.field == "report":
        return (
            "upfile: falta el informe firmado (archivo), obligatorio con el resultado "
            f"«{loose_text(item.get('resultado'))}»."
        )
    if first.field == "new_laboratory":
        return (
            f"id_nuevo_laboratorio: el laboratorio «{loose_text(item.get('id_nuevo_laboratorio'))}» no existe o no "
            "está autorizado para esta enfermedad."
        )
    return f"{name}: {first.message}"
