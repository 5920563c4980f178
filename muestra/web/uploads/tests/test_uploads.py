"""The uploads screens: send a file, follow it, read its rejected rows, download reports and templates."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from conftest import login_with_second_factor
from muestra.integrations.bulk import services
from muestra.integrations.bulk.templates import RESULTS_NATIONAL
from muestra.integrations.bulk.tests.helpers import national_results_file, national_sample_row, rows_csv
from muestra.integrations.models import Intake, IntakeChannel
from muestra.integrations.services import intake_open

# These tests read English wording (fixture `english`: the requests and the code run in the test speak English).
pytestmark = pytest.mark.usefixtures("immediate_tasks", "english")


def _lab_client(client, world, persona="lab_x"):
    login_with_second_factor(client, world.users[persona])
    return client


def test_lab_uploads_national_results_and_reads_rejected_rows(client, world):
    content, samples = national_results_file(world)
    _lab_client(client, world)
    page = client.get(reverse("uploads:list"))
    assert page.status_code == 200 and b'data-nav="uploads"' in page.content
    response = client.post(
        reverse("uploads:list"),
        {"kind": RESULTS_NATIONAL, "file": SimpleUploadedFile("resultados.csv", content)},
    )
    intake = Intake.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("uploads:detail", args=[intake.pk])
    detail = client.get(response["Location"]).content.decode()
    assert 'data-state="done"' in detail and "hx-trigger" not in detail
    assert "signed report" in detail and str(samples["negative"].number) in detail
    assert 'data-count="rejected">9<' in detail and 'data-count="accepted">1<' in detail

    again = client.post(
        reverse("uploads:list"), {"kind": RESULTS_NATIONAL, "file": SimpleUploadedFile("copy.csv", content)}
    )
    assert again["Location"] == reverse("uploads:detail", args=[intake.pk])
    assert "already uploaded" in client.get(again["Location"]).content.decode()
    assert Intake.objects.count() == 1

    csv_report = client.get(reverse("uploads:report", args=[intake.pk, "csv"]))
    lines = list(csv.reader(io.StringIO(b"".join(csv_report.streaming_content).decode().lstrip("\ufeff"))))
    assert len(lines) == 11 and lines[10][1].startswith("'=")
    xlsx = client.get(reverse("uploads:report", args=[intake.pk, "xlsx"]))
    assert len(list(load_workbook(io.BytesIO(b"".join(xlsx.streaming_content))).active.values)) == 11

    template = client.get(reverse("uploads:template", args=["results-national", "xlsx"]))
    assert next(iter(load_workbook(io.BytesIO(template.content)).active.values)) == (
        "ID Muestra",
        "ID Paciente",
        "Resultado",
    )
    assert client.get(reverse("uploads:template", args=["nope", "csv"])).status_code == 404


def test_a_taker_sends_samples_and_may_not_choose_results(client, world):
    client.force_login(world.users["taker_a"])
    page = client.get(reverse("uploads:list")).content.decode()
    assert "samples-national" in page and 'value="results"' not in page
    bad = client.post(
        reverse("uploads:list"),
        {"kind": "results", "file": SimpleUploadedFile("r.csv", b"ID Muestra;Resultado\n1;x\n")},
    )
    assert bad.status_code == 422 and "id_kind_error" in bad.content.decode()
    missing = client.post(reverse("uploads:list"), {"kind": "samples"})
    assert missing.status_code == 422 and "id_file_error" in missing.content.decode()
    assert not Intake.objects.exists()
    ok = client.post(
        reverse("uploads:list"),
        {"kind": "samples", "file": SimpleUploadedFile("s.csv", rows_csv([national_sample_row()]))},
    )
    intake = Intake.objects.get()
    assert ok.status_code == 302 and intake.accepted == 1 and intake.establishment_id == world.est_a.pk


@pytest.mark.parametrize("persona", ["lab_y", "taker_b", "citizen", "viewer_rm"])
def test_other_scopes_get_404(client, world, persona):
    content, _samples = national_results_file(world)
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="a.csv", content=content
    )
    user = world.users[persona]
    if persona in ("lab_y", "viewer_rm"):
        login_with_second_factor(client, user)
    else:
        client.force_login(user)
    for url in (
        reverse("uploads:detail", args=[intake.pk]),
        reverse("uploads:report", args=[intake.pk, "csv"]),
        reverse("uploads:report", args=[intake.pk, "xlsx"]),
    ):
        assert client.get(url).status_code == 404, (persona, url)
    listing = client.get(reverse("uploads:list"))
    if persona in ("citizen", "viewer_rm"):
        assert listing.status_code == 404
    else:
        assert listing.status_code == 200 and b"a.csv" not in listing.content


def test_the_list_runs_a_bounded_number_of_queries(client, world, django_assert_max_num_queries):
    actor = world.actors["lab_x"]
    for n in range(30):
        intake_open(
            actor=actor,
            channel=IntakeChannel.FILE,
            kind=RESULTS_NATIONAL,
            content=f"ID Muestra;Resultado\n{n};x\n".encode(),
            filename=f"f{n}.csv",
            laboratory_id=world.lab_x.pk,
        )
    _lab_client(client, world)
    client.get(reverse("uploads:list"))  # warm the per-process caches
    with django_assert_max_num_queries(14):
        response = client.get(reverse("uploads:list"))
    assert response.status_code == 200 and b"f29.csv" in response.content


def test_the_status_partial_polls_while_running(client, world):
    intake, _ = intake_open(
        actor=world.actors["lab_x"],
        channel=IntakeChannel.FILE,
        kind=RESULTS_NATIONAL,
        content=b"ID Muestra;Resultado\n1;x\n",
        filename="wait.csv",
        laboratory_id=world.lab_x.pk,
    )
    _lab_client(client, world)
    partial = client.get(reverse("uploads:detail", args=[intake.pk]), headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith("<section") and 'hx-trigger="every 1s"' in partial
    assert "<progress" in partial


def test_the_counts_of_a_large_file_are_grouped_in_the_readers_language(client, world):
    from django.utils import translation

    intake, _ = intake_open(
        actor=world.actors["lab_x"],
        channel=IntakeChannel.FILE,
        kind=RESULTS_NATIONAL,
        content=b"ID Muestra;Resultado\n1;x\n",
        filename="big.csv",
        laboratory_id=world.lab_x.pk,
    )
    Intake.objects.filter(pk=intake.pk).update(state=Intake.State.PROCESSING, total=100_000, accepted=12_500)
    _lab_client(client, world)
    english = client.get(reverse("uploads:detail", args=[intake.pk]), headers={"HX-Request": "true"}).content.decode()
    assert "12,500 of 100,000 rows processed" in english and 'data-count="accepted">12,500<' in english
    with translation.override("es"):
        client.cookies["django_language"] = "es"
        spanish = client.get(
            reverse("uploads:detail", args=[intake.pk]), headers={"HX-Request": "true", "Accept-Language": "es"}
        ).content.decode()
    assert "12\xa0500 de 100\xa0000 filas procesadas" in spanish  # Django's Spanish format: a no-break space
