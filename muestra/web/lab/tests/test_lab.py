# mypy: disable-error-code="union-attr"
"""The laboratory screens: worklists, receiving by scanning (shipment and tube by tube), the actions on one sample,
result entry with a signed PDF, the result grid; who may open them; bounded queries whatever the row count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import in_english, login_with_second_factor
from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import Result, Sample, SampleState, Shipment, ShipmentItem
from muestra.samples.tests.support import assert_unchanged, db_state

S = SampleState
WORKLIST = reverse("lab:worklist")
RECEIVE = reverse("lab:receive")
RESULTS = reverse("lab:results")
PDF = b"%PDF-1.4\n% signed report\n%%EOF\n"


def pdf(name: str = "report.pdf", content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


@pytest.fixture
def lab_client(client, world):
    return in_english(login_with_second_factor(client, world.users["lab_x"]))


def client_for(world: Any, name: str) -> Any:
    from django.test import Client

    c = in_english(Client())
    if name in {"taker_a", "taker_b", "citizen"}:
        c.force_login(world.users[name])
    else:
        login_with_second_factor(c, world.users[name])
    return c


def dispatched_box(world: Any, n: int, **data: Any) -> tuple[Shipment, list[Sample]]:
    """n samples of establishment A for lab X in one dispatched shipment."""
    taker = world.actors["taker_a"]
    samples = [services.sample_register(actor=taker, data=sample_input(**data))[0] for _ in range(n)]
    shipment = services.shipment_create(
        actor=taker, establishment_code="113100", laboratory_id=1000000001, sample_ids=[s.pk for s in samples]
    )
    services.shipment_dispatch(actor=taker, shipment_id=shipment.pk)
    return shipment, samples


def received(world: Any, n: int, **data: Any) -> list[Sample]:
    _shipment, samples = dispatched_box(world, n, **data)
    services.samples_receive(actor=world.actors["lab_x"], sample_ids=[s.pk for s in samples])
    return samples


def sample_url(sample: Sample) -> str:
    return reverse("lab:sample", args=[sample.number])


# --- navigation and access -------------------------------------------------------------------------------------


def test_navigation_shows_lab_entries_only_to_lab_roles(world):
    lab_page = client_for(world, "lab_x").get("/").content.decode()
    assert 'data-nav="lab-worklist"' in lab_page and 'data-nav="lab-receive"' in lab_page
    assert 'data-nav="lab-results"' in lab_page
    for who in ("taker_a", "viewer_rm", "admin"):
        assert 'data-nav="lab-' not in client_for(world, who).get("/").content.decode()


@pytest.mark.parametrize("who", ["taker_a", "citizen", "admin", "viewer_rm"])
def test_lab_pages_do_not_exist_for_other_roles(world, who):
    sample = received(world, 1)[0]
    c = client_for(world, who)
    for url in (WORKLIST, RECEIVE, RESULTS, sample_url(sample)):
        assert c.get(url).status_code == 404, (who, url)
    assert c.post(reverse("lab:receive_tube"), {"code": str(sample.number)}).status_code == 404


# --- worklists -------------------------------------------------------------------------------------------------


def test_worklists_by_tab_with_counts_and_overdue_age(world, lab_client):
    _box, (late, fresh) = dispatched_box(world, 2)
    Sample.objects.filter(pk=late.pk).update(collected_at=timezone.now() - timedelta(hours=30))
    in_process = received(world, 1)[0]
    rejected = sample_in_state(S.REJECTED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    finished = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    of_lab_y = sample_in_state(
        S.DISPATCHED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(establishment="105100", laboratory=1000000002),
    )

    page = lab_client.get(WORKLIST).content.decode()
    assert f'href="{reverse("lab:sample", args=[late.number])}"' in page
    assert str(fresh.number) in page and str(in_process.number) not in page
    assert str(of_lab_y.number) not in page
    # counts per tab
    assert 'data-tab="to_receive"' in page
    counts = {
        tab: page.split(f'data-tab="{tab}"')[1].split('class="count">')[1].split("<")[0]
        for tab in ("to_receive", "in_process", "finished", "rejected")
    }
    assert counts == {"to_receive": "2", "in_process": "1", "finished": "1", "rejected": "1"}
    # the late sample is highlighted with a class and words, not colour only; the fresh one is not
    late_row = page.split(f"{late.number}</a>")[0].rsplit("<tr", 1)[1]
    assert 'class="row-overdue"' in late_row
    late_cells = page.split(f"{late.number}</a>")[1].split("</tr>")[0]
    assert 'class="overdue"' in late_cells and "30 h" in late_cells and "past target" in late_cells
    fresh_cells = page.split(f"{fresh.number}</a>")[1].split("</tr>")[0]
    assert "overdue" not in fresh_cells

    page = lab_client.get(WORKLIST + "?tab=in_process").content.decode()
    assert str(in_process.number) in page and str(late.number) not in page
    assert str(finished.number) in lab_client.get(WORKLIST + "?tab=finished").content.decode()
    assert str(rejected.number) in lab_client.get(WORKLIST + "?tab=rejected").content.decode()
    assert lab_client.get(WORKLIST + "?tab=nonsense").status_code == 200


def test_worklist_target_hours_is_a_setting(world, lab_client, settings):
    _box, (sample,) = dispatched_box(world, 1)  # collected 2 hours ago
    settings.MUESTRA = {**settings.MUESTRA, "LAB_TARGET_HOURS": 1}
    page = lab_client.get(WORKLIST).content.decode()
    assert 'class="overdue"' in page.split(f"{sample.number}</a>")[1].split("</tr>")[0]


def test_lab_y_sees_none_of_lab_x_samples(world):
    _box, samples = dispatched_box(world, 2)
    c = client_for(world, "lab_y")
    page = c.get(WORKLIST).content.decode()
    assert all(str(s.number) not in page for s in samples)
    assert c.get(sample_url(samples[0])).status_code == 404
    assert c.get(reverse("lab:sample", args=[10**9 + 10**6])).status_code == 404  # missing: same answer


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_worklist_and_grid_queries_do_not_grow_with_rows(world, lab_client, django_assert_max_num_queries):
    received(world, 2)
    dispatched_box(world, 2)
    urls = (WORKLIST, WORKLIST + "?tab=in_process", RESULTS)
    for url in urls:
        lab_client.get(url)  # warm the look-up cache
    few = {url: _queries(lab_client, url) for url in urls}
    received(world, 20)
    dispatched_box(world, 20)
    many = {url: _queries(lab_client, url) for url in few}
    assert many == few
    with django_assert_max_num_queries(15):
        lab_client.get(WORKLIST + "?tab=in_process")


# --- receiving a shipment by scanning --------------------------------------------------------------------------


def test_receive_a_shipment_by_scanning_with_a_missing_and_a_damaged_tube(world, lab_client):
    shipment, (a, b, damaged, missing) = dispatched_box(world, 4)
    stranger = sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    page = lab_client.get(RECEIVE).content.decode()
    assert str(shipment.number) in page  # listed among the shipments on their way
    assert "data-scan" in page and "web/scan.js" in page

    response = lab_client.post(reverse("lab:receive_start"), {"manifest": str(shipment.number)})
    assert response.status_code == 302
    page = lab_client.get(RECEIVE).content.decode()
    assert all(f'data-tube="{s.number}"' in page for s in (a, b, damaged, missing))

    htmx = {"HTTP_HX_REQUEST": "true"}
    scan = reverse("lab:receive_scan")
    answer = lab_client.post(scan, {"code": str(a.number)}, **htmx).content.decode()
    assert 'data-scan-outcome="ok"' in answer and 'hx-swap-oob="true"' in answer
    assert 'data-scan-outcome="warn"' in lab_client.post(scan, {"code": str(a.number)}, **htmx).content.decode()
    answer = lab_client.post(scan, {"code": str(stranger.number)}, **htmx).content.decode()
    assert 'data-scan-outcome="error"' in answer and "not in this shipment" in answer
    answer = lab_client.post(scan, {"code": "no-such-code"}, **htmx).content.decode()
    assert 'data-scan-outcome="error"' in answer
    # without JavaScript: plain POST, redirect, the answer shown on the page
    assert lab_client.post(scan, {"code": str(b.number)}).status_code == 302
    page = lab_client.get(RECEIVE).content.decode()
    assert 'data-scan-outcome="ok"' in page

    # a damaged tube needs a reason
    bad = lab_client.post(reverse("lab:receive_damage"), {"sample": str(damaged.pk), "reason": ""})
    assert bad.status_code == 422 and 'id="id_reason_error"' in bad.content.decode()
    lab_client.post(reverse("lab:receive_damage"), {"sample": str(damaged.pk), "reason": "cracked tube"})

    # nothing is recorded before "finish", and a reload keeps the scans (session)
    assert Sample.objects.get(pk=a.pk).state == S.DISPATCHED
    page = lab_client.get(RECEIVE).content.decode()
    assert page.count("✓ Arrived") == 2 and "cracked tube" in page

    response = lab_client.post(reverse("lab:receive_finish"))
    assert response.status_code == 302 and response["Location"] == reverse("lab:receive_summary")
    summary = lab_client.get(response["Location"]).content.decode()
    assert str(missing.number) in summary and "cracked tube" in summary and str(stranger.number) in summary
    states = {s.pk: Sample.objects.get(pk=s.pk).state for s in (a, b, damaged, missing)}
    assert states == {a.pk: S.RECEIVED, b.pk: S.RECEIVED, damaged.pk: S.REJECTED, missing.pk: S.DISPATCHED}
    assert ShipmentItem.objects.get(shipment=shipment, sample=damaged).note == "cracked tube"
    assert Shipment.objects.get(pk=shipment.pk).state == Shipment.State.RECEIVED
    assert "lab_receive" not in lab_client.session


def test_a_manifest_of_another_lab_or_not_dispatched_is_refused_without_detail(world, lab_client):
    taker_b = world.actors["taker_b"]
    sample, _ = services.sample_register(
        actor=taker_b, data=sample_input(establishment="105100", laboratory=1000000002)
    )
    of_lab_y = services.shipment_create(
        actor=taker_b, establishment_code="105100", laboratory_id=1000000002, sample_ids=[sample.pk]
    )
    services.shipment_dispatch(actor=taker_b, shipment_id=of_lab_y.pk)
    taker = world.actors["taker_a"]
    own, _ = services.sample_register(actor=taker, data=sample_input())
    not_dispatched = services.shipment_create(
        actor=taker, establishment_code="113100", laboratory_id=1000000001, sample_ids=[own.pk]
    )
    for code, expected in (
        (str(of_lab_y.number), "No shipment with number"),
        (str(10**9 + 999_999), "No shipment with number"),
        (str(not_dispatched.number), "not been dispatched"),
        ("", "This field is required"),
    ):
        response = lab_client.post(reverse("lab:receive_start"), {"manifest": code})
        page = response.content.decode()
        assert response.status_code == 422 and expected in page and 'id="id_manifest_error"' in page
    assert "lab_receive" not in lab_client.session


def test_receive_tube_by_tube_is_idempotent_and_scoped(world, lab_client):
    _box, (sample,) = dispatched_box(world, 1)
    url = reverse("lab:receive_tube")
    htmx = {"HTTP_HX_REQUEST": "true"}
    assert 'data-scan-outcome="ok"' in lab_client.post(url, {"code": str(sample.number)}, **htmx).content.decode()
    assert Sample.objects.get(pk=sample.pk).state == S.RECEIVED
    assert 'data-scan-outcome="warn"' in lab_client.post(url, {"code": str(sample.number)}, **htmx).content.decode()

    other = client_for(world, "lab_y")
    _box, (second,) = dispatched_box(world, 1)
    before = db_state(second.pk)
    answer = other.post(url, {"code": str(second.number)}, **htmx).content.decode()
    assert 'data-scan-outcome="error"' in answer and "addressed to your laboratory" in answer
    assert_unchanged(before, second.pk)
    # the log of this bench survives a reload
    assert lab_client.post(url, {"code": "   "}).status_code == 302
    page = lab_client.get(RECEIVE).content.decode()
    assert page.count('class="feedback') >= 3


# --- one sample ------------------------------------------------------------------------------------------------


def test_reject_with_an_official_reason(world, lab_client):
    _box, (sample,) = dispatched_box(world, 1)
    page = lab_client.get(sample_url(sample)).content.decode()
    assert 'value="poorly-collected"' in page
    before = db_state(sample.pk)
    bad = lab_client.post(sample_url(sample), {"action": "reject", "reject-reason": "made-up"})
    assert bad.status_code == 422 and 'id="id_reject-reason_error"' in bad.content.decode()
    assert_unchanged(before, sample.pk)
    response = lab_client.post(sample_url(sample), {"action": "reject", "reject-reason": "poorly-collected"})
    assert response.status_code == 302
    stored = Sample.objects.get(pk=sample.pk)
    assert stored.state == S.REJECTED and stored.rejection_reason.code == "poorly-collected"


def test_return_and_forward(world, lab_client):
    _box, (to_return, to_forward) = dispatched_box(world, 2)
    before = db_state(to_return.pk)
    bad = lab_client.post(sample_url(to_return), {"action": "return", "return-reason": ""})
    assert bad.status_code == 422 and 'id="id_return-reason_error"' in bad.content.decode()
    assert_unchanged(before, to_return.pk)
    lab_client.post(sample_url(to_return), {"action": "return", "return-reason": "No capacity"})
    assert Sample.objects.get(pk=to_return.pk).state == S.RETURNED

    page = lab_client.get(sample_url(to_forward)).content.decode()
    assert 'value="1000000002"' in page and 'value="1000000001"' not in page
    response = lab_client.post(sample_url(to_forward), {"action": "forward", "forward-laboratory": "1000000002"})
    assert response.status_code == 302
    assert Sample.objects.get(pk=to_forward.pk).laboratory == world.lab_y
    assert lab_client.get(sample_url(to_forward)).status_code == 404  # now lab Y's


def test_result_entry_with_a_signed_pdf(world, lab_client):
    sample = received(world, 1)[0]
    before = db_state(sample.pk)
    for upload, message in (
        (None, "signed report file is required"),
        (pdf("report.pdf", b"GIF89a not a pdf"), "must be a PDF"),
        (pdf("empty.pdf", b""), "empty"),
    ):
        data: dict[str, Any] = {"action": "result", "result-value": "negative"}
        if upload is not None:
            data["result-report"] = upload
        response = lab_client.post(sample_url(sample), data)
        page = response.content.decode()
        assert response.status_code == 422 and message in page and 'id="id_result-report_error"' in page
        assert 'value="negative" selected' in page  # what was chosen is kept
        assert_unchanged(before, sample.pk)

    response = lab_client.post(
        sample_url(sample), {"action": "result", "result-value": "negative", "result-report": pdf()}
    )
    assert response.status_code == 302
    stored = Sample.objects.get(pk=sample.pk)
    assert stored.state == S.RESULT and stored.result_value.code == "negative"
    result = Result.objects.get(sample=sample)
    assert result.report and result.report_content_type == "application/pdf"
    page = lab_client.get(sample_url(sample)).content.decode()
    assert "Correct the result" in page  # within the window


def test_report_size_limit_comes_from_settings(world, lab_client, settings):
    sample = received(world, 1)[0]
    settings.MUESTRA = {**settings.MUESTRA, "MAX_REPORT_BYTES": 10}
    response = lab_client.post(
        sample_url(sample), {"action": "result", "result-value": "negative", "result-report": pdf()}
    )
    assert response.status_code == 422 and "too large" in response.content.decode()
    assert Sample.objects.get(pk=sample.pk).state == S.RECEIVED


def test_correction_within_the_window_then_a_request_after_it(world, lab_client):
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(sample.pk)
    bad = lab_client.post(sample_url(sample), {"action": "correct", "correct-value": "positive", "correct-reason": ""})
    assert bad.status_code == 422 and 'id="id_correct-reason_error"' in bad.content.decode()
    assert_unchanged(before, sample.pk)
    lab_client.post(
        sample_url(sample),
        {"action": "correct", "correct-value": "positive", "correct-reason": "Typo", "correct-report": pdf()},
    )
    assert Sample.objects.get(pk=sample.pk).result_value.code == "positive"

    # a second correction needs an administrator: the page offers a request instead
    page = lab_client.get(sample_url(sample)).content.decode()
    assert 'id="action-request"' in page and 'id="action-correct"' not in page
    response = lab_client.post(
        sample_url(sample),
        {"action": "request", "request-proposed_value": "negative", "request-reason": "Second review"},
    )
    assert response.status_code == 302
    page = lab_client.get(sample_url(sample)).content.decode()
    assert "waiting for a national administrator" in page and "Second review" in page


def test_unknown_action_is_404(world, lab_client):
    sample = received(world, 1)[0]
    assert lab_client.post(sample_url(sample), {"action": "delete"}).status_code == 404


# --- result grid -----------------------------------------------------------------------------------------------


def test_result_grid_saves_good_rows_and_keeps_bad_ones(world, lab_client):
    good, bad, untouched = received(world, 3)
    page = lab_client.get(RESULTS).content.decode()
    assert all(f'data-sample="{s.number}"' in page for s in (good, bad, untouched))
    assert f'for="id_r{good.pk}-value"' in page and f'for="id_r{good.pk}-report"' in page

    data = {
        "row": [str(good.pk), str(bad.pk), str(untouched.pk)],
        f"r{good.pk}-value": "negative",
        f"r{good.pk}-report": pdf(),
        f"r{bad.pk}-value": "positive",
        f"r{bad.pk}-report": pdf("scan.pdf", b"not a pdf at all"),
    }
    before_bad, before_untouched = db_state(bad.pk), db_state(untouched.pk)
    response = lab_client.post(RESULTS, data)
    page = response.content.decode()
    assert response.status_code == 422
    assert "1 result saved." in page and "1 row has an error." in page
    assert Sample.objects.get(pk=good.pk).state == S.RESULT
    assert Sample.objects.get(pk=bad.pk).state == S.RECEIVED
    assert Sample.objects.get(pk=untouched.pk).state == S.RECEIVED
    bad_row = page.split(f'data-sample="{bad.number}"')[1].split("</tr>")[0]
    assert "must be a PDF" in bad_row and 'value="positive" selected' in bad_row and "again" in bad_row
    good_row = page.split(f'data-sample="{good.number}"')[1].split("</tr>")[0]
    assert "Saved" in good_row and 'name="row"' not in good_row
    assert Sample.objects.filter(pk__in=[bad.pk, untouched.pk], state=S.RESULT).count() == 0
    del before_bad, before_untouched

    # fixing the bad row and sending again saves it
    response = lab_client.post(
        RESULTS, {"row": [str(bad.pk)], f"r{bad.pk}-value": "positive", f"r{bad.pk}-report": pdf()}
    )
    assert response.status_code == 200 and Sample.objects.get(pk=bad.pk).state == S.RESULT


def test_result_grid_ignores_rows_of_another_lab(world):
    mine = received(world, 1)[0]
    other = client_for(world, "lab_y")
    before = db_state(mine.pk)
    response = other.post(RESULTS, {"row": [str(mine.pk)], f"r{mine.pk}-value": "negative"})
    assert response.status_code == 200 and str(mine.number) not in response.content.decode()
    assert_unchanged(before, mine.pk)
