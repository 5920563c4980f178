"""Every step of a sample's life through the API: edit, cancel, receive (one and many), reject, return, forward,
result (multipart and JSON), correction, correction authorisation. Each with its cross-scope denial.

Wrong-lab policy, as the services decide it: a lab that cannot see the sample (the normal case: lab Y and a sample
of establishment A sent to lab X) gets 404, exactly as for a missing sample; a caller who can see the sample but is
not its destination lab (the establishment's taker, or a lab that created it through its LIS and forwarded it
elsewhere) gets 403 `wrong_laboratory`. Read-only roles get 403 on every write.
"""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from muestra.api.tests.support import error_of, fields_of, sample_body
from muestra.demo.builders import REPORT
from muestra.samples.models import CorrectionAuthorization, Result, Sample, SampleEvent, SampleState

pytestmark = pytest.mark.django_db

PDF = REPORT.content


def _pdf_upload(content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile("informe.pdf", content, content_type="application/pdf")


# --- edit and cancel ------------------------------------------------------------------------------------------


def test_patch_changes_only_what_is_sent(api, make_sample):
    sample = make_sample()
    response = api("taker_a").patch(
        f"/samples/{sample.number}", {"sample_type": "throat-swab", "surveillance_number": "ENO-1"}
    )
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["sample_type"]["code"] == "throat-swab"
    assert out["strategy"]["code"] == "symptomatic"  # untouched
    sample.refresh_from_db()
    assert sample.surveillance_number == "ENO-1"
    assert sample.events.filter(kind="edited").count() == 1


def test_patch_null_clears_a_code_and_bad_codes_are_named(api, make_sample):
    sample = make_sample()
    client = api("taker_a")
    assert client.patch(f"/samples/{sample.number}", {"strategy": None}).json()["strategy"] is None
    response = client.patch(f"/samples/{sample.number}", {"sample_type": "blood-orange", "laboratory": 1000000002})
    assert response.status_code == 422
    assert fields_of(response) == {"sample_type": "unknown_code", "laboratory": "not_assigned"}


def test_patch_refuses_fields_that_are_not_editable(api, make_sample):
    sample = make_sample()
    response = api("taker_a").patch(f"/samples/{sample.number}", {"test": "covid19-antigen"})
    assert response.status_code == 422
    assert fields_of(response) == {"test": "unknown_field"}


@pytest.mark.parametrize(
    ("persona", "status"),
    [("taker_b", 404), ("lab_y", 404), ("citizen", 403), ("viewer_rm", 403), ("lab_x", 403)],
)
def test_patch_cross_scope(api, make_sample, persona, status):
    sample = make_sample()
    response = api(persona).patch(f"/samples/{sample.number}", {"surveillance_number": "X"})
    assert response.status_code == status
    error_of(response)


def test_cancel(api, make_sample):
    sample = make_sample()
    response = api("manager_a").post(f"/samples/{sample.number}/cancel", {"reason": "Registrada por error"})
    assert response.status_code == 200
    assert response.json()["state"] == SampleState.CANCELLED


def test_cancel_needs_a_reason_and_a_legal_state(api, make_sample):
    response = api("taker_a").post(f"/samples/{make_sample().number}/cancel", {})
    assert fields_of(response) == {"reason": "required"}
    dispatched = make_sample("dispatched")
    response = api("taker_a").post(f"/samples/{dispatched.number}/cancel", {"reason": "x"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "illegal_transition"


@pytest.mark.parametrize(("persona", "status"), [("taker_b", 404), ("lab_y", 404), ("viewer_rm", 403)])
def test_cancel_cross_scope(api, make_sample, persona, status):
    sample = make_sample()
    assert api(persona).post(f"/samples/{sample.number}/cancel", {"reason": "x"}).status_code == status
    assert Sample.objects.get(pk=sample.pk).state == SampleState.REGISTERED


# --- receive --------------------------------------------------------------------------------------------------


def test_receive_one_and_repeat_is_harmless(api, make_sample):
    sample = make_sample("dispatched")
    client = api("key_lab_x")
    first = client.post(f"/samples/{sample.number}/receive")
    assert first.status_code == 200, first.content
    assert first.json()["state"] == SampleState.RECEIVED
    assert client.post(f"/samples/{sample.number}/receive", {}).status_code == 200
    assert SampleEvent.objects.filter(sample=sample, kind="received").count() == 1


def test_receive_with_a_reception_time(api, make_sample):
    sample = make_sample("dispatched")
    received_at = sample.collected_at.isoformat()
    out = api("lab_x").post(f"/samples/{sample.number}/receive", {"received_at": received_at}).json()
    assert out["received_at"].startswith(sample.collected_at.strftime("%Y-%m-%dT"))


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [
        ("lab_y", 404, "not_found"),
        ("key_lab_y", 404, "not_found"),
        ("taker_b", 404, "not_found"),
        ("taker_a", 403, "wrong_laboratory"),
        ("viewer_rm", 403, "forbidden"),
        ("citizen", 403, "forbidden"),
    ],
)
def test_receive_cross_scope(api, make_sample, persona, status, code):
    sample = make_sample("dispatched")
    response = api(persona).post(f"/samples/{sample.number}/receive")
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert Sample.objects.get(pk=sample.pk).state == SampleState.DISPATCHED


def test_lab_that_can_see_a_sample_but_is_not_its_lab_gets_403(api):
    """Lab Y registers through its LIS, forwards to lab X, and keeps seeing it (its own code): 403, not 404."""
    body = sample_body(establishment="105100", laboratory=1000000002, client_code="Y-FWD-1")
    client = api("key_lab_y")
    number = client.post("/samples", body).json()["number"]
    forwarded = client.post(f"/samples/{number}/forward", {"new_laboratory": 1000000001, "reason": "sin reactivos"})
    assert forwarded.status_code == 200, forwarded.content
    assert forwarded.json()["laboratory"]["platform_id"] == 1000000001
    for path, body in [("receive", {}), ("reject", {"reason": "spilled"}), ("return", {})]:
        response = client.post(f"/samples/{number}/{path}", body)
        assert response.status_code == 403, (path, response.content)
        assert error_of(response)["code"] == "wrong_laboratory"


def test_receive_many_with_per_item_outcomes(api, make_sample):
    a = make_sample("dispatched")
    b = make_sample("received")
    cancelled = make_sample("cancelled")
    response = api("lab_x").post("/samples/receive", {"samples": [a.number, b.number, cancelled.number, 9999999999]})
    assert response.status_code == 200, response.content
    out = response.json()
    assert [(i["number"], i["status"]) for i in out["items"]] == [
        (a.number, "received"),
        (b.number, "already_received"),
        (cancelled.number, "error"),
        (9999999999, "error"),
    ]
    assert out["counts"] == {"received": 1, "already_received": 1, "error": 2}
    assert out["items"][2]["errors"][0]["code"] == "illegal_transition"
    assert out["items"][3]["errors"][0]["code"] == "not_found"
    assert out["items"][0]["sample"]["state"] == SampleState.RECEIVED


def test_receive_many_by_the_wrong_lab_receives_nothing(api, make_sample):
    sample = make_sample("dispatched")
    out = api("lab_y").post("/samples/receive", {"samples": [sample.number]}).json()
    assert out["items"][0]["status"] == "error"
    assert out["items"][0]["errors"][0]["code"] == "not_found"
    assert Sample.objects.get(pk=sample.pk).state == SampleState.DISPATCHED


def test_receive_many_validates_numbers(api):
    response = api("lab_x").post("/samples/receive", {"samples": [12, "abc"]})
    assert response.status_code == 422
    assert set(fields_of(response)) == {"samples[0]", "samples[1]"}


# --- reject, return, forward ------------------------------------------------------------------------------------


def test_reject_by_code_or_national_name(api, make_sample):
    a = make_sample("dispatched")
    out = api("lab_x").post(f"/samples/{a.number}/reject", {"reason": "spilled", "note": "tubo roto"}).json()
    assert out["state"] == SampleState.REJECTED
    assert out["rejection_reason"]["code"] == "spilled"
    b = make_sample("dispatched")
    from muestra.catalog.models import RejectionReason

    national = RejectionReason.objects.get(code="unlabelled").pntm_name
    out = api("lab_x").post(f"/samples/{b.number}/reject", {"reason": national}).json()
    assert out["rejection_reason"]["code"] == "unlabelled"


def test_reject_unknown_reason(api, make_sample):
    sample = make_sample("dispatched")
    response = api("lab_x").post(f"/samples/{sample.number}/reject", {"reason": "bored"})
    assert response.status_code == 422
    assert fields_of(response) == {"reason": "validation_error"}


@pytest.mark.parametrize(("persona", "status"), [("lab_y", 404), ("taker_b", 404), ("taker_a", 403)])
def test_reject_cross_scope(api, make_sample, persona, status):
    sample = make_sample("dispatched")
    assert api(persona).post(f"/samples/{sample.number}/reject", {"reason": "spilled"}).status_code == status
    assert Sample.objects.get(pk=sample.pk).state == SampleState.DISPATCHED


def test_return(api, make_sample):
    sample = make_sample("received")
    out = api("lab_x").post(f"/samples/{sample.number}/return", {"reason": "Sin capacidad"}).json()
    assert out["state"] == SampleState.RETURNED


@pytest.mark.parametrize(("persona", "status"), [("lab_y", 404), ("taker_b", 404), ("viewer_rm", 403)])
def test_return_cross_scope(api, make_sample, persona, status):
    sample = make_sample("received")
    assert api(persona).post(f"/samples/{sample.number}/return", {}).status_code == status


def test_forward_to_another_lab(api, world, make_sample):
    from muestra.demo.builders import sample_input
    from muestra.samples import services

    sample, _ = services.sample_register(actor=world.actors["taker_b"], data=sample_input(establishment="105100"))
    services.sample_receive(actor=world.actors["lab_x"], sample_id=sample.pk)
    response = api("lab_x").post(f"/samples/{sample.number}/forward", {"new_laboratory": 1000000002})
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["state"] == SampleState.DISPATCHED
    assert out["laboratory"]["platform_id"] == 1000000002
    # Lab X no longer sees it; lab Y now does.
    assert api("lab_x").get(f"/samples/{sample.number}").status_code == 404
    assert api("lab_y").get(f"/samples/{sample.number}").status_code == 200


def test_forward_unknown_lab(api, make_sample):
    sample = make_sample("received")
    response = api("lab_x").post(f"/samples/{sample.number}/forward", {"new_laboratory": 4242})
    assert response.status_code == 422
    assert fields_of(response) == {"new_laboratory": "validation_error"}


@pytest.mark.parametrize(("persona", "status"), [("lab_y", 404), ("taker_b", 404), ("taker_a", 403)])
def test_forward_cross_scope(api, make_sample, persona, status):
    sample = make_sample("received")
    response = api(persona).post(f"/samples/{sample.number}/forward", {"new_laboratory": 1000000002})
    assert response.status_code == status


# --- results --------------------------------------------------------------------------------------------------


def test_result_multipart_and_pdf_round_trip(api, make_sample):
    sample = make_sample("received")
    pdf = PDF + b"% lab X signature\n"
    response = api("key_lab_x").post_multipart(
        f"/samples/{sample.number}/result", {"value": "positive", "report": _pdf_upload(pdf)}
    )
    assert response.status_code == 201, response.content
    out = response.json()
    assert out["state"] == SampleState.RESULT
    assert out["result"]["value"] == "positive"
    download = api("taker_a").get(f"/samples/{sample.number}/report")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content) == pdf


def test_result_json_with_base64_report(api, make_sample):
    sample = make_sample("dispatched")  # a result implies the receipt
    body = {
        "value": "negative",
        "reported_at": sample.collected_at.isoformat(),
        "report_base64": base64.b64encode(PDF).decode(),
    }
    client = api("key_lab_x")
    response = client.post(f"/samples/{sample.number}/result", body)
    assert response.status_code == 201, response.content
    assert response.json()["result"]["value"] == "negative"
    assert response.json()["received_at"] is not None
    # The same delivery again (a LIS retry): 200, nothing new.
    again = client.post(f"/samples/{sample.number}/result", body)
    assert again.status_code == 200
    assert Result.objects.filter(sample=sample).count() == 1
    # A different result is a conflict: corrections go through their own endpoint.
    conflict = client.post(f"/samples/{sample.number}/result", {**body, "value": "positive"})
    assert conflict.status_code == 409
    assert b"".join(client.get(f"/samples/{sample.number}/report").streaming_content) == PDF


def test_result_errors(api, make_sample):
    sample = make_sample("received")
    client = api("lab_x")
    missing = client.post(f"/samples/{sample.number}/result", {"report_base64": base64.b64encode(PDF).decode()})
    assert missing.status_code == 422
    assert fields_of(missing) == {"value": "required"}
    no_report = client.post(f"/samples/{sample.number}/result", {"value": "negative"})
    assert fields_of(no_report) == {"report": "validation_error"}
    bad_b64 = client.post(f"/samples/{sample.number}/result", {"value": "negative", "report_base64": "%%%"})
    assert fields_of(bad_b64) == {"report_base64": "invalid_base64"}
    not_pdf = client.post_multipart(
        f"/samples/{sample.number}/result", {"value": "negative", "report": _pdf_upload(b"GIF89a...")}
    )
    assert fields_of(not_pdf) == {"report": "not_pdf"}
    unknown = client.post_multipart(f"/samples/{sample.number}/result", {"value": "purple", "report": _pdf_upload()})
    assert fields_of(unknown) == {"result": "validation_error"}
    bad_date = client.post_multipart(
        f"/samples/{sample.number}/result", {"value": "negative", "reported_at": "soon", "report": _pdf_upload()}
    )
    assert fields_of(bad_date) == {"reported_at": "invalid_datetime"}
    broken_json = client.client.post(f"/api/v1/samples/{sample.number}/result", "{", content_type="application/json")
    assert error_of(broken_json)["code"] == "invalid_json"
    assert not Result.objects.filter(sample=sample).exists()


@pytest.mark.parametrize(
    ("persona", "status"), [("lab_y", 404), ("key_lab_y", 404), ("taker_b", 404), ("taker_a", 403), ("citizen", 403)]
)
def test_result_cross_scope(api, make_sample, persona, status):
    sample = make_sample("received")
    response = api(persona).post_multipart(
        f"/samples/{sample.number}/result", {"value": "negative", "report": _pdf_upload()}
    )
    assert response.status_code == status
    assert not Result.objects.filter(sample=sample).exists()


def test_pool_result_fans_out(api, world):
    body = sample_body()
    del body["patient"]
    body["pool_members"] = [sample_body()["patient"] for _ in range(2)]
    pool = api("taker_a").post("/samples", body).json()
    response = api("lab_x").post_multipart(
        f"/samples/{pool['number']}/result", {"value": "positive", "report": _pdf_upload()}
    )
    assert response.status_code == 201, response.content
    for number in pool["members"]:
        member = api("taker_a").get(f"/samples/{number}").json()
        assert member["retest_needed"] is True
        assert member["result"]["interpretation"] == "retest"
        history = api("taker_a").get(f"/samples/{number}/results").json()
        assert history[0]["from_pool"] == pool["number"]


def test_correction_then_authorisation(api, make_sample):
    sample = make_sample("result")
    client = api("lab_x")
    body = {"value": "positive", "reason": "Error de digitación", "report_base64": base64.b64encode(PDF).decode()}
    first = client.post(f"/samples/{sample.number}/result/correction", body)
    assert first.status_code == 201, first.content
    assert first.json()["result"]["corrected"] is True
    assert first.json()["result"]["version"] == 2
    second = client.post(f"/samples/{sample.number}/result/correction", {**body, "value": "negative"})
    assert second.status_code == 403
    assert error_of(second)["code"] == "authorisation_required"
    # Only a national administrator authorises a late correction.
    denied = client.post(f"/samples/{sample.number}/correction-authorisations", {"reason": "x"})
    assert denied.status_code == 403
    granted = api("admin").post(f"/samples/{sample.number}/correction-authorisations", {"reason": "Solicitud SEREMI"})
    assert granted.status_code == 201, granted.content
    assert granted.json()["sample"] == sample.number
    assert granted.json()["used_at"] is None
    third = client.post_multipart(
        f"/samples/{sample.number}/result/correction",
        {"value": "negative", "reason": "Repetición", "report": _pdf_upload()},
    )
    assert third.status_code == 201, third.content
    assert CorrectionAuthorization.objects.get(sample=sample).used_at is not None
    history = api("taker_a").get(f"/samples/{sample.number}/results").json()
    assert [(r["version"], r["value"], r["authorised"]) for r in history] == [
        (1, "negative", False),
        (2, "positive", False),
        (3, "negative", True),
    ]
    old = api("taker_a").get(f"/samples/{sample.number}/report", {"version": 1})
    assert old.status_code == 200


def test_correction_needs_a_reason(api, make_sample):
    sample = make_sample("result")
    response = api("lab_x").post(
        f"/samples/{sample.number}/result/correction",
        {"value": "positive", "report_base64": base64.b64encode(PDF).decode()},
    )
    assert fields_of(response) == {"reason": "required"}


@pytest.mark.parametrize(("persona", "status"), [("lab_y", 404), ("taker_b", 404), ("taker_a", 403)])
def test_correction_cross_scope(api, make_sample, persona, status):
    sample = make_sample("result")
    response = api(persona).post(
        f"/samples/{sample.number}/result/correction",
        {"value": "positive", "reason": "x", "report_base64": base64.b64encode(PDF).decode()},
    )
    assert response.status_code == status


@pytest.mark.parametrize(("persona", "status"), [("lab_x", 403), ("taker_a", 403), ("viewer_rm", 403)])
def test_correction_authorisation_is_for_admins_only(api, make_sample, persona, status):
    sample = make_sample("result")
    response = api(persona).post(f"/samples/{sample.number}/correction-authorisations", {"reason": "x"})
    assert response.status_code == status
    assert not CorrectionAuthorization.objects.exists()


def test_correction_authorisation_of_a_missing_sample(api):
    response = api("admin").post("/samples/9999999999/correction-authorisations", {"reason": "x"})
    assert response.status_code == 404
