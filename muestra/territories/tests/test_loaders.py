from __future__ import annotations

import pytest

from muestra.core.reference import LoadReport, load_all
from muestra.territories.loaders import display_case, load_chile_territories
from muestra.territories.models import Country, CountryProfile, Territory, TerritoryLevel

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("profile_code", "level", "expected"),
    [
        ("CL", TerritoryLevel.CL_REGION, 16),
        ("CL", TerritoryLevel.CL_PROVINCE, 56),
        ("CL", TerritoryLevel.CL_COMUNA, 346),
        ("CL", TerritoryLevel.CL_HEALTH_SERVICE, 29),
        ("VN", TerritoryLevel.VN_PROVINCE, 34),
        ("VN", TerritoryLevel.VN_LEGACY_PROVINCE, 63),
        ("VN", TerritoryLevel.VN_DISTRICT, 696),
    ],
)
def test_counts_per_level(reference: LoadReport, profile_code: str, level: TerritoryLevel, expected: int) -> None:
    assert Territory.objects.filter(profile__code=profile_code, level=level).count() == expected
    assert reference[f"territories.{level.value}"].total == expected


def test_santiago_uses_cut_code_and_deis_alt_code(reference: LoadReport) -> None:
    santiago = Territory.objects.get(level=TerritoryLevel.CL_COMUNA, code="13101")
    assert santiago.name == "Santiago"
    assert santiago.alt_code == "13101"
    assert santiago.path == "CL.r13.p131.c13101"


def test_leading_zero_only_in_cut_code(reference: LoadReport) -> None:
    iquique = Territory.objects.get(level=TerritoryLevel.CL_COMUNA, alt_code="1101")
    assert (iquique.code, iquique.name) == ("01101", "Iquique")
    tarapaca = Territory.objects.get(level=TerritoryLevel.CL_REGION, code="01")
    assert tarapaca.alt_code == "1"
    assert iquique.parent is not None and iquique.parent.parent == tarapaca


def test_comuna_health_service(reference: LoadReport) -> None:
    iquique = Territory.objects.get(level=TerritoryLevel.CL_COMUNA, code="01101")
    assert iquique.health_service is not None
    assert (iquique.health_service.code, iquique.health_service.name) == ("2", "Servicio de Salud Tarapacá")
    chiloe_service = Territory.objects.get(level=TerritoryLevel.CL_HEALTH_SERVICE, code="33")
    assert chiloe_service.parent is not None and chiloe_service.parent.code == "10"  # Los Lagos
    assert chiloe_service.served_territories.filter(name="Castro").exists()


def test_every_comuna_has_a_health_service_in_its_own_region(reference: LoadReport) -> None:
    comunas = Territory.objects.filter(level=TerritoryLevel.CL_COMUNA).select_related(
        "parent__parent", "health_service__parent"
    )
    for comuna in comunas:
        assert comuna.health_service is not None, comuna.code
        assert comuna.parent is not None and comuna.health_service.parent == comuna.parent.parent, comuna.code


def test_ha_giang_merged_into_tuyen_quang(reference: LoadReport) -> None:
    ha_giang = Territory.objects.get(level=TerritoryLevel.VN_LEGACY_PROVINCE, code="02")
    assert ha_giang.name == "Tỉnh Hà Giang"
    assert ha_giang.parent is not None
    assert (ha_giang.parent.level, ha_giang.parent.code, ha_giang.parent.name) == (
        TerritoryLevel.VN_PROVINCE,
        "08",
        "Tuyên Quang",
    )
    assert ha_giang.path == "VN.p08.o02"


def test_every_new_vietnamese_province_has_former_provinces(reference: LoadReport) -> None:
    for province in Territory.objects.filter(level=TerritoryLevel.VN_PROVINCE):
        assert province.children.filter(level=TerritoryLevel.VN_LEGACY_PROVINCE).exists(), province.code


def test_only_current_vietnamese_provinces_are_active(reference: LoadReport) -> None:
    vietnam = Territory.objects.filter(profile__code="VN")
    assert not vietnam.filter(level=TerritoryLevel.VN_DISTRICT, active=True).exists()
    assert not vietnam.filter(level=TerritoryLevel.VN_LEGACY_PROVINCE, active=True).exists()
    assert vietnam.filter(level=TerritoryLevel.VN_PROVINCE, active=True).count() == 34


