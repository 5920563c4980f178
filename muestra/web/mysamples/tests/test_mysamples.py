# mypy: disable-error-code="union-attr,arg-type,attr-defined"
"""My samples: the list by state with search and label printing, a sample's record and timeline for every role
that sees it, edits and cancellation before receipt; scoping (404 outside), audited reads, bounded queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone, translation

from conftest import in_english, login_with_second_factor
from muestra.audit.models import AuditEntry
from muestra.demo.builders import patient_input, sample_in_state, sample_input
from muestra.samples import lookups, services
from muestra.samples.models import Sample, SampleEvent, SampleState
from muestra.samples.tests.support import assert_unchanged, db_state
from muestra.samples.tests.test_documents import pages as pdf_pages

S = SampleState
LIST = reverse("mysamples:list")


def client_for(world: Any, name: str) -> Client:
    client = in_english(Client())
    if name in {"taker_a", "taker_b", "manager_a", "citizen"}:
        client.force_login(world.users[name])
    else:
        login_with_second_factor(client, world.users[name])
    return client


def in_state(world: Any, state: str, **data: Any) -> Sample:
    return sample_in_state(
        state, taker=world.actors["taker_a"], lab=world.actors["lab_x"], data=sample_input(**data) if data else None
    )


def of_b(world: Any) -> Sample:
    return sample_in_state(
        S.REGISTERED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(establishment="105100", laboratory=1000000002),
    )


def page_sizes(pdf: bytes) -> list[tuple[int, int]]:
    return [(round(w), round(h)) for w, h in pdf_pages(pdf)]


# --- the list ----------------------------------------------------------------------------------------------------


def test_tabs_count_each_state_and_list_only_the_tab(world):
    registered = in_state(world, S.REGISTERED)
    dispatched = in_state(world, S.DISPATCHED)
    with_result = in_state(world, S.RESULT)
    rejected = in_state(world, S.REJECTED)
    returned = in_state(world, S.RETURNED)
    cancelled = in_state(world, S.CANCELLED)
    other = of_b(world)
    client = client_for(world, "taker_a")

    body = client.get(LIST).content.decode()
    assert f"pick-{registered.number}" in body and f"pick-{dispatched.number}" not in body
    assert str(other.number) not in body
    for tab, count in {"to_send": 1, "sent": 1, "received": 0, "result": 1, "rejected": 2, "cancelled": 1}.items():
        assert f'data-tab="{tab}"' in body
        tab_html = body.split(f'data-tab="{tab}"')[1].split("</a>")[0]
        assert f'<span class="count">{count}</span>' in tab_html, tab
    rejected_tab = client.get(LIST, {"tab": "rejected"}).content.decode()
    assert f"pick-{rejected.number}" in rejected_tab and f"pick-{returned.number}" in rejected_tab
    assert f"pick-{with_result.number}" in client.get(LIST, {"tab": "result"}).content.decode()
    assert f"pick-{cancelled.number}" in client.get(LIST, {"tab": "cancelled"}).content.decode()
    assert f"pick-{registered.number}" in client.get(LIST, {"tab": "nonsense"}).content.decode()


def test_the_manager_sees_the_establishment_and_the_nav_entry(world):
    sample = in_state(world, S.REGISTERED)
    client = client_for(world, "manager_a")
    body = client.get(LIST).content.decode()
    assert f"pick-{sample.number}" in body
    assert 'data-nav="mysamples"' in body and 'data-nav="shipping"' in body


def test_search_by_document_name_number_and_tube_code(world):
    anna = in_state(world, S.REGISTERED, patient=patient_input(run="12345678-5", given_names="Anna", surname="Zeta"))
    tube = in_state(world, S.REGISTERED, tube_code="TUBE-0042")
    plain = in_state(world, S.REGISTERED)
    client = client_for(world, "taker_a")

    def found(q: str) -> set[int]:
        body = client.get(LIST, {"q": q}).content.decode()
        return {s.number for s in (anna, tube, plain) if f"pick-{s.number}" in body}

    assert found("12.345.678-5") == {anna.number}
    assert found("12345678-5") == {anna.number}
    assert found("anna zeta") == {anna.number}
    assert found("Zeta") == {anna.number}
    assert found(str(plain.number)) == {plain.number}
    assert found("TUBE-0042") == {tube.number}
    assert found("nobody") == set()
    # A search never reaches another establishment's samples.
    other = of_b(world)
    assert f"pick-{other.number}" not in client.get(LIST, {"q": str(other.number)}).content.decode()


def test_htmx_search_answers_the_results_only(world):
    in_state(world, S.REGISTERED)
    response = client_for(world, "taker_a").get(LIST, {"q": "x"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'class="tabs"' in body


def test_list_reads_are_audited_with_the_web_channel(world):
    sample = in_state(world, S.REGISTERED)
    client_for(world, "taker_a").get(LIST)
    entry = AuditEntry.objects.filter(action="sample.list", object_id=str(sample.number)).latest("id")
    assert entry.data["channel"] == "web" and entry.actor == f"user:{world.users['taker_a'].pk}"


@pytest.mark.parametrize("name", ["lab_x", "viewer_rm", "admin", "citizen"])
def test_the_list_is_for_the_establishment_side_only(world, name):
    assert client_for(world, name).get(LIST).status_code == 404
    assert 'data-nav="mysamples"' not in client_for(world, name).get("/").content.decode()


def test_the_list_pages_and_its_queries_do_not_grow_with_rows(world, django_assert_max_num_queries):
    client = client_for(world, "taker_a")
    taker = world.actors["taker_a"]
    services.sample_register_batch(actor=taker, items=[sample_input() for _ in range(3)])
    client.get(LIST)  # warm the look-up caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST).status_code == 200
    services.sample_register_batch(actor=taker, items=[sample_input() for _ in range(60)])
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get(LIST).content.decode()
    assert body.count('name="n"') == 25 and "Page 1 of 3" in body
    second = client.get(LIST, {"page": 3}).content.decode()
    assert second.count('name="n"') == 63 - 50


# --- labels -------------------------------------------------------------------------------------------------------


def test_one_label_is_a_pdf_sized_for_a_label_printer(world):
    sample = in_state(world, S.REGISTERED)
    response = client_for(world, "taker_a").get(reverse("mysamples:label", args=[sample.number]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert page_sizes(response.content) == [(50, 25)]
    assert AuditEntry.objects.filter(action="sample.label.print", object_id=str(sample.number)).exists()


def test_a_sheet_of_selected_labels_is_one_a4_page(world):
    a, b = in_state(world, S.REGISTERED), in_state(world, S.REGISTERED)
    client = client_for(world, "taker_a")
    response = client.get(reverse("mysamples:labels"), {"n": [a.number, b.number]})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert page_sizes(response.content) == [(210, 297)]
    roll = client.get(reverse("mysamples:labels"), {"n": [a.number, b.number], "layout": "roll"})
    assert page_sizes(roll.content) == [(50, 25), (50, 25)]


def test_no_selection_goes_back_with_a_message(world):
    response = client_for(world, "taker_a").get(reverse("mysamples:labels"), follow=True)
    assert response.redirect_chain[-1][0].startswith(LIST)
    assert "Select at least one sample" in response.content.decode()


def test_labels_of_another_establishment_are_404_even_mixed_with_mine(world):
    mine, other = in_state(world, S.REGISTERED), of_b(world)
    client = client_for(world, "taker_a")
    assert client.get(reverse("mysamples:label", args=[other.number])).status_code == 404
    assert client.get(reverse("mysamples:labels"), {"n": [mine.number, other.number]}).status_code == 404
    assert client.get(reverse("mysamples:labels"), {"n": [mine.number, 1999999999]}).status_code == 404
    assert client_for(world, "viewer_rm").get(reverse("mysamples:label", args=[mine.number])).status_code == 404


# --- the detail page ----------------------------------------------------------------------------------------------


def test_detail_shows_patient_sample_timeline_and_result_with_its_report(world):
    sample = in_state(world, S.RESULT)
    client = client_for(world, "taker_a")
    body = client.get(reverse("mysamples:detail", args=[sample.number])).content.decode()
    for kind in ("registered", "dispatched", "received", "result_delivered"):
        assert f'data-event="{kind}"' in body
    with translation.override("en"):
        negative = lookups.result_value("negative").display_name
    assert "Paciente Demo Prueba" in body and f"<strong>{negative}</strong>" in body
    assert "Ximena Laboratorio" in body  # who received it and delivered the result
    assert reverse("mysamples:report", args=[sample.number]) in body
    actions = set(AuditEntry.objects.filter(object_id=str(sample.number)).values_list("action", flat=True))
    assert {"sample.read", "sample.results.read"} <= actions
    # No edit or cancel after the result; the label can still be printed.
    assert 'data-action="edit"' not in body and 'data-action="cancel"' not in body and 'data-action="label"' in body

    report = client.get(reverse("mysamples:report", args=[sample.number]))
    assert report.status_code == 200 and b"".join(report.streaming_content).startswith(b"%PDF")
    entry = AuditEntry.objects.filter(action="report.download", object_id=str(sample.number)).latest("id")
    assert entry.data == {"channel": "web", "version": 1}


def test_detail_is_open_to_every_role_that_sees_the_sample_with_their_actions(world):
    sample = in_state(world, S.REGISTERED)
    url = reverse("mysamples:detail", args=[sample.number])
    taker = client_for(world, "taker_a").get(url).content.decode()
    assert 'data-action="edit"' in taker and 'data-action="cancel"' in taker and 'data-action="label"' in taker
    lab = client_for(world, "lab_x").get(url)
    assert lab.status_code == 200 and 'data-action="edit"' not in lab.content.decode()
    assert 'data-action="label"' in lab.content.decode()  # the destination lab may relabel a tube
    viewer = client_for(world, "viewer_rm").get(url)
    assert viewer.status_code == 200 and "data-action=" not in viewer.content.decode()
    admin = client_for(world, "admin").get(url)
    assert admin.status_code == 200 and "Paciente Demo Prueba" in admin.content.decode()


@pytest.mark.parametrize("name", ["taker_b", "lab_y", "citizen"])
def test_another_scope_gets_404_on_every_page_of_a_sample(world, name):
    sample = in_state(world, S.RESULT)
    client = client_for(world, name)
    for view in ("detail", "label", "report", "edit", "cancel"):
        assert client.get(reverse(f"mysamples:{view}", args=[sample.number])).status_code == 404, view
    assert client.post(reverse("mysamples:cancel", args=[sample.number]), {"reason": "x"}).status_code == 404


def test_guessed_numbers_are_404_like_missing_ones(world):
    client = client_for(world, "taker_a")
    for number in (1999999999, 1000000000, 42):
        assert client.get(reverse("mysamples:detail", args=[number])).status_code == 404


def test_the_timeline_shows_times_in_local_time_and_the_channel(world, settings):
    sample = in_state(world, S.REGISTERED)
    event = SampleEvent.objects.get(sample=sample, kind="registered")
    body = client_for(world, "taker_a").get(reverse("mysamples:detail", args=[sample.number])).content.decode()
    local = timezone.localtime(event.at)
    # Formatted as Django formats an English short date (zero-padded: a test that expected "12/7/2026" failed on
    # the first nine days of every month), and the machine-readable time carries the local offset.
    with translation.override("en"):
        assert formats.date_format(local, "SHORT_DATE_FORMAT") in body
    assert f'datetime="{local.isoformat()}"' in body
    assert "REST API" in body  # registered through the services' default channel in the fixture


# --- edit ------------------------------------------------------------------------------------------------------------


def edit_data(sample: Sample, **changes: Any) -> dict[str, Any]:
    from muestra.web.mysamples.forms import SampleEditForm

    initial = SampleEditForm.initial_for(sample)
    data = {k: v for k, v in initial.items() if not isinstance(v, bool) or v}
    data["collected_at"] = initial["collected_at"].strftime("%Y-%m-%dT%H:%M")
    data = {k: ("on" if v is True else v) for k, v in data.items()}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_edit_changes_only_what_was_changed(world):
    sample = in_state(world, S.REGISTERED)
    client = client_for(world, "taker_a")
    url = reverse("mysamples:edit", args=[sample.number])
    assert client.get(url).status_code == 200
    response = client.post(url, edit_data(sample, surveillance_number="ENO-123"))
    assert response.status_code == 302
    sample.refresh_from_db()
    assert sample.surveillance_number == "ENO-123"
    edited = SampleEvent.objects.get(sample=sample, kind="edited")
    assert edited.data == {"fields": ["surveillance_number"]} and edited.channel == "web"
    # Sending the form unchanged records nothing.
    events = SampleEvent.objects.count()
    assert client.post(url, edit_data(sample)).status_code == 302
    assert SampleEvent.objects.count() == events


def test_edit_refusals_are_shown_next_to_the_field_and_nothing_changes(world):
    sample = in_state(world, S.REGISTERED)
    client = client_for(world, "taker_a")
    url = reverse("mysamples:edit", args=[sample.number])
    before = db_state(sample.pk)
    future = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    body = client.post(url, edit_data(sample, collected_at=future)).content.decode()
    assert 'id="id_collected_at_error"' in body and "cannot be in the future" in body
    assert f'value="{future}"' in body  # what the person typed is kept
    body = client.post(url, edit_data(sample, without_medical_order=None, ordering_physician_run="")).content.decode()
    assert 'id="id_ordering_physician_run_error"' in body
    body = client.post(url, edit_data(sample, ordering_physician_run="12345678-0")).content.decode()
    assert 'id="id_ordering_physician_run_error"' in body
    body = client.post(url, edit_data(sample, sample_type="no-such-type")).content.decode()
    assert 'id="id_sample_type_error"' in body
    assert_unchanged(before, sample.pk)


def test_edit_in_spanish_shows_translated_errors(world):
    sample = in_state(world, S.REGISTERED)
    client = client_for(world, "taker_a")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "es"
    body = client.post(reverse("mysamples:edit", args=[sample.number]), {}).content.decode()
    assert "Este campo es obligatorio" in body


def test_edit_and_cancel_are_404_once_not_allowed(world):
    received = in_state(world, S.RECEIVED)
    dispatched = in_state(world, S.DISPATCHED)
    client = client_for(world, "taker_a")
    assert client.get(reverse("mysamples:edit", args=[received.number])).status_code == 404
    assert client.get(reverse("mysamples:cancel", args=[dispatched.number])).status_code == 404
    assert client.get(reverse("mysamples:edit", args=[dispatched.number])).status_code == 200
    assert client_for(world, "viewer_rm").get(reverse("mysamples:edit", args=[dispatched.number])).status_code == 404


# --- cancel ---------------------------------------------------------------------------------------------------------


def test_cancel_with_a_reason(world):
    sample = in_state(world, S.REGISTERED)
    client = client_for(world, "taker_a")
    url = reverse("mysamples:cancel", args=[sample.number])
    assert client.get(url).status_code == 200
    response = client.post(url, {"reason": "Registered twice"}, follow=True)
    sample.refresh_from_db()
    assert sample.state == S.CANCELLED
    event = SampleEvent.objects.get(sample=sample, kind="cancelled")
    assert event.reason == "Registered twice" and event.channel == "web"
    assert 'data-event="cancelled"' in response.content.decode()


def test_cancel_without_a_reason_is_refused_next_to_the_field(world):
    sample = in_state(world, S.REGISTERED)
    before = db_state(sample.pk)
    body = client_for(world, "taker_a").post(reverse("mysamples:cancel", args=[sample.number]), {"reason": " "})
    assert 'id="id_reason_error"' in body.content.decode()
    assert_unchanged(before, sample.pk)
