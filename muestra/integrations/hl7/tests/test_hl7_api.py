# mypy: disable-error-code="union-attr,arg-type"
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.demo.builders import sample_in_state, sample_input
from muestra.integrations.hl7 import er7
from muestra.integrations.hl7.tests.helpers import acks, for_sample, message, msa, post, ts
from muestra.integrations.models import Intake, IntakeItem
from muestra.samples.models import EventKind, SampleEvent, SampleState

S = SampleState


@pytest.fixture
def received(world):
    return sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


def _events(sample, kind):
    return SampleEvent.objects.filter(sample=sample, kind=kind).count()


def test_a_result_with_several_obx_answers_and_a_report_is_delivered(client, world, received):
    body = message("oru_covid_several_obx.hl7", **for_sample(received))
    response = post(client, body, world.keys["lab_x"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("x-application/hl7-v2+er7")
    (ack,) = acks(response)
    assert ack.message_type == "ACK^R01"
    assert msa(ack)[0] == "AA"
    assert ack.first("MSA").value(2).startswith("LX")
    received.refresh_from_db()
    assert received.state == S.RESULT and received.result_value.code == "positive"
    result = received.results.get()
    assert result.report_sha256  # the ED OBX became the signed report
    intake = Intake.objects.get(channel="hl7")
    assert (intake.kind, intake.state, intake.accepted) == ("ORU^R01", "done", 1)
    item = intake.items.get()
    assert item.outcome == IntakeItem.Outcome.ACCEPTED and item.sample_id == received.pk
    assert item.data["answers"] == {"95419-8": "Yes", "65222-2": "20250301", "95418-0": "No"}
    assert item.data["notes"] == ["Ct ORF1ab 24.3, gen N 25.1."]

    # The same message again: nothing recorded twice, the same answer.
    again = post(client, body, world.keys["lab_x"])
    assert msa(acks(again)[0])[0] == "AA"
    assert _events(received, EventKind.RESULT_DELIVERED) == 1
    assert Intake.objects.filter(channel="hl7").count() == 1

    # The same result in new bytes (another control id): unchanged, still one event.
    third = post(client, message("oru_covid_several_obx.hl7", **for_sample(received)), world.keys["lab_x"])
    assert msa(acks(third)[0])[0] == "AA"
    assert _events(received, EventKind.RESULT_DELIVERED) == 1
    assert IntakeItem.objects.filter(outcome=IntakeItem.Outcome.UNCHANGED).count() == 1


@pytest.mark.parametrize("eol", ["\r", "\n", "\r\n"])
def test_segment_endings_cr_lf_and_crlf_are_all_read(client, world, received, eol):
    body = message("oru_covid_several_obx.hl7", eol=eol, **for_sample(received, result_code="260415000"))
    assert msa(acks(post(client, body, world.keys["lab_x"], "text/plain"))[0])[0] == "AA"
    received.refresh_from_db()
    assert received.result_value.code == "negative"


def test_a_correction_uses_the_note_as_reason_and_is_not_applied_twice(client, world):
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"], result="positive")
    body = message("oru_correction.hl7", **for_sample(sample))
    assert msa(acks(post(client, body, world.keys["lab_x"]))[0])[0] == "AA"
    sample.refresh_from_db()
    assert sample.result_value.code == "negative"
    latest = sample.results.order_by("-version").first()
    assert latest.version == 2 and latest.reason.startswith("Error de transcripción")
    # Resent in new bytes: the correction is already the current result, nothing changes.
    assert (
        msa(acks(post(client, message("oru_correction.hl7", **for_sample(sample)), world.keys["lab_x"]))[0])[0] == "AA"
    )
    assert _events(sample, EventKind.RESULT_CORRECTED) == 1


def test_mpox_result_as_text(client, world):
    data = sample_input(test="mpox-pcr", sample_type="lesion-swab")
    sample = sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"], data=data)
    response = post(client, message("oru_mpox.hl7", **for_sample(sample)), world.keys["lab_x"])
    assert msa(acks(response)[0])[0] == "AA", response.content
    sample.refresh_from_db()
    assert sample.result_value.code == "positive"


def test_a_batch_with_one_bad_message_accepts_the_others(client, world):
    samples = [
        sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"]) for _ in range(3)
    ]
    values: dict[str, object] = {}
    for i, s in enumerate(samples, start=1):
        values |= {
            f"specimen{i}": s.number,
            f"placer{i}": s.number,
            f"collected{i}": ts(s.collected_at),
            f"document{i}": "1-9",
        }
    response = post(client, message("batch.hl7", **values), world.keys["lab_x"])
    assert response.status_code == 200
    envelope = er7.parse(response.content.decode())
    assert envelope.is_batch and envelope.batch_header.value(12).startswith("BATCH")
    codes = [msa(m)[0] for m in envelope.messages]
    assert codes == ["AA", "AE", "AA"]
    bad = envelope.messages[1]
    err = bad.first("ERR")
    assert err.value(2).startswith("OBX^1^5") and err.component(3, 1) == "103"
    assert "Quizás" in msa(bad)[1] or "99999999" in msa(bad)[1]
    for s, expected in zip(samples, ["negative", None, "positive"], strict=True):
        s.refresh_from_db()
        assert (s.result_value.code if s.result_value_id else None) == expected
    assert samples[0].state == S.RESULT  # the result implied the receipt
    intake = Intake.objects.get(channel="hl7")
    assert (intake.total, intake.accepted, intake.rejected) == (3, 2, 1)


def test_collection_time_mismatch_is_an_error_and_changes_nothing(client, world, received):
    body = message(
        "oru_covid_several_obx.hl7", **for_sample(received, collected=ts(received.collected_at - timedelta(hours=5)))
    )
    (ack,) = acks(post(client, body, world.keys["lab_x"]))
    assert msa(ack)[0] == "AE" and ack.first("ERR").value(2).startswith("SPM^1^17")
    received.refresh_from_db()
    assert received.state == S.RECEIVED


def test_a_result_without_report_is_an_error_with_reason(client, world, received):
    body = message("oru_covid_several_obx.hl7", **for_sample(received)).replace(b"OBX|5|ED", b"OBX|5|XX")
    (ack,) = acks(post(client, body, world.keys["lab_x"]))
    assert msa(ack)[0] == "AE" and "informe" in msa(ack)[1].lower()  # Spanish, the default language


def test_unknown_and_other_labs_samples_are_held_with_the_same_answer(client, world):
    other = sample_in_state(
        S.RECEIVED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(establishment="105100", laboratory=1000000002),
    )
    fake = type("S", (), {"number": 1999999999, "collected_at": timezone.now() - timedelta(hours=1)})()
    answers = []
    for target in (other, fake):
        (ack,) = acks(
            post(client, message("oru_covid_several_obx.hl7", **for_sample(target, filler="NOPE")), world.keys["lab_x"])
        )
        answers.append((msa(ack)[0], ack.first("ERR").component(3, 1), ack.first("ERR").value(4), msa(ack)[1]))
    assert answers[0] == answers[1]
    assert answers[0][:3] == ("AA", "204", "W")
    assert IntakeItem.objects.filter(outcome=IntakeItem.Outcome.HELD).count() == 2
    other.refresh_from_db()
    assert other.state == S.RECEIVED


def test_ambiguous_identifiers_are_held(client, world, received):
    second = sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    body = message("oru_covid_several_obx.hl7", **for_sample(received, filler=str(second.number)))
    (ack,) = acks(post(client, body, world.keys["lab_x"]))
    assert msa(ack)[0] == "AA" and ack.first("ERR").component(3, 1) == "205"
    received.refresh_from_db()
    assert received.state == S.RECEIVED


def test_the_labs_own_code_finds_the_sample(client, world):
    lab = world.actors["lab_x"]
    data = sample_input(client_code="LX-7781")
    from muestra.samples import services

    sample, _ = services.sample_register(actor=lab, data=data)
    body = message(
        "oru_covid_several_obx.hl7", **for_sample(sample, specimen="LX-7781", placer="LX-7781", filler="LX-7781")
    )
    assert msa(acks(post(client, body, world.keys["lab_x"]))[0])[0] == "AA"
    sample.refresh_from_db()
    assert sample.state == S.RESULT


def test_garbage_wrong_type_and_unauthorised_are_refused(client, world, received):
    response = post(client, b"\x00\x01 not hl7 at all", world.keys["lab_x"])
    assert response.status_code == 200 and msa(acks(response)[0])[0] == "AR"
    assert Intake.objects.get(channel="hl7").state == Intake.State.FAILED

    adt = message("oru_covid_several_obx.hl7", **for_sample(received)).replace(b"ORU^R01^ORU_R01", b"ADT^A01^ADT_A01")
    (ack,) = acks(post(client, adt, world.keys["lab_x"]))
    assert msa(ack)[0] == "AR" and ack.first("ERR").component(3, 1) == "200"

    body = message("oru_covid_several_obx.hl7", **for_sample(received))
    for key, status in ((None, 401), ("mst_wrong", 401), (world.keys["est_a"], 403)):
        response = post(client, body, key)
        assert response.status_code == status
        assert msa(acks(response)[0])[0] == "AR"
    received.refresh_from_db()
    assert received.state == S.RECEIVED


def test_a_lab_users_session_may_send(client, world, received):
    from conftest import login_with_second_factor

    login_with_second_factor(client, world.users["lab_x"])
    body = message("oru_covid_several_obx.hl7", **for_sample(received))
    response = post(client, body, None)
    assert msa(acks(response)[0])[0] == "AA", response.content


def test_errors_are_in_the_senders_language(client, world, received):
    body = message(
        "oru_covid_several_obx.hl7", **for_sample(received, collected=ts(received.collected_at - timedelta(days=1)))
    )
    response = client.post(
        "/api/v1/hl7",
        data=body,
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {world.keys['lab_x']}",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "does not match" in msa(acks(response)[0])[1]


def test_the_orders_answers_are_stored_with_the_sample(client, world, received):
    body = message("oru_covid_several_obx.hl7", **for_sample(received))
    assert msa(acks(post(client, body, world.keys["lab_x"]))[0])[0] == "AA"
    received.refresh_from_db()
    assert received.answers == {"95419-8": "Yes", "65222-2": "20250301", "95418-0": "No"}


def _batch(messages: list[bytes]) -> bytes:
    now = ts(timezone.now())
    head = f"FHS|^~\\&|LIS-LABX|LAB X|||{now}\rBHS|^~\\&|LIS-LABX|LAB X|||{now}||||B1\r".encode()
    return head + b"".join(messages) + f"BTS|{len(messages)}\rFTS|1\r".encode()


def test_a_result_and_its_correction_in_one_batch_apply_in_order(client, world, received):
    other = sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    body = _batch(
        [
            message("oru_covid_several_obx.hl7", **for_sample(received)),
            message("oru_correction.hl7", **for_sample(received)),
            message("oru_covid_several_obx.hl7", **for_sample(other, result_code="260415000")),
            message("oru_covid_several_obx.hl7", **for_sample(other, result_code="260415000")),  # sent twice
        ]
    )
    envelope = er7.parse(post(client, body, world.keys["lab_x"]).content.decode())
    assert [msa(m)[0] for m in envelope.messages] == ["AA"] * 4, [msa(m)[1] for m in envelope.messages]
    received.refresh_from_db()
    other.refresh_from_db()
    assert received.result_value.code == "negative" and received.results.count() == 2
    assert other.result_value.code == "negative" and other.results.count() == 1
    outcomes = list(Intake.objects.get(channel="hl7").items.order_by("position").values_list("outcome", flat=True))
    assert outcomes == ["accepted", "accepted", "accepted", "unchanged"]


def test_a_batch_costs_the_same_number_of_queries_for_few_or_many_messages(
    client, world, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from muestra.integrations.hl7 import processing

    def run(count: int) -> int:
        samples = [
            sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
            for _ in range(count)
        ]
        body = _batch(
            [
                message("oru_covid_several_obx.hl7", **for_sample(s, specimen=s.number, result_code="125154007"))
                .replace(b"OBX|2|CWE", b"OBX|2|XXX")  # no answers: the plain path
                .replace(b"OBX|3|DT", b"OBX|3|XXX")
                .replace(b"OBX|4|CWE", b"OBX|4|XXX")
                for s in samples
            ]
        )
        with CaptureQueriesContext(connection) as queries:
            answer = processing.receive(world.actors["key_lab_x"], body)
        assert answer.body.count("MSA|AA|") == count, answer.body
        return len(queries)

    few, many = run(2), run(12)
    assert many <= few + 2, (few, many)
