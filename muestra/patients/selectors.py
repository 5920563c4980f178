"""Reads of patients for the outer layers, always through `scoped()`: a patient is visible to an actor only through
a sample the actor may see, so a person tested elsewhere stays invisible (a look-up answers "unknown")."""

from __future__ import annotations

from muestra.accounts.scoping import Actor, scoped
from muestra.catalog.models import IdentityDocumentType
from muestra.patients.documents import DocumentInvalid, normalise_document
from muestra.patients.models import Patient
from muestra.samples import lookups


def patient_by_document(
    actor: Actor, *, document_type: str, document_number: str, document_issuer: str = ""
) -> Patient | None:
    """The visible patient holding this identity document, or None (unknown, invalid number or out of scope).

    The number is normalised by its document's rule first ("12.345.678-5" finds "12345678-5"); documents that
    carry no number (no document, newborn) never identify anybody. `document_issuer` is the issuing country's
    code (ISO numeric), required by the documents that have one.
    """
    doc_type: IdentityDocumentType | None = lookups.document_type(document_type)
    if doc_type is None:
        return None
    try:
        number = normalise_document(doc_type.validator, document_number)
    except DocumentInvalid:
        return None
    if not number:
        return None
    issuer = ""
    if doc_type.requires_issuing_country:
        country = lookups.country(document_issuer)
        if country is None:
            return None
        issuer = country.iso_numeric or str(country.pntm_id)
    queryset = Patient.objects.with_document().filter(
        document_type=doc_type, document_number=number, document_issuer=issuer
    )
    return scoped(actor, queryset).select_related("guardian").first()
