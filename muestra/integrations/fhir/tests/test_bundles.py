"""POST /fhir/ with result Bundles of every type, checked against what the services stored and the intake log."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from conftest import login_with_second_factor
from muestra.demo.builders import sample_input
from muestra.integrations.fhir.tests.conftest import PDF, PDF_2, issues, load_bundle, statuses
from muestra.integrations.models import Intake, IntakeItem
from muestra.samples.models import Result, Sample, SampleEvent


def _intake(kind: str) -> Intake:
    return Intake.objects.filter(channel="fhir", kind=kind).latest("pk")


def test_a_transaction_records_the_result_with_its_report(world, fhir, received):
    sample = received()
    response = fhir("key_lab_x").post(load_bundle("transaction_covid_result", NUMBER=sample.number))
    assert response.status_code == 200, response.json()
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "transaction-response"
    assert statuses(response) == ["201 Created"] * 5
    assert body["entry"][3]["response"]["location"] == f"Observation/{sample.number}"
    sample.refresh_from_db()
    assert sample.state == "result" and sample.result_value.code == "negative"
    result = Result.objects.get(sample=sample)
    assert result.report.read() == PDF
    assert SampleEvent.objects.filter(sample=sample, kind="result_delivered", channel="fhir").count() == 1
    intake = _intake("Bundle/transaction")
    assert (intake.state, intake.total, intake.rejected, intake.laboratory_id) == ("done", 5, 0, world.lab_x.pk)
    observation_item = intake.items.get(position=4)
    assert observation_item.outcome == "accepted" and observation_item.sample_id == sample.pk
    assert observation_item.data["result"] == "negative"


def test_a_transaction_with_one_bad_entry_stores_nothing(world, fhir, received):
    good = received()
    bundle = load_bundle("batch_two_results", NUMBER=good.number, NUMBER_2="1999999999")
    bundle["type"] = "transaction"
    response = fhir("key_lab_x").post(bundle)
    assert response.status_code == 404
    outcome = response.json()
    OperationOutcome.model_validate(outcome)
    found = issues(outcome)
    assert any(i["code"] == "not-found" and i["expression"] == ["Bundle.entry[3].resource.identifier"] for i in found)
    assert found[-1]["code"] == "informational"
    good.refresh_from_db()
    assert good.state == "received" and not Result.objects.filter(sample=good).exists()
    intake = _intake("Bundle/transaction")
    assert intake.rejected == 6 and intake.accepted == 0 and intake.held == 0


def test_a_batch_with_one_bad_entry_records_the_others_and_holds_the_unknown(world, fhir, received):
    good = received()
    response = fhir("key_lab_x").post(load_bundle("batch_two_results", NUMBER=good.number))
    assert response.status_code == 200
    assert response.json()["type"] == "batch-response"
    assert statuses(response) == ["201 Created"] * 3 + ["202 Accepted"] * 3
    held = response.json()["entry"][4]["response"]["outcome"]
    assert issues(held)[0]["code"] == "not-found"
    good.refresh_from_db()
    assert good.result_value.code == "positive"  # "Detected" is the catalogue's positive
    intake = _intake("Bundle/batch")
    assert (intake.accepted, intake.held, intake.rejected) == (3, 3, 0)
    item = intake.items.get(position=5)
    assert item.outcome == "held" and "1999999999" in item.reference
    assert item.data["identifiers"] == ["https://fhir.muestra.org/sid/sample-number|1999999999"]


def test_another_labs_sample_is_answered_like_an_unknown_one(world, fhir, received):
    theirs = received()
    unknown = fhir("key_lab_y").post(load_bundle("batch_mpox", NUMBER="1999999999"))
    other = fhir("key_lab_y").post(load_bundle("batch_mpox", NUMBER=theirs.number))
    assert statuses(unknown) == statuses(other) == ["202 Accepted"] * 3

    def codes(response: Any) -> list[str]:
        return [i["code"] for e in response.json()["entry"] for i in e["response"]["outcome"]["issue"]]

    assert codes(unknown) == codes(other)
    assert not Result.objects.filter(sample=theirs).exists()


def test_a_collection_finds_the_sample_by_tube_barcode(world, fhir, received):
    sample = received(tube_code="TUBO-000123")
    response = fhir("key_lab_x").post(load_bundle("collection_tube_barcode", TUBE="TUBO-000123"))
    assert response.status_code == 200
    assert statuses(response) == ["200 OK", "201 Created", "201 Created", "201 Created"]
    assert issues(response.json()["entry"][0]["response"]["outcome"])[0]["severity"] == "information"
    sample.refresh_from_db()
    assert sample.result_value.code == "negative"


def test_a_document_finds_the_sample_by_the_labs_own_code_and_stores_the_order_answers(world, fhir, received):
    sample = received(client_code="LIS-X-4711")
    response = fhir("key_lab_x").post(load_bundle("document_lab_code", CLIENT_CODE="LIS-X-4711"))
    assert response.status_code == 200, response.json()
    assert statuses(response) == ["200 OK", "201 Created", "201 Created", "200 OK", "201 Created", "201 Created"]
    sample.refresh_from_db()
    assert sample.result_value.code == "positive"
    assert sample.answers == {"95419-8": "Y"}  # the Observation answering the order's question (basedOn)


def test_a_batch_costs_the_same_number_of_queries_for_few_or_many_results(world, fhir, received):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def run(count: int) -> int:
        entries = []
        for _ in range(count):
            sample = received()
            one = load_bundle("batch_two_results", NUMBER=sample.number)["entry"][:3]
            for entry in one:  # unique fullUrls per result
                entry["fullUrl"] = entry["fullUrl"].replace("0000-4000", f"{sample.pk:04d}-4000")
                for key in ("specimen", "result"):
                    ref = entry["resource"].get(key)
                    for r in ref if isinstance(ref, list) else [ref] if ref else []:
                        r["reference"] = r["reference"].replace("0000-4000", f"{sample.pk:04d}-4000")
            entries.extend(one)
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
        with CaptureQueriesContext(connection) as queries:
            response = fhir("key_lab_x").post(bundle)
        assert statuses(response).count("201 Created") == 3 * count, response.json()
        return len(queries)

    few, many = run(2), run(10)
    assert many <= few + 2, (few, many)


def test_a_message_may_point_at_our_specimen_by_id(world, fhir, received):
    sample = received()
    response = fhir("key_lab_x").post(load_bundle("message_server_reference", NUMBER=sample.number))
    assert statuses(response) == ["200 OK", "201 Created", "201 Created"]
    sample.refresh_from_db()
    assert sample.result_value.code == "unsatisfactory"  # no report needed for an unusable specimen


def test_an_amended_report_corrects_the_result_and_a_repeat_changes_nothing(world, fhir, received):
    sample = received()
    assert statuses(fhir("key_lab_x").post(load_bundle("transaction_covid_result", NUMBER=sample.number)))[3] == (
        "201 Created"
    )
    amended = load_bundle("batch_amended", NUMBER=sample.number)
    response = fhir("key_lab_x").post(amended)
    assert statuses(response) == ["201 Created"] * 3
    sample.refresh_from_db()
    assert sample.result_value.code == "positive"
    latest = Result.objects.filter(sample=sample).latest("version")
    assert latest.version == 2 and latest.report.read() == PDF_2
    assert latest.reason.startswith("Transcription error")

    again = fhir("key_lab_x").post(amended)  # the same bytes: answered from the log
    assert statuses(again) == ["201 Created"] * 3
    assert Intake.objects.filter(kind="Bundle/batch").count() == 1
    amended["id"] = "resent"  # different bytes, same content: the services see nothing new
    assert statuses(fhir("key_lab_x").post(amended)) == ["200 OK"] * 3
    assert Result.objects.filter(sample=sample).count() == 2


def test_a_repeated_result_is_a_no_op(world, fhir, received):
    sample = received()
    bundle = load_bundle("batch_mpox", NUMBER=sample.number)  # a covid sample: the test does not match
    assert statuses(fhir("key_lab_x").post(bundle)) == ["422 Unprocessable Entity"] * 3
    first = load_bundle("transaction_covid_result", NUMBER=sample.number)
    fhir("key_lab_x").post(first)
    first["id"] = "retry-with-new-id"
    response = fhir("key_lab_x").post(first, headers={"Accept-Language": "en"})
    assert statuses(response)[3] == "200 OK"
    assert "nothing changed" in json.dumps(response.json())
    assert Result.objects.filter(sample=sample).count() == 1


def test_mpox_results_are_recorded(world, fhir, received):
    sample = received(test="mpox-pcr", sample_type="lesion-swab")
    response = fhir("key_lab_x").post(load_bundle("batch_mpox", NUMBER=sample.number))
    assert statuses(response) == ["201 Created"] * 3
    sample.refresh_from_db()
    assert sample.result_value.code == "positive" and sample.test.code == "mpox-pcr"


def test_an_invalid_bundle_is_a_400_operation_outcome_in_the_callers_language(world, fhir):
    response = fhir("key_lab_x").post(load_bundle("invalid_bundle"), headers={"Accept-Language": "en"})
    assert response.status_code == 400
    outcome = response.json()
    OperationOutcome.model_validate(outcome)
    issue = issues(outcome)[0]
    assert issue["severity"] == "error" and issue["expression"] == ["Bundle.timestamp"]
    assert issue["diagnostics"] == "Enter a valid date/time."
    spanish = fhir("key_lab_x").post(load_bundle("invalid_bundle") | {"id": "x"}, headers={"Accept-Language": "es"})
    assert issues(spanish.json())[0]["diagnostics"] != "Enter a valid date/time."
    failed = _intake("Bundle/batch")
    assert failed.state == "failed"


def test_bad_entries_are_refused_one_by_one(world, fhir, received):
    sample = received()
    bundle = load_bundle("batch_mpox", NUMBER=sample.number)
    bundle["entry"][1]["resource"]["code"]["coding"][0]["code"] = "94500-6"
    bundle["entry"][1]["resource"]["valueCodeableConcept"]["coding"][0]["code"] = "999999"
    bundle["entry"].append({"resource": {"resourceType": "Observation", "status": "final"}})
    bundle["entry"].append({"resource": {"resourceType": "Nonsense"}})
    response = fhir("key_lab_x").post(bundle)
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["422 Unprocessable Entity"] * 5
    assert issues(entries[1]["response"]["outcome"])[0]["expression"] == [
        "Bundle.entry[1].resource.valueCodeableConcept"
    ]
    assert issues(entries[3]["response"]["outcome"])[0]["expression"] == ["Bundle.entry[3].resource.code"]
    assert issues(entries[4]["response"]["outcome"])[0]["code"] == "not-supported"
    rows = IntakeItem.objects.filter(intake=_intake("Bundle/batch")).order_by("position")
    assert [r.outcome for r in rows] == ["rejected"] * 5
    assert rows[1].errors[0]["field"] == "Bundle.entry[1].resource.valueCodeableConcept"


def test_a_reader_may_not_post_and_anonymous_callers_are_refused(world, fhir):
    bundle = load_bundle("invalid_bundle")
    assert fhir("viewer_rm").post(bundle).status_code == 403
    response = fhir("key_lab_x").client.post("/fhir/", json.dumps(bundle), content_type="application/fhir+json")
    assert response.status_code == 401
    assert issues(response.json())[0]["code"] == "login"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_pool_result_fans_out_to_its_members(world, fhir):
    from dataclasses import replace

    from muestra.demo.builders import patient_input, sample_in_state

    data = replace(sample_input(), patient=None, pool_members=[patient_input(), patient_input()])
    pool = sample_in_state("received", taker=world.actors["taker_a"], lab=world.actors["lab_x"], data=data)
    response = fhir("key_lab_x").post(load_bundle("transaction_covid_result", NUMBER=pool.number))
    assert statuses(response)[3] == "201 Created"
    members = Sample.objects.filter(pool=pool)
    assert {m.result_value.code for m in members if m.result_value} == {"negative"}
    assert all(m.result_value for m in members)


def test_a_session_must_send_the_csrf_token_and_an_establishment_may_not_deliver(world, fhir, received):
    from django.test import Client

    sample = received()
    client = login_with_second_factor(Client(enforce_csrf_checks=True), world.users["lab_x"])
    bundle = json.dumps(load_bundle("batch_mpox", NUMBER=sample.number))
    refused = client.post("/fhir/", bundle, content_type="application/fhir+json")
    assert refused.status_code == 403 and issues(refused.json())[0]["code"] == "security"
    response = fhir("key_est_a").post(load_bundle("transaction_covid_result", NUMBER=sample.number))
    assert response.status_code == 403
    assert any(i["code"] == "forbidden" for i in issues(response.json()))
    assert not Result.objects.filter(sample=sample).exists()


def test_a_session_without_the_second_factor_its_role_requires_is_refused(world, received):
    from django.test import Client

    sample = received()
    client = Client()
    client.force_login(world.users["lab_x"])  # the password only: lab staff must also verify a second factor
    read = client.get(f"/fhir/Specimen/{sample.number}")
    assert read.status_code == 403
    assert read.json()["resourceType"] == "OperationOutcome"
    assert issues(read.json())[0]["code"] == "forbidden"
    refused = client.post(
        "/fhir/", json.dumps(load_bundle("batch_mpox", NUMBER=sample.number)), content_type="application/fhir+json"
    )
    assert refused.status_code == 403
    assert not Result.objects.filter(sample=sample).exists()


def test_a_final_then_a_correction_of_the_same_sample_in_one_batch(world, fhir, received):
    sample = received()
    first = load_bundle("transaction_covid_result", NUMBER=sample.number)
    amended = load_bundle("batch_amended", NUMBER=sample.number)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": first["entry"] + amended["entry"]}
    assert statuses(fhir("key_lab_x").post(bundle)) == ["201 Created"] * 8
    assert list(Result.objects.filter(sample=sample).values_list("value__code", flat=True)) == [
        "negative",
        "positive",
    ]


def test_an_unexpected_error_closes_the_intake_and_answers_an_operation_outcome(world, fhir, received, monkeypatch):
    from muestra.integrations.fhir import ingest

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(ingest, "result_deliver_batch", broken)
    sample = received(test="mpox-pcr", sample_type="lesion-swab")
    response = fhir("key_lab_x").post(load_bundle("batch_mpox", NUMBER=sample.number) | {"id": "boom"})
    assert response.status_code == 500
    assert issues(response.json())[0]["code"] == "exception"
    assert _intake("Bundle/batch").state == "failed"


def test_a_held_result_is_applied_to_the_sample_a_person_names(world, fhir, received):
    import pytest

    from muestra.core.errors import NotFound
    from muestra.integrations import matching

    sample = received(client_code="")
    fhir("key_lab_x").post(load_bundle("batch_two_results", NUMBER="1999999998", NUMBER_2="1999999999"))
    held = list(matching.held_items(world.actors["lab_x"]))
    assert [h.position for h in held] == [2, 5]  # one per result: its Observation's entry
    assert not matching.held_items(world.actors["lab_y"]).exists()
    with pytest.raises(NotFound):
        matching.held_resolve(actor=world.actors["lab_y"], item_id=held[0].pk, sample_id=sample.pk)
    new = matching.held_resolve(actor=world.actors["lab_x"], item_id=held[0].pk, sample_id=sample.pk)
    assert new.outcome == "accepted" and new.sample_id == sample.pk and new.data["matched_from"] == held[0].pk
    sample.refresh_from_db()
    assert sample.result_value.code == "positive"
    intake = _intake("Bundle/batch")
    assert intake.held == 3 and intake.items.filter(superseded_by=new).count() == 3
    assert [h.pk for h in matching.held_items(world.actors["lab_x"])] == [held[1].pk]
