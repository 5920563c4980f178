"""The wire format of /api/v1: typed request bodies and response shapes (ninja Schemas, i.e. pydantic models).

Input schemas check types and shapes only (a date is a date, a list is a list, required keys are present);
every business rule (known codes, a lab assigned to the establishment, collection time not stale...) stays in the
services, which report all of an item's problems at once. Inputs refuse unknown keys so a misspelt field is an
error rather than silently ignored. Codes may be sent as strings or numbers (DEIS codes look like numbers);
date-times without an offset are read in the deployment's time zone.

The schemas are plain pydantic models rather than ninja's `Schema`: they are built from explicit values (see
serializers.py), never from ORM rows, so ninja's attribute-resolving wrapper would only cost time (it doubled the
time of a 2,000-item batch).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from django.utils import timezone
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# --- shared input types ---------------------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    # A LIS often sends local wall-clock time; the national platform did too.
    return timezone.make_aware(value) if timezone.is_naive(value) else value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
PublicNumber = Annotated[int, Field(ge=1_000_000_001, le=9_999_999_999, description="10-digit public number")]


class InputSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True)


# --- samples: input -------------------------------------------------------------------------------------------


class PatientIn(InputSchema):
    """The tested person, found by identity document (never duplicated) or created."""

    document_type: str = Field(description="Identity document type code: run, cccd, passport, no-document...")
    document_number: str = Field("", max_length=60)
    document_issuer: str = Field("", description="Issuing country (ISO numeric) for passports")
    # Lengths of the stored columns: longer text would fail in the database rather than as a named field.
    given_names: str = Field("", max_length=120)
    paternal_surname: str = Field("", max_length=120)
    maternal_surname: str = Field("", max_length=120)
    birth_date: date | None = Field(None, description="YYYY-MM-DD (required)")
    sex: str = Field("", description="M, F, I (intersex) or U (unknown)")
    residence: str = Field("", description="Comuna (CUT 13101 or DEIS form) or Vietnamese territory key")
    address: str = Field("", max_length=250)
    phone: str = Field("", max_length=30)
    email: str = Field("", max_length=254)
    insurance: str = Field("", description="Health insurance code (fonasa, isapre...)")
    nationality: str = Field("", description="Country, ISO numeric")
    guardian: PatientIn | None = Field(None, description="For a newborn registered through a guardian")


class SampleIn(InputSchema):
    """One sample (or, with `pool_members`, a pooled tube). Mirrors the registration service's input."""

    establishment: str = Field(description="Establishment code (DEIS)")
    laboratory: int | None = Field(None, description="Destination lab's platform id")
    test: str = Field(description="Test code, e.g. covid19-pcr")
    sample_type: str = Field(description="Sample type code, national name or SNOMED CT code")
    collected_at: AwareDatetime = Field(description="ISO 8601; local time of the deployment if no offset")
    patient: PatientIn | None = Field(None, description="The tested person (absent for a pooled tube)")
    pool_members: list[PatientIn] | None = Field(None, description="The people swabbed into a pooled tube")
    strategy: str = ""
    substrategy: str = ""
    active_case_finding: bool = False
    client_code: str = Field("", description="The LIS's own code; a retry with the same code is harmless")
    tube_code: str = Field("", max_length=60, description="Tube barcode printed at the site")
    responsible_run: str = Field("", max_length=20)
    ordering_physician_run: str = Field("", max_length=20)
    without_medical_order: bool = True
    surveillance_number: str = Field("", max_length=40)
    answers: dict[str, Any] = Field(default_factory=dict)
    result: str = Field("", description="Point-of-care tests only: the result entered at registration")
    result_at: AwareDatetime | None = None


class SampleBatchIn(InputSchema):
    # Items are parsed one by one (see samples.sample_create_batch), so one malformed row does not refuse the rest.
    items: list[Any] = Field(description="Samples, each shaped like the body of POST /samples")

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The OpenAPI document shows the items as what they must be: SampleIn.
        json_schema = handler.resolve_ref_schema(handler(core_schema))
        json_schema["properties"]["items"]["items"] = handler(SampleIn.__pydantic_core_schema__)
        return json_schema


