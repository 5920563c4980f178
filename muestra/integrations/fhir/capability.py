"""The CapabilityStatement served at /fhir/metadata: what this server does, and nothing more."""

from __future__ import annotations

from typing import Any

from muestra.integrations.fhir.ingest import BUNDLE_TYPES

#: Bumped when the interface changes.
VERSION = "1.0.0"
DATE = "2026-11-22"

_TOKEN = "token"  # noqa: S105 - a FHIR search parameter type
_REFERENCE = "reference"
_DATE = "date"

_COMMON = [
    {"name": "_id", "type": _TOKEN, "documentation": "The logical id (a sample's 10-digit number)."},
    {"name": "_lastUpdated", "type": _DATE, "documentation": "ge/gt/le/lt/eq prefixes; date or date-time."},
]
_SAMPLE_PARAMS = {
    "Specimen": [
        {
            "name": "identifier",
            "type": _TOKEN,
            "documentation": "[system|]value: sample number, tube barcode or lab code.",
        },
        {"name": "patient", "type": _REFERENCE},
    ],
    "ServiceRequest": [
        {
            "name": "identifier",
            "type": _TOKEN,
            "documentation": "[system|]value: sample number, tube barcode or lab code.",
        },
        {"name": "specimen", "type": _REFERENCE},
        {"name": "patient", "type": _REFERENCE},
    ],
    "Observation": [
        {"name": "specimen", "type": _REFERENCE},
        {"name": "based-on", "type": _REFERENCE},
        {"name": "patient", "type": _REFERENCE},
    ],
    "DiagnosticReport": [
        {"name": "specimen", "type": _REFERENCE},
        {"name": "based-on", "type": _REFERENCE},
        {"name": "patient", "type": _REFERENCE},
    ],
    "Patient": [
        {"name": "identifier", "type": _TOKEN, "documentation": "system|value of an identity document."},
    ],
}


def capability_statement(base: str) -> dict[str, Any]:
    resources = []
    for resource_type, params in _SAMPLE_PARAMS.items():
        resources.append(
            {
                "type": resource_type,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "versioning": "no-version",
                "readHistory": False,
                "searchParam": [*params, *_COMMON],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": DATE,
        "publisher": "Muestra",
        "kind": "instance",
        "software": {"name": "Muestra", "version": VERSION},
        "implementation": {"description": "Muestra national sample registry: lab results in FHIR R4", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "POST a Bundle to the base to deliver results (DiagnosticReport, Observation, Specimen, "
                    f"ServiceRequest, Patient). Bundle types accepted: {', '.join(BUNDLE_TYPES)}. A transaction is "
                    "atomic; the other types are processed entry by entry and answered with a batch-response. "
                    "Searches page with _count (at most 500) and the next link."
                ),
                "security": {
                    "description": (
                        "An API key as 'Authorization: Bearer mst_...' or 'X-API-Key: mst_...', or a signed-in "
                        "session (with the X-CSRFToken header for POST). Each caller reads only its own scope."
                    )
                },
                "resource": resources,
                "interaction": [
                    {"code": "transaction", "documentation": "All or nothing."},
                    {"code": "batch", "documentation": "Entry by entry; also collection, document and message."},
                ],
            }
        ],
    }
