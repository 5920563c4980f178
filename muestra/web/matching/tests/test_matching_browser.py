# mypy: disable-error-code="union-attr"
"""A lab's person matches a held HL7 result and dismisses a held FHIR one in Debian's Chromium at 360 px and
1280 px: the list of both channels, the search by the patient's document, the confirmation, the dismissal with a
reason. Screenshots in test-artifacts/."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muestra.demo.builders import sample_in_state
from muestra.integrations.fhir import ingest
from muestra.integrations.fhir.tests.conftest import load_bundle
from muestra.integrations.hl7 import processing
from muestra.integrations.hl7.tests.helpers import for_sample, message
from muestra.samples.models import SampleState
from muestra.web.testing import chromium_available, current_code, shot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
]


@pytest.mark.parametrize("width,height", [(360, 780), (1280, 900)])
def test_match_a_held_result(live_server, world, browser, width, height):
    sample = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    body = message(
        "oru_covid_several_obx.hl7",
        **for_sample(sample, specimen="LIS-TUBE-4471", placer="ORD-88123", filler="LIS-88123"),
    )
    answer = processing.receive(world.actors["key_lab_x"], body)
    assert "|W|" in answer.body
    bundle = load_bundle("document_lab_code", CLIENT_CODE="LIS-NOT-OURS-77")
    assert ingest.process_bundle(world.actors["key_lab_x"], json.dumps(bundle).encode()).status == 200

    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
    page = context.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    user: Any = world.users["lab_x"]
    current_code(user)
    sign_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/matching/")
    assert page.locator(".held-list li").count() == 2
    shot(page, f"matching-list-{width}")

    page.locator(".held-list a.button").first.click()
    page.wait_for_load_state()
    page.locator("#id_q").fill(sample.patient.document_number)
    page.locator("form.search-form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("form.candidate").count() == 1
    shot(page, f"matching-detail-{width}")

    page.locator("form.candidate button[type=submit]").click()
    page.wait_for_load_state()
    assert page.url.endswith("/matching/")
    shot(page, f"matching-done-{width}")
    sample.refresh_from_db()
    assert sample.state == SampleState.RESULT

    page.locator(".held-list a.button").first.click()  # the FHIR result, now the only one waiting
    page.wait_for_load_state()
    page.locator("#id_reason").fill("Duplicate of a result already recorded")
    shot(page, f"matching-dismiss-{width}")
    page.locator("button.danger").click()
    page.wait_for_load_state()
    assert page.url.endswith("/matching/")
    assert page.locator(".held-list li").count() == 0
    assert not csp_errors
    context.close()
