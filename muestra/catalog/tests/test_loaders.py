from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from muestra.catalog import codes
from muestra.catalog.loaders import CATALOG_FILE, PLAIN_SECTIONS, load_catalog, read_catalog
from muestra.catalog.models import (
    Disease,
    HealthInsurance,
    IdentityDocumentType,
    RejectionReason,
    ResultValue,
    SampleType,
    Strategy,
)
from muestra.catalog.models import Test as CatalogTest  # aliased so pytest does not try to collect it
from muestra.core.reference import LoadReport

pytestmark = pytest.mark.django_db


def _codes(queryset: Any) -> set[str]:
    return set(queryset.values_list("code", flat=True))


def test_diseases(reference: LoadReport) -> None:
    assert dict(Disease.objects.values_list("code", "snomed_code")) == {"covid19": "840539006", "mpox": "359814004"}


def test_tests_and_their_codes(reference: LoadReport) -> None:
    rows = {
        test.code: (test.disease.code, test.loinc_code, test.method, test.pntm_name)
        for test in CatalogTest.objects.select_related("disease")
    }
    assert rows == {
        "covid19-pcr": ("covid19", "94500-6", "naa", "RT-PCR"),
        "covid19-antigen": ("covid19", "94558-4", "antigen", "Test Pack"),
        "mpox-pcr": ("mpox", "100383-9", "naa", "RT-PCR"),
    }
    pcr = CatalogTest.objects.get(code="covid19-pcr")
    antigen = CatalogTest.objects.get(code="covid19-antigen")
    assert pcr.pooling_allowed and not pcr.result_at_registration
    assert antigen.result_at_registration and not antigen.pooling_allowed


def test_result_values_accepted_per_test(reference: LoadReport) -> None:
    def pntm_values(test_code: str) -> set[str]:
        test = CatalogTest.objects.get(code=test_code)
        return set(test.result_values.exclude(pntm_name="").values_list("pntm_name", flat=True))

    assert pntm_values("covid19-pcr") == {"Positivo", "Negativo", "Indeterminado", "Muestra no apta"}
    assert pntm_values("mpox-pcr") == {"Positivo", "Negativo", "Indeterminado", "Muestra no apta"}
    assert pntm_values("covid19-antigen") == {"Positivo", "Negativo", "No concluyente"}
    # "Re-test needed" is set by the system on members of a positive pool, never entered as a test's result.
    assert not CatalogTest.objects.filter(result_values__code="retest-needed").exists()


def test_result_values(reference: LoadReport) -> None:
    rows = {
        value.code: (value.snomed_code, value.interpretation, value.report_required, value.pntm_name)
        for value in ResultValue.objects.all()
    }
    assert rows == {
        "positive": ("10828004", "positive", True, "Positivo"),
        "negative": ("260385009", "negative", True, "Negativo"),
        "indeterminate": ("82334004", "inconclusive", True, "Indeterminado"),
        "unsatisfactory": ("125154007", "unsatisfactory", False, "Muestra no apta"),
        "inconclusive": ("419984006", "inconclusive", True, "No concluyente"),
        "retest-needed": ("462371000124108", "retest", False, ""),
    }


def test_sample_types_cover_the_national_names(reference: LoadReport) -> None:
    pcr_names = set(
        CatalogTest.objects.get(code="covid19-pcr")
        .sample_types.exclude(pntm_name="")
        .values_list("pntm_name", flat=True)
    )
    assert pcr_names == {
        "Lavado Broncoalveolar",
        "Esputo",
        "Aspirado Traqueal",
        "Aspirado Nasofaríngeo",
        "Tórulas Nasofaríngeas",
        "Muestra sanguínea",
        "Tejido pulmonar",
        "Saliva",
        "Otro",
    }
    mpox = CatalogTest.objects.get(code="mpox-pcr")
    assert set(mpox.sample_types.values_list("pntm_name", "snomed_code")) == {
        ("Tórula de Lesión", "472862007"),
        ("Contenido Vesicular", "472875007"),
    }
    assert SampleType.objects.get(code="nasopharyngeal-swab").snomed_code == "258500001"
    assert SampleType.objects.get(code="saliva").snomed_code == "119342007"
    vietnam_swabs = SampleType.objects.filter(code__in=["throat-swab", "anterior-nares-swab", "mid-turbinate-swab"])
    assert set(vietnam_swabs.values_list("snomed_code", "pntm_name")) == {
        ("258529004", ""),
        ("697989009", ""),
        ("871810001", ""),
    }


def test_rejection_reasons_use_the_official_wording(reference: LoadReport) -> None:
    assert set(RejectionReason.objects.values_list("pntm_name", flat=True)) == {
        "Muestra derramada",
        "Muestra mal tomada",
        "Muestra sin rotular",
        "Orden incompleta",
        "Discordancia entre el orden de análisis y la muestra",
    }


def test_strategies(reference: LoadReport) -> None:
    outbreaks = Strategy.objects.get(pntm_name="BAC Brotes")
    assert set(outbreaks.children.values_list("pntm_name", flat=True)) == {
        "BAC Escolar",
        "BAC ELEAM",
        "BAC Centros Penitenciarios",
    }
    active_case_finding = set(Strategy.objects.filter(active_case_finding=True).values_list("code", flat=True))
    assert active_case_finding == {
        "bac-entry-point",
        "bac-outbreaks",
        "bac-school",
        "bac-eleam",
        "bac-prisons",
        "community-screening",
    }
    assert Strategy.objects.get(code=codes.DEFAULT_STRATEGY).pntm_name == "Sin Estrategia"
    assert Strategy.objects.get(code=codes.MASS_SCREENING_STRATEGY).name_vi == "Sàng lọc cộng đồng"
    for pntm_name in ("Sintomáticos", "Residencias Sanitarias", "Atención médica", "BAC Punto de Entrada"):
        assert Strategy.objects.filter(pntm_name=pntm_name, parent=None).exists(), pntm_name


