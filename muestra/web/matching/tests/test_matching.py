# mypy: disable-error-code="union-attr,arg-type,misc"
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import login_with_second_factor
from muestra.demo.builders import sample_in_state, sample_input
from muestra.integrations.hl7.tests.helpers import acks, for_sample, message, msa, post
from muestra.integrations.models import Intake, IntakeItem
from muestra.samples.models import EventKind, SampleEvent, SampleState

S = SampleState


def _hold(client, world, sample, *, specimen="TUBE-UNKNOWN-1", filler="LIS-88"):
    """The LIS sends a result naming `sample` only by codes Muestra does not know: it is held."""
    body = message(
        "oru_covid_several_obx.hl7",
        **for_sample(sample, specimen=specimen, placer=specimen, filler=filler, document="12345678-5"),
    )
    (ack,) = acks(post(client, body, world.keys["lab_x"]))
    assert msa(ack)[0] == "AA" and ack.first("ERR").value(4) == "W"
    return IntakeItem.objects.filter(outcome=IntakeItem.Outcome.HELD).latest("pk")


@pytest.fixture(autouse=True)
def _english(client):
    """These tests read the pages' English wording; the default language is Spanish."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def sample(world):
    return sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


def test_a_held_result_is_shown_searched_and_confirmed(client, world, sample):
    item = _hold(client, world, sample)
    staff = login_with_second_factor(client, world.users["lab_x"])
    home = staff.get("/matching/")
    assert home.status_code == 200
    page = home.content.decode()
    assert "TUBE-UNKNOWN-1" in page and "LIS-88" in page
    assert "(1)" in page  # the navigation entry counts what waits

    detail = staff.get(f"/matching/{item.pk}/", {"q": str(sample.number)})
    assert detail.status_code == 200 and str(sample.number) in detail.content.decode()
    by_document = staff.get(f"/matching/{item.pk}/", {"q": sample.patient.document_number})
    assert str(sample.number) in by_document.content.decode()

    response = staff.post(f"/matching/{item.pk}/", {"sample": sample.number})
    assert response.status_code == 302 and response["Location"] == "/matching/"
    sample.refresh_from_db()
    assert sample.state == S.RESULT and sample.result_value.code == "positive"
    item.refresh_from_db()
    new = IntakeItem.objects.get(pk=item.superseded_by_id)
    assert (new.outcome, new.sample_id, new.data["matched_from"]) == ("accepted", sample.pk, item.pk)
    assert Intake.objects.get(pk=item.intake_id).held == 0
    assert "(0)" in staff.get("/matching/").content.decode()
    assert staff.get(f"/matching/{item.pk}/").status_code == 404  # settled: no longer waiting
    assert SampleEvent.objects.filter(sample=sample, kind=EventKind.RESULT_DELIVERED).count() == 1


def test_confirming_a_sample_that_cannot_take_the_result_shows_the_reason(client, world):
    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    sample = sample_in_state(S.RECEIVED, taker=taker, lab=lab)
    wrong = sample_in_state(
        S.RECEIVED, taker=taker, lab=lab, data=sample_input(collected_at=timezone.now() - timedelta(hours=9))
    )
    item = _hold(client, world, sample)
    staff = login_with_second_factor(client, world.users["lab_x"])
    response = staff.post(f"/matching/{item.pk}/", {"sample": wrong.number})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    wrong.refresh_from_db()
    assert wrong.state == S.RECEIVED
    item.refresh_from_db()
    assert item.superseded_by_id is None


def test_other_labs_and_takers_get_404(client, world, sample):
    item = _hold(client, world, sample)
    other_lab = sample_in_state(
        S.RECEIVED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(establishment="105100", laboratory=1000000002),
    )
    lab_y = login_with_second_factor(client, world.users["lab_y"])
    assert lab_y.get(f"/matching/{item.pk}/").status_code == 404
    assert lab_y.post(f"/matching/{item.pk}/", {"sample": sample.number}).status_code == 404
    assert "TUBE-UNKNOWN-1" not in lab_y.get("/matching/").content.decode()
    client.logout()
    lab_x = login_with_second_factor(client, world.users["lab_x"])
    # lab_x cannot attach its held result to lab Y's sample: answered like an unknown sample.
    response = lab_x.post(f"/matching/{item.pk}/", {"sample": other_lab.number})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    search = lab_x.get(f"/matching/{item.pk}/", {"q": str(other_lab.number)}).content.decode()
    assert f'name="sample" value="{other_lab.number}"' not in search and "No sample of your laboratory" in search
    other_lab.refresh_from_db()
    assert other_lab.state == S.RECEIVED
    client.logout()
    client.force_login(world.users["taker_a"])
    assert client.get("/matching/").status_code == 404
    assert client.get(f"/matching/{item.pk}/").status_code == 404


def test_the_list_runs_a_bounded_number_of_queries(client, world, sample, django_assert_max_num_queries):
    for i in range(3):
        _hold(client, world, sample, specimen=f"TUBE-A-{i}")
    _hold_fhir(world, code="LIS-A")
    staff = login_with_second_factor(client, world.users["lab_x"])
    staff.get("/matching/")
    with django_assert_max_num_queries(12):
        staff.get("/matching/")
    for i in range(12):
        _hold(client, world, sample, specimen=f"TUBE-B-{i}")
        _hold_fhir(world, code=f"LIS-B-{i}")
    with django_assert_max_num_queries(12):  # the same bound with five times the rows
        assert staff.get("/matching/").status_code == 200


def _hold_fhir(world, *, code="LIS-UNKNOWN-9"):
    """The LIS sends a FHIR document naming a sample only by a lab code Muestra does not know: it is held."""
    import json

    from muestra.integrations.fhir import ingest
    from muestra.integrations.fhir.tests.conftest import load_bundle

    bundle = load_bundle("document_lab_code", CLIENT_CODE=code, RUN="12345678-5")
    answer = ingest.process_bundle(world.actors["key_lab_x"], json.dumps(bundle).encode())
    assert answer.status == 200
    return IntakeItem.objects.filter(outcome=IntakeItem.Outcome.HELD, data__has_key="identifiers").latest("pk")


def test_held_results_of_every_channel_are_listed_and_fhir_is_resolved(client, world, sample):
    hl7_item = _hold(client, world, sample)
    fhir_item = _hold_fhir(world)
    staff = login_with_second_factor(client, world.users["lab_x"])
    page = staff.get("/matching/").content.decode()
    assert "(2)" in page
    assert page.index("TUBE-UNKNOWN-1") < page.index("LIS-UNKNOWN-9")  # oldest first
    assert "HL7 v2" in page and "FHIR" in page
    assert "12345678-5" in page  # the patient the FHIR document named, as context for the person
    detail = staff.get(f"/matching/{fhir_item.pk}/").content.decode()
    assert "LIS-UNKNOWN-9" in detail and "laboratory&#x27;s code" in detail

    response = staff.post(f"/matching/{fhir_item.pk}/", {"action": "confirm", "sample": sample.number})
    assert response.status_code == 302
    sample.refresh_from_db()
    assert sample.state == S.RESULT and sample.result_value.code == "positive"
    assert sample.answers == {"95419-8": "Y"}  # the order's answer came with the result
    intake = Intake.objects.get(pk=fhir_item.intake_id)
    assert intake.held == 0  # the result and its companion entries (specimen, report...) are settled together
    assert [i.pk for i in IntakeItem.objects.filter(superseded_by__isnull=True, outcome="held")] == [hl7_item.pk]


def test_a_held_result_is_dismissed_with_a_reason(client, world, sample):
    from muestra.audit.models import AuditEntry

    item = _hold(client, world, sample)
    staff = login_with_second_factor(client, world.users["lab_x"])
    refused = staff.post(f"/matching/{item.pk}/", {"action": "dismiss", "reason": "   "})
    assert refused.status_code == 200 and 'role="alert"' in refused.content.decode()
    item.refresh_from_db()
    assert item.superseded_by_id is None

    response = staff.post(f"/matching/{item.pk}/", {"action": "dismiss", "reason": "Duplicate of LIS-87"})
    assert response.status_code == 302 and response["Location"] == "/matching/"
    item.refresh_from_db()
    new = IntakeItem.objects.get(pk=item.superseded_by_id)
    assert (new.outcome, new.sample_id) == ("rejected", None)
    assert new.data["dismiss_reason"] == "Duplicate of LIS-87" and new.data["dismissed_from"] == item.pk
    assert "Duplicate of LIS-87" in new.errors[0]["message"]
    intake = Intake.objects.get(pk=item.intake_id)
    assert (intake.held, intake.rejected) == (0, 1)
    entry = AuditEntry.objects.filter(action="intake.item_dismissed").get()
    assert entry.object_id == str(new.pk) and "Duplicate" not in str(entry.data)
    sample.refresh_from_db()
    assert sample.state == S.RECEIVED
    assert "(0)" in staff.get("/matching/").content.decode()
    assert staff.get(f"/matching/{item.pk}/").status_code == 404


def test_a_settled_item_cannot_be_dismissed_or_matched_again(client, world, sample):
    from muestra.core.errors import Conflict, NotFound
    from muestra.integrations import matching

    item = _hold(client, world, sample)
    lab_x, lab_y = world.actors["lab_x"], world.actors["lab_y"]
    with pytest.raises(NotFound):
        matching.held_dismiss(actor=lab_y, item_id=item.pk, reason="not ours")
    with pytest.raises(NotFound):
        matching.held_resolve(actor=lab_y, item_id=item.pk, sample_id=sample.pk)
    assert matching.held_get(lab_y, item.pk) is None and not matching.held_items(lab_y).exists()
    matching.held_resolve(actor=lab_x, item_id=item.pk, sample_id=sample.pk)
    with pytest.raises(Conflict):
        matching.held_dismiss(actor=lab_x, item_id=item.pk, reason="not ours")
    with pytest.raises(Conflict):
        matching.held_resolve(actor=lab_x, item_id=item.pk, sample_id=sample.pk)


def test_other_labs_cannot_dismiss(client, world, sample):
    item = _hold(client, world, sample)
    fhir_item = _hold_fhir(world)
    lab_y = login_with_second_factor(client, world.users["lab_y"])
    for held in (item, fhir_item):
        assert lab_y.get(f"/matching/{held.pk}/").status_code == 404
        assert lab_y.post(f"/matching/{held.pk}/", {"action": "dismiss", "reason": "not ours"}).status_code == 404
        held.refresh_from_db()
        assert held.superseded_by_id is None
    assert "LIS-UNKNOWN-9" not in lab_y.get("/matching/").content.decode()
