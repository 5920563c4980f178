"""The territory list in Chromium at phone and desktop widths: filter, open the result, export CSV and XLSX."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from muestra.demo.builders import patient_input, sample_in_state, sample_input
from muestra.samples.models import SampleState
from muestra.web.testing import chromium_available, current_code, shot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
]


def test_viewer_filters_and_exports_at_phone_and_desktop_widths(live_server, world, browser):
    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    positive = sample_in_state(
        SampleState.RESULT,
        taker=taker,
        lab=lab,
        result="positive",
        data=sample_input(patient=patient_input(given_names="María José", surname="González")),
    )
    for _ in range(3):
        sample_in_state(SampleState.DISPATCHED, taker=taker, lab=lab)
    other_region = sample_in_state(
        SampleState.REGISTERED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(establishment="105100", laboratory=1000000002),
    )
    viewer = world.users["viewer_rm"]
    current_code(viewer)
    for width, height in ((360, 780), (1280, 900)):
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale="es-CL", accept_downloads=True
        )
        page = context.new_page()
        sign_in(page, live_server.url, viewer)
        page.locator('[data-nav="territory"]').click()
        page.wait_for_url("**/territory/")
        assert page.locator(f"text={positive.number}").count() == 1
        assert page.locator(f"text={other_region.number}").count() == 0
        shot(page, f"territory-list-{width}")

        page.locator("#id_result").select_option("positive")
        page.locator("main form button[type=submit]").click()
        page.wait_for_url("**/territory/?*result=positive*")
        page.wait_for_load_state("networkidle")
        rows = page.locator("table.territory-list tbody tr")
        assert rows.count() == 1
        assert "María José" in rows.first.inner_text()
        shot(page, f"territory-list-filtered-{width}")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"

        with page.expect_download() as download_info:
            page.locator('[data-export="csv"]').click()
        text = Path(download_info.value.path()).read_text(encoding="utf-8")
        exported = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
        assert [r[0] for r in exported[1:]] == [str(positive.number)]

        with page.expect_download() as download_info:
            page.locator('[data-export="xlsx"]').click()
        assert download_info.value.suggested_filename.endswith(".xlsx")
        with open(download_info.value.path(), "rb") as handle:
            book = load_workbook(io.BytesIO(handle.read()), read_only=True)
        values = list(book.active.iter_rows(values_only=True))
        assert [str(r[0]) for r in values[1:]] == [str(positive.number)]
        context.close()
