# mypy: disable-error-code="union-attr,arg-type"
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
    staff = login_with_second_factor(client, world.users["lab_x"])
    staff.get("/matching/")
    with django_assert_max_num_queries(12):
        staff.get("/matching/")
    for i in range(12):
        _hold(client, world, sample, specimen=f"TUBE-B-{i}")
    with django_assert_max_num_queries(12):  # the same bound with five times the rows
        assert staff.get("/matching/").status_code == 200