def test_identity_documents(reference: LoadReport) -> None:
    rows = {
        document.code: (
            document.validator,
            document.profile_code,
            document.requires_issuing_country,
            document.pntm_name,
        )
        for document in IdentityDocumentType.objects.all()
    }
    assert rows == {
        "run": ("cl_run", "CL", False, "RUN"),
        "cccd": ("vn_cccd", "VN", False, ""),
        "cmnd": ("vn_cmnd", "VN", False, ""),
        "passport": ("passport", "", True, "PASAPORTE"),
        "no-document": ("none", "", False, "SIN DOCUMENTACION"),
        "newborn": ("newborn", "", False, "RECIEN NACIDO"),
        "origin-country-id": ("free_text", "", True, "DNI PAIS DE ORIGEN"),
        "clinical-record": ("free_text", "CL", False, "N° FICHA CLINICA"),
    }


def test_health_insurances(reference: LoadReport) -> None:
    assert set(HealthInsurance.objects.values_list("pntm_name", flat=True)) == {
        "FONASA",
        "ISAPRE",
        "CAPREDENA",
        "SISAN",
        "SISAE",
        "DIPRECA",
        "SIN PREVISIÓN",
    }
    assert set(HealthInsurance.objects.values_list("profile_code", flat=True)) == {"CL"}


def test_every_row_is_named_in_three_languages_with_a_slug_code() -> None:
    catalog = read_catalog()
    for section in (*(name for name, _model in PLAIN_SECTIONS), "tests", "strategies"):
        for row in catalog[section]:
            assert row["code"] and row["code"] == row["code"].lower(), row
            assert all(character.isalnum() or character == "-" for character in row["code"]), row
            assert row["name"] and row["name_en"] and row["name_vi"], row


def test_program_codes_exist_in_the_data_file() -> None:
    catalog = read_catalog()
    all_codes = {row["code"] for rows in catalog.values() if isinstance(rows, list) for row in rows}
    constants = {name: value for name, value in vars(codes).items() if name.isupper() and isinstance(value, str)}
    assert constants
    missing = {name: value for name, value in constants.items() if value not in all_codes}
    assert missing == {}


def test_second_load_changes_nothing(reference: LoadReport) -> None:
    report = load_catalog()
    assert {kind: counts for kind, counts in report.items() if counts.changed} == {}
    assert report["catalog.tests"].unchanged == 3


def test_reload_restores_links_and_fields(reference: LoadReport) -> None:
    antigen = CatalogTest.objects.get(code="covid19-antigen")
    antigen.result_values.remove(ResultValue.objects.get(code="inconclusive"))
    RejectionReason.objects.filter(code="spilled").update(pntm_name="derramada")
    report = load_catalog()
    assert (report["catalog.tests"].updated, report["catalog.tests"].unchanged) == (1, 2)
    assert report["catalog.rejection_reasons"].updated == 1
    assert _codes(antigen.result_values.all()) == {"positive", "negative", "inconclusive"}
    assert RejectionReason.objects.get(code="spilled").pntm_name == "Muestra derramada"


def test_fields_left_out_of_the_file_are_not_overwritten(reference: LoadReport) -> None:
    # `active` is not in the file, so an administrator's decision to retire a row survives a reload.
    SampleType.objects.filter(code="lung-tissue").update(active=False)
    load_catalog()
    assert SampleType.objects.get(code="lung-tissue").active is False


def test_unknown_reference_stops_the_load(reference: LoadReport, tmp_path: Path) -> None:
    catalog = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    catalog["tests"][0]["sample_types"].append("no-such-sample")
    broken = tmp_path / "catalog.json"
    broken.write_text(json.dumps(catalog), encoding="utf-8")
    with pytest.raises(ValueError, match="no-such-sample"):
        load_catalog(broken)


def test_duplicate_code_stops_the_load(reference: LoadReport, tmp_path: Path) -> None:
    catalog = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    catalog["diseases"].append(dict(catalog["diseases"][0]))
    broken = tmp_path / "catalog.json"
    broken.write_text(json.dumps(catalog), encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate"):
        load_catalog(broken)


def test_new_disease_needs_no_code(reference: LoadReport, tmp_path: Path) -> None:
    catalog = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    catalog["diseases"].append(
        # Codes here are placeholders: the test is about the mechanism, not about influenza's terminology.
        {"code": "influenza", "name": "Influenza", "name_en": "Influenza", "name_vi": "Cúm", "snomed_code": "0"}
    )
    catalog["tests"].append(
        {
            "code": "influenza-pcr",
            "name": "PCR influenza",
            "name_en": "Influenza PCR",
            "name_vi": "Xét nghiệm PCR cúm",
            "disease": "influenza",
            "loinc_code": "0-0",
            "method": "naa",
            "sample_types": ["nasopharyngeal-swab"],
            "result_values": ["positive", "negative"],
        }
    )
    extended = tmp_path / "catalog.json"
    extended.write_text(json.dumps(catalog), encoding="utf-8")
    report = load_catalog(extended)
    assert report["catalog.diseases"].created == 1
    assert report["catalog.tests"].created == 1
    flu = CatalogTest.objects.get(code="influenza-pcr")
    assert flu.disease.code == "influenza"
    assert _codes(flu.result_values.all()) == {"positive", "negative"}