class SampleUpdateIn(InputSchema):
    """Only the fields sent are changed (a JSON merge patch); `null` clears an optional code."""

    sample_type: str | None = None
    strategy: str | None = None
    substrategy: str | None = None
    collected_at: AwareDatetime | None = None
    laboratory: int | None = None
    surveillance_number: str | None = Field(None, max_length=40)
    active_case_finding: bool | None = None
    ordering_physician_run: str | None = Field(None, max_length=20)
    without_medical_order: bool | None = None


class ReasonIn(InputSchema):
    reason: str = Field(description="Why (free text, kept in the chain of custody)")


class OptionalReasonIn(InputSchema):
    reason: str = ""


class ReceiveIn(InputSchema):
    received_at: AwareDatetime | None = Field(None, description="When the lab received it (default: now)")


class ReceiveManyIn(InputSchema):
    samples: list[PublicNumber] = Field(min_length=1)
    received_at: AwareDatetime | None = None


class RejectIn(InputSchema):
    reason: str = Field(description="Rejection reason code or its national name")
    note: str = ""


class ForwardIn(InputSchema):
    new_laboratory: int = Field(description="Platform id of the lab that will now analyse the sample")
    reason: str = ""


class ResultJsonIn(InputSchema):
    """The JSON form of a result delivery, for a LIS that cannot send multipart (the PDF in base64)."""

    value: str = Field(description="Result value code (positive, negative...), national name or SNOMED code")
    reported_at: AwareDatetime | None = None
    report_base64: str = Field("", description="The signed PDF report, base64-encoded")
    report_content_type: str = "application/pdf"


class ResultCorrectionJsonIn(ResultJsonIn):
    reason: str = Field(description="Why the result is corrected")


class ResultFormIn(InputSchema):
    """The multipart form fields of a result delivery (the PDF goes in the file part `report`)."""

    value: str
    reported_at: AwareDatetime | None = None


class ResultCorrectionFormIn(ResultFormIn):
    reason: str


# --- samples: output ------------------------------------------------------------------------------------------


class CodeName(BaseModel):
    code: str
    name: str


class EstablishmentRef(BaseModel):
    code: str
    name: str


class LaboratoryRef(BaseModel):
    platform_id: int
    name: str


class TestRef(CodeName):
    loinc_code: str


class SampleTypeRef(CodeName):
    snomed_code: str


class ResultOut(BaseModel):
    value: str = Field(description="Result value code")
    name: str
    interpretation: str = Field(description="positive, negative, inconclusive, unsatisfactory or retest")
    reported_at: datetime | None
    version: int | None = Field(description="1 for the first delivery, higher after corrections")
    corrected: bool
    report_url: str | None = Field(description="Where the signed PDF report is downloaded, if there is one")


class PatientOut(BaseModel):
    document_type: str
    document_number: str
    document_issuer: str
    given_names: str
    paternal_surname: str
    maternal_surname: str
    birth_date: date
    sex: str
    residence: str | None
    address: str
    phone: str
    email: str
    insurance: str | None
    nationality: str | None


class SampleOut(BaseModel):
    number: int = Field(description="Public 10-digit sample number")
    state: str
    state_label: str
    establishment: EstablishmentRef
    laboratory: LaboratoryRef | None
    disease: CodeName
    test: TestRef
    sample_type: SampleTypeRef
    strategy: CodeName | None
    substrategy: CodeName | None
    active_case_finding: bool
    collected_at: datetime
    received_at: datetime | None
    result: ResultOut | None
    retest_needed: bool
    rejection_reason: CodeName | None
    client_code: str
    tube_code: str | None
    is_pool: bool
    pool: int | None = Field(description="Number of the pooled tube this sample belongs to")
    members: list[int] = Field(description="Numbers of the members of a pooled tube")
    shipment: int | None
    patient: PatientOut | None
    channel: str
    created_at: datetime
    updated_at: datetime


