"""Every URI Muestra's FHIR interface reads or writes, in one place (documented in docs/fhir.md).

Code systems are the international ones (LOINC for tests, SNOMED CT for sample types and results, HL7's own
terminologies for statuses and interpretations). Identifier systems that no standard defines are Muestra's: they
are namespace names, stable and documented, not web pages that resolve.
"""

from __future__ import annotations

# --- code systems -----------------------------------------------------------------------------------------------
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DIAGNOSTIC_SERVICE_SECTION = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"

# --- identifier systems -----------------------------------------------------------------------------------------
_BASE = "https://fhir.muestra.org/sid"

#: A sample's public 10-digit number (the national platform's `id_muestra`): Specimen, ServiceRequest,
#: Observation and DiagnosticReport all carry it, and their logical ids are this number.
SAMPLE_NUMBER = f"{_BASE}/sample-number"
#: Other spellings read as the sample number on input (never written).
SAMPLE_NUMBER_ALIASES = frozenset({SAMPLE_NUMBER, "urn:muestra:sample-number"})
#: The barcode pre-printed on a tube at a mass-screening site (`Sample.tube_code`).
TUBE_BARCODE = f"{_BASE}/tube-barcode"
#: A laboratory's own code for a sample (`codigo_muestra_cliente`), unique within that lab. The lab's national
#: platform id follows the last slash: `.../lab-sample-code/1000000001`.
LAB_SAMPLE_CODE = f"{_BASE}/lab-sample-code"
#: Laboratories and establishments by their national codes.
LABORATORY = f"{_BASE}/laboratory"
ESTABLISHMENT = f"{_BASE}/establishment"

#: Patients' identity documents, by the catalogue's document type code. Chile's RUN uses the civil registry's
#: system, as Chile's national FHIR core guide does.
CL_RUN = "http://regcivil.cl/Validacion/RUN"
VN_CCCD = f"{_BASE}/vn-cccd"
VN_CMND = f"{_BASE}/vn-cmnd"
#: Passports: the issuing country's ISO 3166 numeric code follows the last slash: `.../passport/604`.
PASSPORT = f"{_BASE}/passport"
#: Any other document type of the catalogue: `.../document/<type code>`.
DOCUMENT = f"{_BASE}/document"

DOCUMENT_SYSTEMS = {"run": CL_RUN, "cccd": VN_CCCD, "cmnd": VN_CMND}
#: HL7 v2 table 0203 identifier type of each document type.
DOCUMENT_TYPE_CODES = {"run": "NI", "cccd": "NI", "cmnd": "NI", "passport": "PPN"}


def lab_sample_code_system(platform_id: int) -> str:
    return f"{LAB_SAMPLE_CODE}/{platform_id}"


def document_system(type_code: str, issuer: str = "") -> str:
    if type_code in DOCUMENT_SYSTEMS:
        return DOCUMENT_SYSTEMS[type_code]
    if type_code == "passport":
        return f"{PASSPORT}/{issuer}" if issuer else PASSPORT
    return f"{DOCUMENT}/{type_code}"


def document_from_system(system: str) -> tuple[str, str] | None:
    """(document type code, issuer) that an identifier system names, or None when it names no document."""
    for code, uri in DOCUMENT_SYSTEMS.items():
        if system == uri:
            return code, ""
    if system == PASSPORT:
        return "passport", ""
    if system.startswith(PASSPORT + "/"):
        return "passport", system.rsplit("/", 1)[1]
    if system.startswith(DOCUMENT + "/"):
        return system.rsplit("/", 1)[1], ""
    return None
