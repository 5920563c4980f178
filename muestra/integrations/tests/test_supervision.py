# mypy: disable-error-code="union-attr,arg-type,index"
"""The supervision of what arrives: the national API's calls in the intake log, fixing and processing a failed item
again (file rows, HL7 messages, FHIR Bundles), and the summary read by the page and the API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from muestra.audit.models import AuditEntry
from muestra.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from muestra.demo.builders import sample_in_state
from muestra.integrations import selectors, services
from muestra.integrations.bulk import services as bulk_services
from muestra.integrations.bulk.templates import RESULTS_NATIONAL
from muestra.integrations.bulk.tests.helpers import received_sample, rows_csv
from muestra.integrations.fhir import ingest
from muestra.integrations.fhir.tests.conftest import load_bundle
from muestra.integrations.hl7 import processing as hl7
from muestra.integrations.hl7.tests.helpers import for_sample, message
from muestra.integrations.models import Intake, IntakeItem
from muestra.integrations.pntm.tests.conftest import Pntm, create_row
from muestra.samples.models import Sample, SampleState

pytestmark = pytest.mark.usefixtures("immediate_tasks")
Out = IntakeItem.Outcome


@pytest.fixture
def immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def pntm(world, client):
    return Pntm(client=client, keys=world.keys)


def _pntm_intakes():
    return Intake.objects.filter(channel="pntm").order_by("pk")


# --- the national API writes the intake log ----------------------------------------------------------------------


def test_a_v3_batch_is_one_intake_with_one_item_per_row(pntm, world):
    good, bad = create_row(), create_row(paciente_dv="0", paciente_sexo="Z")
    response = pntm.json("crearMuestras_v3", [good, bad])
    assert response.status_code == 200
    answer = response.json()
    intake = _pntm_intakes().get()
    assert (intake.kind, intake.laboratory, intake.state) == ("crearMuestras_v3", world.labs[1000000001], "done")
    assert intake.api_key is not None and (intake.total, intake.accepted, intake.rejected) == (2, 1, 1)
    first, second = intake.items.order_by("position")
    assert (first.position, first.outcome, first.reference) == (1, Out.ACCEPTED, good["codigo_muestra_cliente"])
    assert first.sample.number == answer[0]["id_muestra"]
    assert (second.position, second.outcome, second.sample) == (2, Out.REJECTED, None)
    fields = {e["field"] for e in second.errors}
    assert {"paciente_run", "paciente_sexo"} <= fields or "paciente_sexo" in fields
    # the Spanish reason is the one the LIS read
    assert second.errors[0]["message"] in answer[1]["error"]
    assert second.data["codigo_muestra_cliente"] == bad["codigo_muestra_cliente"]


def test_a_refused_all_or_nothing_batch_rejects_every_row(pntm):
    rows = [create_row(), create_row(tecnica_muestra="Adivinación")]
    response = pntm.json("crearMuestras_v2", rows)
    assert response.status_code == 422
    intake = _pntm_intakes().get()
    outcomes = list(intake.items.order_by("position").values_list("outcome", flat=True))
    assert outcomes == [Out.REJECTED, Out.REJECTED]
    first, second = intake.items.order_by("position")
    assert "otras filas" in first.errors[0]["message"]
    assert second.errors[0]["field"] == "tecnica_muestra"


def test_lab_steps_record_each_item_and_a_repeat_changes_nothing(pntm, world):
    sample = pntm.created_sample()
    assert pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}]).status_code == 200
    assert pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}]).status_code == 200
    refused = pntm.json("recepcionarMuestra", [{"id_muestra": 1999999999}])
    assert refused.status_code == 404
    first, repeat, unknown = [i.items.get() for i in _pntm_intakes().filter(kind="recepcionarMuestra")]
    assert (first.outcome, first.sample_id) == (Out.ACCEPTED, sample.pk)
    assert repeat.outcome == Out.UNCHANGED
    assert unknown.outcome == Out.REJECTED and unknown.errors[0]["field"] == "id_muestra"
    assert unknown.errors[0]["message"] == refused.json()["error"]


def test_a_call_that_cannot_be_read_is_a_failed_unit_and_reads_are_not_logged(pntm):
    assert pntm.raw("crearMuestras_v3", "", "application/json").status_code == 400
    failed = _pntm_intakes().get()
    assert failed.state == "failed" and "vacío" in failed.error and failed.total == 0
    pntm.json("datosMuestraID", [{"id_muestra": 1999999999}])
    assert _pntm_intakes().count() == 1
    # no key, no lab: nothing to attribute, nothing logged
    pntm.json("crearMuestras_v3", [create_row()], key=None)
    assert _pntm_intakes().count() == 1


def _intake_queries(captured):
    return [q["sql"] for q in captured.captured_queries if "integrations_intake" in q["sql"]]


def test_logging_a_v3_call_costs_the_same_queries_for_2_or_20_rows(pntm, monkeypatch):
    from muestra.integrations.pntm import views

    def measure(n):
        rows = [create_row() for _ in range(n - 1)] + [create_row(paciente_sexo="Z")]
        with CaptureQueriesContext(connection) as captured:
            assert pntm.json("crearMuestras_v3", rows).status_code == 200
        return len(captured), _intake_queries(captured)

    measure(2)  # warm the look-up caches and the key
    with_log = {n: measure(n) for n in (2, 20)}
    monkeypatch.setattr(views, "LOGGED_OPERATIONS", frozenset())
    without = {n: measure(n)[0] for n in (2, 20)}
    added = {n: with_log[n][0] - without[n] for n in (2, 20)}
    print(
        f"crearMuestras_v3 queries (with log / without): {with_log[2][0]}/{without[2]} for 2 rows, "
        f"{with_log[20][0]}/{without[20]} for 20 rows"
    )
    assert added[2] == added[20]  # a constant, whatever the number of rows
    assert (
        len(with_log[2][1]) == len(with_log[20][1]) <= 3
    )  # the intake, its items in bulk (and, with COPY on PostgreSQL, their ids)
    assert _pntm_intakes().last().items.count() == 20


# --- fix and re-process ------------------------------------------------------------------------------------------


def _results_upload(world, rows, actor="lab_x"):
    content = rows_csv(rows)
    intake, _created = bulk_services.upload_submit(
        actor=world.actors[actor], kind=RESULTS_NATIONAL, filename="resultados.csv", content=content
    )
    intake.refresh_from_db()
    return intake


@pytest.fixture
def failed_row(world):
    sample = received_sample(world)
    intake = _results_upload(
        world, [{"ID Muestra": str(sample.number), "ID Paciente": "11111111-1", "Resultado": "Muestra no apta"}]
    )
    item = intake.items.get()
    assert item.outcome == Out.REJECTED and item.errors[0]["field"] == "patient"
    return sample, intake, item


def test_a_fixed_file_row_is_processed_again_and_supersedes_the_old_one(world, failed_row):
    sample, intake, item = failed_row
    fixed = dict(item.data, patient=sample.patient.document_number)
    done = services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data=fixed)
    item.refresh_from_db()
    new = done.replacement
    assert new is not None and item.superseded_by_id == new.pk and new.intake_id == intake.pk
    assert (new.outcome, new.position, new.sample_id) == (Out.ACCEPTED, item.position, sample.pk)
    assert new.data["fixed_from"] == item.pk
    sample.refresh_from_db()
    assert sample.state == SampleState.RESULT
    intake.refresh_from_db()
    assert (intake.accepted, intake.rejected) == (1, 0)
    entry = AuditEntry.objects.filter(action="intake.item_reprocessed").get()
    assert entry.object_id == str(item.pk) and entry.data["new_item"] == new.pk

    with pytest.raises(Conflict):
        services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data=fixed)
    assert IntakeItem.objects.filter(intake=intake).count() == 2


def test_a_row_still_wrong_is_a_new_rejection_and_can_be_fixed_again(world, failed_row):
    _sample, intake, item = failed_row
    done = services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data=dict(item.data))
    again = done.replacement
    assert again.outcome == Out.REJECTED and again.errors[0]["field"] == "patient"
    intake.refresh_from_db()
    assert intake.rejected == 1
    fixed = dict(item.data, patient="")
    final = services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=again.pk, data=fixed)
    assert final.replacement.outcome == Out.ACCEPTED


def test_other_scopes_may_not_reprocess(world, failed_row):
    _sample, _intake, item = failed_row
    with pytest.raises(NotFound):
        services.intake_item_reprocess(actor=world.actors["lab_y"], item_id=item.pk, data={})
    with pytest.raises(NotFound):
        services.intake_item_reprocess(actor=world.actors["taker_a"], item_id=item.pk, data={})
    with pytest.raises(PermissionDenied):
        services.intake_item_reprocess(actor=world.actors["viewer_rm"], item_id=item.pk, data={})
    with pytest.raises(PermissionDenied):
        services.intake_item_reprocess(actor=world.actors["citizen"], item_id=item.pk, data={})
    item.refresh_from_db()
    assert item.superseded_by_id is None


def test_national_api_items_are_not_reprocessed_here(pntm, world):
    pntm.json("recepcionarMuestra", [{"id_muestra": 1999999999}])
    item = _pntm_intakes().get().items.get()
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data={})
    assert "send the call again" in str(refused.value.message)


def test_a_corrected_hl7_message_is_received_again(world):
    sample = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    body = message("oru_covid_several_obx.hl7", result_code="99999999", result_text="Quizás", **for_sample(sample))
    answer = hl7.receive(world.actors["key_lab_x"], body)
    item = answer.intake.items.get()
    assert item.outcome == Out.REJECTED
    raw = services.stored_content(item)
    assert raw.startswith("MSH|") and "99999999^Quizás" in raw
    with pytest.raises(ValidationFailed):  # unchanged: a repeat, nothing to do
        services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data={"content": raw})
    fixed = raw.replace("99999999^Quizás", "260373001^Detected")
    done = services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data={"content": fixed})
    assert done.intake.pk != item.intake_id and done.intake.channel == "hl7"
    item.refresh_from_db()
    assert item.superseded_by.outcome == Out.ACCEPTED
    sample.refresh_from_db()
    assert sample.state == SampleState.RESULT


def test_a_corrected_fhir_bundle_is_received_again(world):
    good = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    other = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    bundle = load_bundle("batch_two_results", NUMBER=good.number, NUMBER_2="1999999999")
    bundle["type"] = "transaction"
    ingest.process_bundle(world.actors["key_lab_x"], json.dumps(bundle).encode())
    intake = Intake.objects.filter(channel="fhir").latest("pk")
    item = intake.items.filter(outcome=Out.REJECTED).order_by("position").first()
    raw = services.stored_content(item)
    assert "1999999999" in raw
    fixed = raw.replace("1999999999", str(other.number))
    done = services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data={"content": fixed})
    assert done.intake.pk != intake.pk and done.intake.rejected == 0
    item.refresh_from_db()
    assert item.superseded_by.intake_id == done.intake.pk and item.superseded_by.position == item.position
    good.refresh_from_db()
    other.refresh_from_db()
    assert good.state == other.state == SampleState.RESULT


# --- the summary ------------------------------------------------------------------------------------------------


def test_the_summary_counts_current_outcomes_per_channel_and_lists_failures(world, failed_row, pntm):
    _sample, intake, item = failed_row
    pntm.json("crearMuestras_v3", [create_row(), create_row(paciente_sexo="Z")])
    summary = selectors.supervision_summary(world.actors["lab_x"])
    by_channel = {c.channel: c for c in summary.channels}
    assert (by_channel["file"].intakes, by_channel["file"].rejected) == (1, 1)
    assert (by_channel["pntm"].accepted, by_channel["pntm"].rejected) == (1, 1)
    assert summary.failures_total == 2 and item.pk in {f.pk for f in summary.failures}
    # lab Y sees none of it; an admin sees it all, or one lab
    other = selectors.supervision_summary(world.actors["lab_y"])
    assert other.failures_total == 0 and not other.failures
    admin = selectors.supervision_summary(world.actors["admin"])
    assert admin.failures_total == 2 and admin.deliveries_scope == "all"
    only_y = selectors.supervision_summary(world.actors["admin"], laboratory_id=world.labs[1000000002].pk)
    assert only_y.failures_total == 0
    # older than the period: not counted
    Intake.objects.filter(pk=intake.pk).update(received_at=timezone.now() - timedelta(days=8))
    assert selectors.supervision_summary(world.actors["lab_x"]).failures_total == 1
    assert selectors.supervision_summary(world.actors["lab_x"], days=9).failures_total == 2


def test_overdue_samples_are_those_received_past_the_target(world, settings):
    settings.MUESTRA = {**settings.MUESTRA, "LAB_TARGET_HOURS": 24}
    late = received_sample(world)
    fresh = received_sample(world)
    Sample.objects.filter(pk=late.pk).update(received_at=timezone.now() - timedelta(hours=30))
    overdue = list(selectors.overdue_samples(world.actors["lab_x"]))
    assert [s.pk for s in overdue] == [late.pk] and fresh.pk not in {s.pk for s in overdue}
    assert not selectors.overdue_samples(world.actors["lab_y"]).exists()
    assert [s.pk for s in selectors.overdue_samples(world.actors["admin"])] == [late.pk]
    summary = selectors.supervision_summary(world.actors["lab_x"])
    assert summary.overdue_total == 1 and summary.overdue[0].pk == late.pk


def test_the_summary_costs_the_same_queries_with_few_or_many_items(world, pntm):
    def measure():
        with CaptureQueriesContext(connection) as captured:
            selectors.supervision_summary(world.actors["lab_x"])
        return len(captured)

    pntm.json("crearMuestras_v3", [create_row(paciente_sexo="Z")])
    few = measure()
    pntm.json("crearMuestras_v3", [create_row(paciente_sexo="Z") for _ in range(15)])
    assert measure() == few


def test_a_correction_that_cannot_be_read_is_refused_and_leaves_no_unit(world):
    sample = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    bundle = load_bundle("batch_two_results", NUMBER=sample.number, NUMBER_2="1999999999")
    bundle["type"] = "transaction"  # all or nothing: the unknown sample rejects the Bundle's entries
    ingest.process_bundle(world.actors["key_lab_x"], json.dumps(bundle).encode())
    item = Intake.objects.filter(channel="fhir").latest("pk").items.filter(outcome=Out.REJECTED).first()
    units = Intake.objects.filter(channel="fhir").count()
    with pytest.raises(ValidationFailed) as info:
        services.intake_item_reprocess(actor=world.actors["lab_x"], item_id=item.pk, data={"content": "{not json"})
    assert info.value.errors[0].field == "content"
    assert Intake.objects.filter(channel="fhir").count() == units
    item.refresh_from_db()
    assert item.superseded_by is None  # still there to be fixed
