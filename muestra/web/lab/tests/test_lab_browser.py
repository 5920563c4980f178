# mypy: disable-error-code="union-attr"
"""The laboratory's journey in Debian's Chromium at phone (360 px) and desktop (1280 px) widths: receive a shipment
by scanning (one tube missing, one damaged), reject a sample, enter a result with its PDF, the result grid with a
good and a bad row; then the national administrator authorises a late correction. Screenshots in test-artifacts/."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import CorrectionRequest, Result, Sample, SampleState, Shipment
from muestra.web.testing import chromium_available, current_code, shot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
]

S = SampleState
PDF = {"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n% signed\n%%EOF\n"}
NOT_PDF = {"name": "photo.pdf", "mimeType": "application/pdf", "buffer": b"\x89PNG not a pdf"}


def _prepare(world: Any) -> dict[str, Any]:
    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    box = [services.sample_register(actor=taker, data=sample_input())[0] for _ in range(4)]
    shipment = services.shipment_create(
        actor=taker, establishment_code="113100", laboratory_id=1000000001, sample_ids=[s.pk for s in box]
    )
    services.shipment_dispatch(actor=taker, shipment_id=shipment.pk)
    old = sample_in_state(
        S.DISPATCHED, taker=taker, lab=lab, data=sample_input(collected_at=timezone.now() - timedelta(hours=30))
    )
    grid = [sample_in_state(S.RECEIVED, taker=taker, lab=lab) for _ in range(2)]
    late = sample_in_state(S.RESULT, taker=taker, lab=lab)
    Result.objects.filter(sample=late).update(entered_at=timezone.now() - timedelta(days=10))
    request, _ = services.correction_request_create(
        actor=lab, sample_id=late.pk, proposed_value="positive", reason="Transcription error found in review"
    )
    return {"shipment": shipment, "box": box, "old": old, "grid": grid, "request": request}


def _sign_in(page: Any, base: str, user: Any) -> None:
    current_code(user)  # a confirmed authenticator first: without one, sign-in would go to the enrolment page
    sign_in(page, base, user)


def _scan(page: Any, selector: str, code: str) -> str:
    """Types a code into a scan input and presses Enter, as a keyboard-wedge scanner does; returns the outcome."""
    box = f"form:has({selector}) [data-scan-feedback]"
    page.eval_on_selector(box, "el => el.replaceChildren()")  # so that only the new answer is waited for
    field = page.locator(selector)
    field.fill(code)
    field.press("Enter")
    feedback = page.locator(f"{box} [data-scan-outcome]")
    feedback.filter(has_text=code).wait_for()
    return str(feedback.get_attribute("data-scan-outcome"))


@pytest.mark.parametrize("width,height", [(360, 780), (1280, 900)])
def test_lab_journey_and_late_correction(live_server, world, browser, width, height):
    data = _prepare(world)
    base = live_server.url
    shipment, box = data["shipment"], data["box"]
    arrived, damaged, missing, second = box
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
    page = context.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)

    _sign_in(page, base, world.users["lab_x"])
    page.goto(f"{base}/lab/")
    assert page.locator("tr.row-overdue .overdue").count() >= 1
    shot(page, f"lab-worklist-{width}")

    # --- a shipment, by scanning its manifest and then its tubes --------------------------------------------------
    page.goto(f"{base}/lab/receive/")
    page.wait_for_function("document.documentElement.dataset.scanReady === '1'")
    has_camera_api = page.evaluate("!!(navigator.mediaDevices && 'BarcodeDetector' in window)")
    assert page.locator("button.scan-camera").count() == (2 if has_camera_api else 0)
    shot(page, f"lab-receive-start-{width}")
    page.locator("#id_manifest").fill(str(shipment.number))
    page.locator("#id_manifest").press("Enter")
    page.locator("#id_shipment_code").wait_for()
    assert _scan(page, "#id_shipment_code", str(arrived.number)) == "ok"
    assert page.evaluate("document.activeElement.id") == "id_shipment_code"
    assert page.locator("#id_shipment_code").input_value() == ""
    assert _scan(page, "#id_shipment_code", str(second.number)) == "ok"
    assert _scan(page, "#id_shipment_code", str(arrived.number)) == "warn"
    assert _scan(page, "#id_shipment_code", str(data["old"].number)) == "error"  # not in this box
    page.reload()  # the scans are kept on the server
    assert page.locator(f'tr[data-tube="{arrived.number}"].tube-arrived').count() == 1
    page.locator("details.damage summary").click()
    page.locator("#id_sample").select_option(str(damaged.pk))
    page.locator("#id_reason").fill("Cracked tube")
    shot(page, f"lab-receive-scanning-{width}")
    page.locator("details.damage button[type=submit]").click()
    page.locator(f'tr[data-tube="{damaged.number}"].tube-damaged').wait_for()
    page.locator("#finish-receipt").click()
    page.wait_for_url("**/lab/receive/summary/")
    assert page.locator("#sum-missing").is_visible()
    assert str(missing.number) in page.inner_text("main")
    shot(page, f"lab-receive-summary-{width}")
    assert Shipment.objects.get(pk=shipment.pk).state == Shipment.State.RECEIVED
    assert Sample.objects.get(pk=missing.pk).state == S.DISPATCHED
    assert Sample.objects.get(pk=damaged.pk).state == S.REJECTED

    # --- the missing tube turns up: tube by tube -----------------------------------------------------------------
    page.goto(f"{base}/lab/receive/")
    assert _scan(page, "#id_tube_code", str(missing.number)) == "ok"
    assert _scan(page, "#id_tube_code", str(missing.number)) == "warn"  # scanned twice: already received
    shot(page, f"lab-receive-tube-{width}")
    assert Sample.objects.get(pk=missing.pk).state == S.RECEIVED

    # --- reject one, enter a result with its PDF --------------------------------------------------------------------
    page.goto(f"{base}/lab/samples/{data['old'].number}/")
    page.locator("#action-reject summary").click()
    page.locator("#id_reject-reason").select_option("poorly-collected")
    shot(page, f"lab-sample-reject-{width}")
    page.locator("#action-reject button[type=submit]").click()
    page.locator('[data-state="rejected"]').wait_for()
    assert Sample.objects.get(pk=data["old"].pk).state == S.REJECTED

    page.goto(f"{base}/lab/samples/{arrived.number}/")
    page.locator("#id_result-value").select_option("negative")
    page.locator("#id_result-report").set_input_files(NOT_PDF)
    page.locator("#action-result button[type=submit]").click()
    page.locator("#id_result-report_error").wait_for()
    shot(page, f"lab-sample-result-error-{width}")
    page.locator("#id_result-report").set_input_files(PDF)
    page.locator("#action-result button[type=submit]").click()
    page.locator('[data-state="result"]').wait_for()
    shot(page, f"lab-sample-result-{width}")
    assert Sample.objects.get(pk=arrived.pk).result_value.code == "negative"

    # --- the grid: one good row, one bad row ----------------------------------------------------------------------
    good, bad = data["grid"]
    page.goto(f"{base}/lab/results/")
    shot(page, f"lab-results-grid-{width}")
    page.locator(f"#id_r{good.pk}-value").select_option("negative")
    page.locator(f"#id_r{good.pk}-report").set_input_files(PDF)
    page.locator(f"#id_r{bad.pk}-value").select_option("positive")
    page.locator(f"#id_r{bad.pk}-report").set_input_files(NOT_PDF)
    page.locator(".results-grid-form button[type=submit]").click()
    page.locator("#grid-summary").wait_for()
    assert page.locator(f'tr[data-sample="{good.number}"].row-saved').count() == 1
    assert page.locator(f'tr[data-sample="{bad.number}"].row-error').count() == 1
    assert page.locator(f"#id_r{bad.pk}-value").input_value() == "positive"
    shot(page, f"lab-results-grid-outcome-{width}")
    assert Sample.objects.get(pk=good.pk).state == S.RESULT
    assert Sample.objects.get(pk=bad.pk).state == S.RECEIVED

    page.goto(f"{base}/lab/samples/{data['request'].sample.number}/")
    shot(page, f"lab-sample-correction-pending-{width}")

    # --- the national administrator authorises the late correction ------------------------------------------------
    page.locator("form.logout-form button").click()
    _sign_in(page, base, world.users["admin"])
    page.goto(f"{base}/corrections/")
    shot(page, f"corrections-list-{width}")
    page.locator(f'a[href="/corrections/{data["request"].pk}/"]').click()
    page.locator("#id_note").fill("Confirmed with the laboratory")
    shot(page, f"corrections-decide-{width}")
    page.locator('button[value="authorise"]').click()
    page.wait_for_url("**/corrections/")
    shot(page, f"corrections-after-{width}")
    assert CorrectionRequest.objects.get(pk=data["request"].pk).state == CorrectionRequest.State.AUTHORISED

    assert csp_errors == []
    context.close()
