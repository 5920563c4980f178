"""Territory list and export: who may open them, filters, what an export holds, the row cap, the audit trail,
and a bounded number of queries whatever the row count."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from openpyxl import load_workbook

from conftest import login_with_second_factor
from muestra.audit.models import AuditEntry
from muestra.demo.builders import patient_input, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import Channel, Sample, SampleState
from muestra.web.territory import export

LIST = reverse("territory:list")
CSV = reverse("territory:export", args=["csv"])
XLSX = reverse("territory:export", args=["xlsx"])


@pytest.fixture
def samples(world):
    """Samples of establishment A (region 13) and B (region 5) in a few states."""
    a_result = sample_in_state(
        SampleState.RESULT,
        taker=world.actors["taker_a"],
        lab=world.actors["lab_x"],
        result="positive",
        data=sample_input(patient=patient_input(given_names="Alicia", surname="Araya")),
    )
    a_registered = sample_in_state(
        SampleState.REGISTERED,
        taker=world.actors["taker_a"],
        lab=world.actors["lab_x"],
        data=sample_input(
            collected_at=timezone.now() - timedelta(days=3),
            patient=patient_input(given_names="Andrés", surname="=HYPERLINK(1)"),
        ),
    )
    b_result = sample_in_state(
        SampleState.RESULT,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(
            establishment="105100",
            laboratory=1000000002,
            patient=patient_input(given_names="Beatriz", surname="Bravo", residence="05101"),
        ),
    )
    return {"a_result": a_result, "a_registered": a_registered, "b_result": b_result}


def viewer(client, world):
    login_with_second_factor(client, world.users["viewer_rm"])
    client.cookies["django_language"] = "en"  # column names compared in English below
    return client


def numbers_in(page: str, samples: dict[str, Sample]) -> set[str]:
    return {name for name, s in samples.items() if f">{s.number}</a>" in page}


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


# --- who may open it ---------------------------------------------------------------------------------------------


def test_regional_viewer_sees_only_their_region_in_list_and_exports(client, world, samples):
    viewer(client, world)
    page = client.get(LIST).content.decode()
    assert numbers_in(page, samples) == {"a_result", "a_registered"}
    assert "Beatriz" not in page
    assert 'data-nav="territory"' in page

    rows = csv_rows(client.get(CSV))
    assert {r[0] for r in rows[1:]} == {str(samples["a_result"].number), str(samples["a_registered"].number)}

    book = load_workbook(io.BytesIO(b"".join(client.get(XLSX).streaming_content)), read_only=True)
    sheet_rows = list(book.active.iter_rows(values_only=True))
    assert {str(r[0]) for r in sheet_rows[1:]} == {str(samples["a_result"].number), str(samples["a_registered"].number)}


def test_viewer_cannot_reach_another_region_by_filtering_for_it(client, world, samples):
    viewer(client, world)
    response = client.get(LIST, {"establishment": "105100"})
    assert "Beatriz" not in response.content.decode()
    assert 'id="id_establishment_error"' in response.content.decode()  # not among the choices: refused
    export_response = client.get(CSV, {"establishment": "105100"})
    assert export_response.status_code == 302  # back to the list, which explains; nothing exported
    assert not AuditEntry.objects.filter(action="samples.export").exists()


def test_national_admin_sees_every_region(client, world, samples):
    login_with_second_factor(client, world.users["admin"])
    page = client.get(LIST).content.decode()
    assert numbers_in(page, samples) == {"a_result", "a_registered", "b_result"}


@pytest.mark.parametrize("persona", ["taker_a", "taker_b", "manager_a", "lab_x", "lab_y", "citizen"])
def test_other_roles_get_404_for_list_and_exports(client, world, samples, persona):
    user = world.users[persona]
    if persona.startswith("lab"):
        login_with_second_factor(client, user)
    else:
        client.force_login(user)
    assert client.get(LIST).status_code == 404
    assert client.get(CSV).status_code == 404
    assert client.get(XLSX).status_code == 404
    assert 'data-nav="territory"' not in client.get("/").content.decode()
    assert not AuditEntry.objects.filter(action__in=["samples.export", "sample.read"]).exists()


def test_signed_out_and_half_signed_in_are_sent_to_sign_in(client, world, samples):
    assert client.get(LIST)["Location"].startswith(reverse("accounts:login"))
    client.force_login(world.users["viewer_rm"])  # password only, no second factor yet
    response = client.get(CSV)
    assert response.status_code == 302
    assert "/accounts/two-factor/" in response["Location"]


def test_unknown_export_format_is_404(client, world, samples):
    viewer(client, world)
    assert client.get(reverse("territory:export", args=["pdf"])).status_code == 404


# --- filters -----------------------------------------------------------------------------------------------------


def test_filters_select_by_state_result_disease_laboratory_and_dates(client, world, samples):
    login_with_second_factor(client, world.users["admin"])

    def shown(**params: str) -> set[str]:
        return numbers_in(client.get(LIST, params).content.decode(), samples)

    assert shown(state="registered") == {"a_registered"}
    assert shown(result="positive") == {"a_result"}
    assert shown(result="negative") == {"b_result"}
    assert shown(establishment="113100") == {"a_result", "a_registered"}
    assert shown(laboratory="1000000002") == {"b_result"}
    assert shown(disease="covid19") == {"a_result", "a_registered", "b_result"}
    assert shown(disease="mpox") == set()
    today = timezone.localdate()
    assert shown(collected_from=str(today - timedelta(days=1))) == {"a_result", "b_result"}
    three_days_ago = str(today - timedelta(days=3))
    assert shown(collected_from=three_days_ago, collected_to=three_days_ago) == {"a_registered"}


def test_bad_filters_are_explained_next_to_the_field_and_nothing_is_listed(client, world, samples):
    viewer(client, world)
    today = timezone.localdate()
    response = client.get(LIST, {"collected_from": str(today), "collected_to": str(today - timedelta(days=2))})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_collected_to_error"' in page and 'role="alert"' in page
    assert 'aria-describedby="id_collected_to_error"' in page
    assert numbers_in(page, samples) == set()
    assert str(today) in page  # what the user typed is kept

    page = client.get(LIST, {"collected_from": "31/02/2026", "state": "nonsense"}).content.decode()
    assert 'id="id_collected_from_error"' in page and 'id="id_state_error"' in page


def test_many_establishments_are_filtered_by_typed_code_within_scope(client, world, samples, monkeypatch):
    monkeypatch.setattr("muestra.web.territory.forms.ESTABLISHMENT_SELECT_MAX", 1)
    login_with_second_factor(client, world.users["admin"])
    page = client.get(LIST, {"establishment": "105100"}).content.decode()
    assert '<select name="establishment"' not in page and 'name="establishment"' in page
    assert numbers_in(page, samples) == {"b_result"}
    viewer(client, world)
    page = client.get(LIST, {"establishment": "105100"}).content.decode()
    assert 'id="id_establishment_error"' in page and numbers_in(page, samples) == set()


def test_export_holds_exactly_what_the_filtered_list_shows(client, world, samples):
    login_with_second_factor(client, world.users["admin"])
    client.cookies["django_language"] = "en"
    params = {"result": "positive"}
    page = client.get(LIST, params).content.decode()
    rows = csv_rows(client.get(CSV, params))
    with translation.override("en"):
        assert rows[0] == export.headers()
    assert [r[0] for r in rows[1:]] == [str(samples["a_result"].number)]
    assert numbers_in(page, samples) == {"a_result"}
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Given names"] == "Alicia"
    assert row["Phone"] == "+56912345678"
    assert row["Establishment code"] == "113100"


def test_export_neutralises_spreadsheet_formulas(client, world, samples):
    viewer(client, world)
    rows = csv_rows(client.get(CSV, {"state": "registered"}))
    surname = rows[1][rows[0].index("First surname")]
    assert surname == "'=HYPERLINK(1)"
    book = load_workbook(io.BytesIO(b"".join(client.get(XLSX, {"state": "registered"}).streaming_content)))
    cell = book.active.cell(row=2, column=rows[0].index("First surname") + 1)
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(1)"


def test_export_headers_follow_the_interface_language(client, world, samples):
    viewer(client, world)
    client.cookies["django_language"] = "en"
    rows = csv_rows(client.get(CSV))
    assert rows[0][0] == "Sample number"


# --- row cap and audit trail ---------------------------------------------------------------------------------------


def test_export_over_the_row_cap_is_refused_with_a_clear_message(client, world, samples, settings):
    settings.MUESTRA_EXPORT_MAX_ROWS = 1
    viewer(client, world)
    response = client.get(CSV, {"state": ""}, follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(LIST)
    assert 'class="message error"' in page
    assert not AuditEntry.objects.filter(action="samples.export").exists()
    # A narrower selection is within the cap.
    assert client.get(CSV, {"state": "registered"}).status_code == 200


def test_export_is_recorded_in_the_audit_trail_with_filters_and_rows(client, world, samples):
    viewer(client, world)
    client.get(CSV, {"establishment": "113100"}).getvalue()
    entry = AuditEntry.objects.get(action="samples.export")
    assert entry.actor == f"user:{world.users['viewer_rm'].pk}"
    assert entry.data["rows"] == 2
    assert entry.data["format"] == "csv"
    assert entry.data["filters"] == {"establishment": "113100"}
    assert entry.data["channel"] == Channel.WEB
    reads = AuditEntry.objects.filter(action="sample.read", data__export=entry.object_id)
    assert {r.object_id for r in reads} == {str(samples["a_result"].number), str(samples["a_registered"].number)}
    # No personal data in the trail.
    assert "Alicia" not in str(list(AuditEntry.objects.values_list("data", flat=True)))


def test_list_pages_record_which_samples_were_shown(client, world, samples):
    viewer(client, world)
    client.get(LIST)
    shown = AuditEntry.objects.filter(action="sample.read", data__view="territory.list")
    assert {e.object_id for e in shown} == {str(samples["a_result"].number), str(samples["a_registered"].number)}


# --- pages, links and queries --------------------------------------------------------------------------------------


def _register_many(world, count: int) -> None:
    for _ in range(count):
        services.sample_register(actor=world.actors["taker_a"], data=sample_input(), channel=Channel.WEB)


def _queries(client, url: str, params: dict[str, str] | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_and_export_queries_do_not_grow_with_rows(client, world, django_assert_max_num_queries):
    viewer(client, world)
    _register_many(world, 3)
    _queries(client, LIST)  # fills the reference look-up cache, as any earlier request of the process would
    few_list, few_csv = _queries(client, LIST), _queries(client, CSV)
    _register_many(world, 60)  # more than a page of the list
    many_list, many_csv = _queries(client, LIST), _queries(client, CSV)
    assert many_list == few_list
    assert many_csv == few_csv
    with django_assert_max_num_queries(20):
        client.get(LIST)


def test_pagination_keeps_the_filters(client, world):
    viewer(client, world)
    _register_many(world, 55)
    page = client.get(LIST, {"state": "registered"}).content.decode()
    assert "state=registered&amp;page=2" in page
    second = client.get(LIST, {"state": "registered", "page": "2"}).content.decode()
    assert second.count("<tr>") == 1 + 5  # header and the 5 samples past the first 50


def test_htmx_request_gets_only_the_results(client, world, samples):
    viewer(client, world)
    response = client.get(LIST, {"state": "registered"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<section id="territory-results"')
    assert str(samples["a_registered"].number) in page