def test_paths_are_unique_built_by_the_model_and_nest(reference: LoadReport) -> None:
    territories = list(Territory.objects.select_related("parent", "profile"))
    paths = [territory.path for territory in territories]
    assert len(paths) == len(set(paths))
    for territory in territories:
        assert territory.path == territory.build_path()
        if territory.parent is None:
            assert territory.path.startswith(f"{territory.profile.code}.")
        else:
            # The trailing dot matters: "CL.r13.s1" is a textual prefix of "CL.r13.s11".
            assert territory.path.startswith(f"{territory.parent.path}.")


def test_prefix_match_selects_a_whole_region(reference: LoadReport) -> None:
    inside_metropolitana = Territory.objects.filter(path__startswith="CL.r13.")
    comunas = inside_metropolitana.filter(level=TerritoryLevel.CL_COMUNA)
    assert comunas.count() == 52
    assert inside_metropolitana.filter(level=TerritoryLevel.CL_HEALTH_SERVICE).count() == 6


def test_second_load_creates_and_changes_nothing(reference: LoadReport) -> None:
    rows_before = Territory.objects.count(), Country.objects.count(), CountryProfile.objects.count()
    second = load_all()
    assert {kind: (counts.created, counts.updated) for kind, counts in second.items() if counts.changed} == {}
    assert second.keys() == reference.keys()
    assert (Territory.objects.count(), Country.objects.count(), CountryProfile.objects.count()) == rows_before


def test_reload_repairs_an_edited_territory(reference: LoadReport) -> None:
    Territory.objects.filter(level=TerritoryLevel.CL_COMUNA, code="13101").update(name="Santiago Centro", path="x")
    report = load_chile_territories()
    assert report["territories.cl_comuna"].updated == 1
    assert report["territories.cl_comuna"].created == 0
    santiago = Territory.objects.get(level=TerritoryLevel.CL_COMUNA, code="13101")
    assert (santiago.name, santiago.path) == ("Santiago", "CL.r13.p131.c13101")


def test_countries_from_the_platform_list_keep_their_platform_id(reference: LoadReport) -> None:
    chile = Country.objects.get(pntm_id=499)
    assert (chile.name, chile.iso_numeric, chile.deis_name) == ("Chile", "152", "CHILE")
    assert Country.objects.get(pntm_id=699).iso_numeric == "704"  # Vietnam
    assert Country.objects.filter(pntm_id__isnull=False).count() == 246


def test_country_codes_missing_in_the_platform_list_are_corrected(reference: LoadReport) -> None:
    zambia = Country.objects.get(pntm_id=703)
    assert (zambia.iso_numeric, zambia.deis_name) == ("894", "ZAMBIA")
    assert Country.objects.get(pntm_id=541).iso_numeric == "254"  # Guayana Francesa, not Guyana's 328
    # The corrections keep the DEIS-only pass from adding a second Zambia.
    assert Country.objects.filter(iso_numeric="894").count() == 1


def test_deis_only_countries_are_added_without_platform_id(reference: LoadReport) -> None:
    dr_congo = Country.objects.get(iso_numeric="180")
    assert dr_congo.pntm_id is None
    assert dr_congo.name == "Republica Democratica del Congo"
    assert dr_congo.deis_name == "REPUBLICA DEMOCRATICA DEL CONGO"
    assert Country.objects.get(iso_numeric="728").name == "Sudán del Sur"


def test_country_profiles(reference: LoadReport) -> None:
    chile = CountryProfile.objects.get(code="CL")
    assert (chile.default_language, chile.time_zone, chile.phone_country_code, chile.phone_national_digits) == (
        "es",
        "America/Santiago",
        "+56",
        9,
    )
    assert chile.country is not None and chile.country.pntm_id == 499
    vietnam = CountryProfile.objects.get(code="VN")
    assert (vietnam.default_language, vietnam.time_zone, vietnam.phone_country_code) == (
        "vi",
        "Asia/Ho_Chi_Minh",
        "+84",
    )
    assert vietnam.phone_national_digits == 9
    assert vietnam.country is not None and vietnam.country.iso_numeric == "704"


@pytest.mark.parametrize(
    ("deis_name", "expected"),
    [
        ("BONAIRE, SAN EUSTAQUIO Y SABA", "Bonaire, San Eustaquio y Saba"),
        ("SAN MARTÍN (PARTE HOLANDESA)", "San Martín (Parte Holandesa)"),
        ("DESCONOCIDO", "Desconocido"),
    ],
)
def test_display_case(deis_name: str, expected: str) -> None:
    assert display_case(deis_name) == expected
