"""/catalog/... (reference data for every authenticated caller) and the scoped place lists."""

from __future__ import annotations

import pytest
from django.test import Client

from muestra.api.tests.support import API

pytestmark = pytest.mark.django_db

CATALOGUE = [
    "diseases",
    "tests",
    "sample-types",
    "result-values",
    "rejection-reasons",
    "strategies",
    "identity-document-types",
    "health-insurances",
]


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_lists(api, name):
    response = api("key_lab_x").get(f"/catalog/{name}")
    assert response.status_code == 200
    entries = response.json()
    assert entries
    assert all(e["code"] and e["name"] for e in entries)


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_needs_authentication(world, name):
    assert Client().get(f"{API}/catalog/{name}").status_code == 401


def test_tests_carry_loinc_sample_types_and_results(api):
    tests = {t["code"]: t for t in api("citizen").get("/catalog/tests").json()}
    pcr = tests["covid19-pcr"]
    assert pcr["loinc_code"] == "94500-6"
    assert pcr["disease"] == "covid19"
    assert "nasopharyngeal-swab" in pcr["sample_types"]
    assert {"positive", "negative"} <= set(pcr["result_values"])


def test_sample_types_carry_snomed_and_the_national_name(api):
    swab = {t["code"]: t for t in api("taker_a").get("/catalog/sample-types").json()}["nasopharyngeal-swab"]
    assert swab["snomed_code"] == "258500001"
    assert swab["national_name"]


def test_names_follow_accept_language(api):
    es = {d["code"]: d["name"] for d in api("taker_a").get("/catalog/result-values").json()}
    en = {
        d["code"]: d["name"]
        for d in api("taker_a").get("/catalog/result-values", headers={"Accept-Language": "en"}).json()
    }
    assert es["positive"] == "Positivo"
    assert en["positive"] == "Positive"


def test_places_are_scoped(api):
    def labs(persona):
        return {lab["platform_id"] for lab in api(persona).get("/laboratories").json()}

    def establishments(persona):
        return {e["code"]: e for e in api(persona).get("/establishments").json()}

    assert labs("taker_a") == {1000000001}
    assert labs("taker_b") == {1000000001, 1000000002}
    assert labs("lab_y") == {1000000002}
    assert labs("admin") >= {1000000001, 1000000002}
    assert set(establishments("taker_a")) == {"113100"}
    assert establishments("taker_a")["113100"]["laboratories"] == [1000000001]
    assert set(establishments("lab_y")) == {"105100"}
    assert set(establishments("lab_x")) == {"113100", "105100"}
    assert set(establishments("viewer_rm")) == {"113100"}
    assert labs("citizen") == set()
    assert establishments("citizen") == {}
