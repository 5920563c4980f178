"""/catalog: the reference data a client needs to build valid requests (read-only, any authenticated caller).

Names come in the caller's language (Accept-Language); codes are what requests send.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from muestra.api import schemas as s
from muestra.api import serializers
from muestra.api.common import ERRORS
from muestra.samples import selectors

router = Router(tags=["catalogue"])


@router.get("/diseases", response={200: list[s.DiseaseOut], **ERRORS}, summary="Diseases")
def disease_list(request: HttpRequest) -> list[s.DiseaseOut]:
    return [serializers.disease_out(d) for d in selectors.diseases()]


@router.get(
    "/tests", response={200: list[s.TestOut], **ERRORS}, summary="Tests (LOINC) with their sample types and results"
)
def test_list(request: HttpRequest) -> list[s.TestOut]:
    return [serializers.test_out(t) for t in selectors.tests()]


@router.get("/sample-types", response={200: list[s.SampleTypeOut], **ERRORS}, summary="Sample types (SNOMED CT)")
def sample_type_list(request: HttpRequest) -> list[s.SampleTypeOut]:
    return [serializers.sample_type_out(st) for st in selectors.sample_types()]


@router.get("/result-values", response={200: list[s.ResultValueOut], **ERRORS}, summary="Result values")
def result_value_list(request: HttpRequest) -> list[s.ResultValueOut]:
    return [serializers.result_value_out(rv) for rv in selectors.result_values()]


@router.get("/rejection-reasons", response={200: list[s.CatalogEntryOut], **ERRORS}, summary="Rejection reasons")
def rejection_reason_list(request: HttpRequest) -> list[s.CatalogEntryOut]:
    return [serializers.rejection_reason_out(r) for r in selectors.rejection_reasons()]


@router.get("/strategies", response={200: list[s.StrategyOut], **ERRORS}, summary="Testing strategies")
def strategy_list(request: HttpRequest) -> list[s.StrategyOut]:
    return [serializers.strategy_out(st) for st in selectors.strategies()]


@router.get(
    "/identity-document-types",
    response={200: list[s.DocumentTypeOut], **ERRORS},
    summary="Identity document types",
)
def document_type_list(request: HttpRequest) -> list[s.DocumentTypeOut]:
    return [serializers.document_type_out(d) for d in selectors.identity_document_types()]


@router.get("/health-insurances", response={200: list[s.InsuranceOut], **ERRORS}, summary="Health insurances")
def insurance_list(request: HttpRequest) -> list[s.InsuranceOut]:
    return [serializers.insurance_out(i) for i in selectors.health_insurances()]
