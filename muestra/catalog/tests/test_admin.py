from __future__ import annotations

from typing import Any

import pytest

from muestra.catalog.models import ResultValue
from muestra.core.reference import LoadReport

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model_name",
    [
        "disease",
        "test",
        "sampletype",
        "resultvalue",
        "rejectionreason",
        "strategy",
        "identitydocumenttype",
        "healthinsurance",
    ],
)
def test_changelist_and_search(reference: LoadReport, admin_client: Any, model_name: str) -> None:
    response = admin_client.get(f"/admin/catalog/{model_name}/", {"q": "a"})
    assert response.status_code == 200


def test_code_is_read_only_once_created(reference: LoadReport, admin_client: Any) -> None:
    positive = ResultValue.objects.get(code="positive")
    change_page = admin_client.get(f"/admin/catalog/resultvalue/{positive.pk}/change/").content.decode()
    assert 'name="code"' not in change_page
    add_page = admin_client.get("/admin/catalog/resultvalue/add/").content.decode()
    assert 'name="code"' in add_page


def test_test_admin_change_page(reference: LoadReport, admin_client: Any) -> None:
    from muestra.catalog.models import Test as CatalogTest

    pcr = CatalogTest.objects.get(code="covid19-pcr")
    response = admin_client.get(f"/admin/catalog/test/{pcr.pk}/change/")
    assert response.status_code == 200
