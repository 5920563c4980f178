from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from muestra.core.reference import LoadReport
from muestra.territories.models import Territory, TerritoryLevel

pytestmark = pytest.mark.django_db


def test_load_reference_command_prints_counts_and_is_idempotent() -> None:
    # The test database may already hold the reference data (the root conftest loads it once per session), so
    # run twice and check that the second run reports everything unchanged.
    first, second = StringIO(), StringIO()
    call_command("load_reference", stdout=first)
    call_command("load_reference", stdout=second)
    assert "territories.cl_comuna" in first.getvalue()
    assert "catalog.tests" in first.getvalue()
    assert "346 rows (created 0, updated 0, unchanged 346)" in second.getvalue()
    assert "Reference data loaded: 0 record(s) created or updated." in second.getvalue()
    assert Territory.objects.filter(level=TerritoryLevel.CL_COMUNA).count() == 346


def test_territory_admin_lists_searches_and_filters(reference: LoadReport, admin_client: Any) -> None:
    response = admin_client.get("/admin/territories/territory/", {"q": "Santiago", "level": "cl_comuna"})
    assert response.status_code == 200
    assert "CL.r13.p131.c13101" in response.content.decode()


def test_territory_admin_path_is_read_only(reference: LoadReport, admin_client: Any) -> None:
    santiago = Territory.objects.get(level=TerritoryLevel.CL_COMUNA, code="13101")
    response = admin_client.get(f"/admin/territories/territory/{santiago.pk}/change/")
    assert response.status_code == 200
    assert 'name="path"' not in response.content.decode()


def test_moving_a_territory_in_the_admin_rebuilds_the_subtree(reference: LoadReport, admin_client: Any) -> None:
    province = Territory.objects.get(level=TerritoryLevel.CL_PROVINCE, code="131")
    valparaiso = Territory.objects.get(level=TerritoryLevel.CL_REGION, code="05")
    response = admin_client.post(
        f"/admin/territories/territory/{province.pk}/change/",
        {
            "profile": province.profile_id,
            "level": province.level,
            "code": province.code,
            "alt_code": province.alt_code,
            "name": province.name,
            "parent": valparaiso.pk,
            "health_service": "",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    santiago = Territory.objects.get(level=TerritoryLevel.CL_COMUNA, code="13101")
    assert santiago.path == "CL.r05.p131.c13101"


@pytest.mark.parametrize(
    "url",
    [
        "/admin/territories/country/?q=chile",
        "/admin/territories/countryprofile/",
    ],
)
def test_country_admin_pages(reference: LoadReport, admin_client: Any, url: str) -> None:
    assert admin_client.get(url).status_code == 200