class SamplePage(BaseModel):
    items: list[SampleOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page")


class FieldErrorOut(BaseModel):
    field: str
    code: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    errors: list[FieldErrorOut]


class ErrorOut(BaseModel):
    error: ErrorDetail


class BatchCounts(BaseModel):
    created: int
    existing: int
    error: int


class SampleRefOut(BaseModel):
    """What a batch item's outcome says of its sample: enough to find it again (GET /samples/{number})."""

    number: int
    state: str
    client_code: str


class BatchItemOut(BaseModel):
    index: int
    status: Literal["created", "existing", "error"]
    # A reference, not the full representation: a LIS sending 1,000 samples needs their numbers, and repeating
    # every patient's data back would double the work and the personal data on the wire.
    sample: SampleRefOut | None
    errors: list[FieldErrorOut]


class BatchOut(BaseModel):
    counts: BatchCounts
    items: list[BatchItemOut]


class ItemOutcomeOut(BaseModel):
    """The fate of one sample number of a many-sample step (receive many, add to a shipment)."""

    index: int
    number: int
    status: str = Field(description="What happened to this item, or `error`")
    sample: SampleOut | None
    errors: list[FieldErrorOut]


class ItemsOut(BaseModel):
    counts: dict[str, int]
    items: list[ItemOutcomeOut]


class EventOut(BaseModel):
    at: datetime
    occurred_at: datetime | None
    kind: str
    kind_label: str
    from_state: str
    to_state: str
    actor: str
    laboratory: int | None = Field(description="Platform id of the lab where it happened")
    establishment: str | None = Field(description="Code of the sample's establishment")
    reason: str
    channel: str
    data: dict[str, Any]


class ResultVersionOut(BaseModel):
    version: int
    value: str
    name: str
    interpretation: str
    reported_at: datetime
    entered_at: datetime
    laboratory: int | None
    reason: str
    corrected: bool
    authorised: bool = Field(description="A late correction made with an administrator's authorisation")
    from_pool: int | None = Field(description="Number of the pooled tube whose result this is")
    report_sha256: str
    report_url: str | None


class CorrectionAuthorisationOut(BaseModel):
    sample: int
    reason: str
    authorised_at: datetime
    used_at: datetime | None


# --- shipments ------------------------------------------------------------------------------------------------


class ShipmentIn(InputSchema):
    establishment: str = Field(description="Sending establishment's code")
    laboratory: int = Field(description="Destination lab's platform id")
    samples: list[PublicNumber] = Field(default_factory=list)
    note: str = ""


class ShipmentSamplesIn(InputSchema):
    samples: list[PublicNumber] = Field(min_length=1)


class ShipmentReceiveIn(InputSchema):
    received: list[PublicNumber] = Field(default_factory=list, description="Sample numbers scanned in good order")
    damaged: list[PublicNumber] = Field(default_factory=list, description="Sample numbers that arrived damaged")
    damage_reason: str = ""
    received_at: AwareDatetime | None = None


class ShipmentItemOut(BaseModel):
    sample: int
    outcome: str
    note: str


class ShipmentOut(BaseModel):
    number: int
    state: str
    state_label: str
    establishment: EstablishmentRef
    laboratory: LaboratoryRef
    created_at: datetime
    dispatched_at: datetime | None
    received_at: datetime | None
    note: str
    items: list[ShipmentItemOut]


class ShipmentCreatedOut(ShipmentOut):
    added: list[ItemOutcomeOut] = Field(description="The outcome of each sample asked to go in the shipment")


class ShipmentPage(BaseModel):
    items: list[ShipmentOut]
    next_cursor: str | None


class ShipmentReceiptOut(BaseModel):
    shipment: ShipmentOut
    received: list[int]
    already_received: list[int]
    damaged: list[int]
    missing: list[int]
    unexpected: list[int]


# --- catalogue and places -------------------------------------------------------------------------------------


class CatalogEntryOut(BaseModel):
    code: str
    name: str
    national_name: str = Field(description="The name on the national platform's wire")


class DiseaseOut(CatalogEntryOut):
    snomed_code: str


class SampleTypeOut(CatalogEntryOut):
    snomed_code: str


class ResultValueOut(CatalogEntryOut):
    snomed_code: str
    interpretation: str
    report_required: bool


class TestOut(CatalogEntryOut):
    disease: str
    loinc_code: str
    method: str
    result_at_registration: bool
    pooling_allowed: bool
    sample_types: list[str]
    result_values: list[str]


class StrategyOut(CatalogEntryOut):
    parent: str | None
    active_case_finding: bool


class DocumentTypeOut(CatalogEntryOut):
    validator: str
    profile: str
    requires_issuing_country: bool


class InsuranceOut(CatalogEntryOut):
    profile: str


class LaboratoryOut(BaseModel):
    platform_id: int
    name: str
    territory: str
    is_public: bool


class EstablishmentOut(BaseModel):
    code: str
    name: str
    kind: str
    territory: str
    is_public: bool
    laboratories: list[int] = Field(description="Platform ids of the labs this establishment may send to")
