"""In Chromium at phone and desktop widths: lab X sees a failed upload row on the supervision page, fixes the
field on the page, processes it again and sees it accepted."""

from __future__ import annotations

from typing import Any

import pytest

from muestra.integrations.bulk import services as bulk_services
from muestra.integrations.bulk.templates import RESULTS_NATIONAL
from muestra.integrations.bulk.tests.helpers import received_sample, rows_csv
from muestra.samples.models import SampleState
from muestra.web.testing import chromium_available, shot, sign_in
from muestra.web.tests.test_security_and_accessibility import FAILING_IMPACTS, _axe

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
    pytest.mark.usefixtures("immediate_tasks"),
]


def _check(page: Any, name: str, failures: list[str]) -> None:
    page.wait_for_load_state("networkidle")
    shot(page, name)
    failures.extend(f"{name}: {v}" for v in _axe(page) if v["impact"] in FAILING_IMPACTS)


def test_lab_fixes_a_failed_row_and_sees_it_accepted(live_server, world, browser):
    lab = world.users["lab_x"]
    for width, height in ((360, 780), (1280, 900)):
        sample = received_sample(world)
        rows = [{"ID Muestra": str(sample.number), "ID Paciente": "11111111-1", "Resultado": "Muestra no apta"}]
        intake, _created = bulk_services.upload_submit(
            actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename=f"r{width}.csv", content=rows_csv(rows)
        )
        item = intake.items.get()
        context = browser.new_context(viewport={"width": width, "height": height}, locale="es-CL")
        page = context.new_page()
        refusals: list[str] = []
        page.on(
            "console",
            lambda msg, sink=refusals: sink.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        failures: list[str] = []

        sign_in(page, live_server.url, lab, language="en")
        page.locator('[data-nav="supervision"]').click()
        page.wait_for_url("**/supervision/")
        row = page.locator(f'tr[data-item="{item.pk}"]')
        assert "patient" in row.inner_text() and "11111111-1" in row.inner_text()  # the field and the reason
        _check(page, f"supervision-overview-{width}", failures)

        row.locator("a.button").click()
        page.wait_for_url(f"**/supervision/items/{item.pk}/")
        field = page.locator("#id_row-patient")
        assert field.get_attribute("aria-invalid") == "true" and field.input_value() == "11111111-1"
        _check(page, f"supervision-fix-{width}", failures)
        field.fill(sample.patient.document_number)
        page.locator("main form.fix-form button[type=submit]").click()
        page.wait_for_selector('#item-outcome[data-outcome="accepted"]')
        _check(page, f"supervision-fixed-{width}", failures)
        sample.refresh_from_db()
        assert sample.state == SampleState.RESULT
        assert failures == [] and refusals == [], (failures, refusals)
        context.close()
