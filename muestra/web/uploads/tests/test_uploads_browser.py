"""Uploading a national results file in Chromium at phone and desktop widths, watching the progress bar (htmx
polling) go from waiting to done while the worker processes it, then reading the rejected rows."""

from __future__ import annotations

from typing import Any

import pytest

from muestra.integrations.bulk.processing import process_intake
from muestra.integrations.bulk.tests.helpers import FILES, national_results_file
from muestra.integrations.models import Intake
from muestra.web.testing import chromium_available, shot, sign_in
from muestra.web.tests.test_security_and_accessibility import FAILING_IMPACTS, _axe

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
]


def _check(page: Any, name: str, failures: list[str]) -> None:
    """A screenshot to look at, and axe-core's serious or critical violations."""
    page.wait_for_load_state("networkidle")
    shot(page, name)
    failures.extend(f"{name}: {v}" for v in _axe(page) if v["impact"] in FAILING_IMPACTS)


def test_lab_uploads_a_file_and_watches_it_reach_done(live_server, world, browser, tmp_path, settings):
    # The real queue (database backend): nothing processes the file until this test plays the worker.
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    lab = world.users["lab_x"]
    for width, height in ((360, 780), (1280, 900)):
        content, _samples = national_results_file(world)
        upload = tmp_path / f"resultados-{width}.csv"
        upload.write_bytes(content)
        context = browser.new_context(viewport={"width": width, "height": height}, locale="es-CL")
        page = context.new_page()
        refusals: list[str] = []
        page.on(
            "console",
            lambda msg, sink=refusals: sink.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        failures: list[str] = []

        sign_in(page, live_server.url, lab, language="en")
        page.locator('[data-nav="uploads"]').click()
        page.wait_for_url("**/uploads/")
        _check(page, f"uploads-list-{width}", failures)
        page.locator("input[value=results-national]").check()
        page.locator("#id_file").set_input_files(str(upload))
        page.locator("main form.upload-form button[type=submit]").click()
        page.wait_for_url("**/uploads/*/")
        assert page.locator("#upload-status").get_attribute("data-state") == "received"
        _check(page, f"uploads-waiting-{width}", failures)

        intake = Intake.objects.order_by("-pk").first()
        assert intake is not None
        process_intake(intake.pk, chunk_size=3)
        page.wait_for_selector('#upload-status[data-state="done"]', timeout=10_000)
        assert page.locator('[data-count="rejected"]').inner_text() == "9"
        assert page.locator("table.rejected-rows tbody tr").count() == 9
        _check(page, f"uploads-done-{width}", failures)
        assert failures == [] and refusals == [], (failures, refusals)
        context.close()
    assert FILES.exists()
