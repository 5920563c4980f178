from __future__ import annotations

from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import load_workbook

from muestra.api.tests.support import error_of
from muestra.integrations.bulk.tests.helpers import national_results_file
from muestra.integrations.models import Intake

pytestmark = pytest.mark.usefixtures("immediate_tasks")


def _upload(client, content, kind="results-national", name="resultados.csv"):
    return client.post_multipart("/uploads", {"file": SimpleUploadedFile(name, content), "kind": kind})


def test_upload_by_lab_key_is_accepted_then_readable_and_paginated(world, api):
    content, _samples = national_results_file(world)
    lis = api("key_lab_x")
    response = _upload(lis, content)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "done" and body["repeat"] is False
    assert (body["total"], body["accepted"], body["rejected"]) == (10, 1, 9)
    assert body["status_url"] == f"/api/v1/uploads/{body['id']}"

    status = lis.get(f"/uploads/{body['id']}").json()
    assert status["processed"] == 10 and status["state"] == "done"

    page = lis.get(f"/uploads/{body['id']}/outcomes", {"outcome": "rejected", "limit": 4}).json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    assert page["items"][0]["row"] == 2 and page["items"][0]["errors"][0]["field"] == "result"
    rest = lis.get(f"/uploads/{body['id']}/outcomes", {"outcome": "rejected", "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 5 and rest["next_cursor"] is None

    report = lis.client.get(f"/api/v1/uploads/{body['id']}/report.xlsx", headers=lis.headers)
    assert report.status_code == 200
    rows = list(load_workbook(BytesIO(b"".join(report.streaming_content)), read_only=True).active.values)
    assert len(rows) == 11

    again = _upload(lis, content, name="copia.csv").json()
    assert again["id"] == body["id"] and again["repeat"] is True
    assert Intake.objects.count() == 1


@pytest.mark.parametrize("persona", ["key_lab_y", "lab_y", "taker_b", "citizen", "key_est_a"])
def test_another_scope_gets_404_in_the_one_error_shape(world, api, persona):
    content, _samples = national_results_file(world)
    upload_id = _upload(api("key_lab_x"), content).json()["id"]
    client = api(persona)
    for path in (f"/uploads/{upload_id}", f"/uploads/{upload_id}/outcomes", f"/uploads/{upload_id}/report.xlsx"):
        response = client.get(path)
        assert response.status_code in (404, 403), (persona, path, response.status_code)
        if response.status_code == 404:
            assert error_of(response)["code"] == "not_found"


def test_bad_kind_and_wrong_role_are_refused_by_field(world, api):
    response = _upload(api("key_lab_x"), b"x", kind="nonsense")
    assert response.status_code == 422 and error_of(response)["errors"][0]["field"] == "kind"
    response = _upload(api("key_est_a"), b"ID Muestra;Resultado\n1;2\n", kind="results")
    assert response.status_code == 422 and error_of(response)["errors"][0]["field"] == "kind"
    response = _upload(api("citizen"), b"ID Muestra;Resultado\n1;2\n", kind="samples")
    assert response.status_code in (403, 422)
