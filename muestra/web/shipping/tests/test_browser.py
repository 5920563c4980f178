# mypy: disable-error-code="union-attr,arg-type,attr-defined"
"""Browser journey of the establishment side (Playwright, Debian Chromium), at 360 px and 1280 px: a taker selects
two registered samples in "My samples", prints their label sheet, opens a shipment, scans both tubes (typed number +
Enter, as a keyboard-wedge scanner does), sees each scan's outcome, dispatches, downloads the manifest, and reads a
sample's timeline. Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples.models import Sample, SampleState, Shipment
from muestra.web.testing import chromium_available, shot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
]


def _fits(page: Any, width: int) -> None:
    """Nothing wider than the window: no sideways scrolling of the page (wide tables scroll inside their box)."""
    wide = page.evaluate(
        """(width) => Array.from(document.querySelectorAll('body *'))
            .filter((el) => el.getBoundingClientRect().right > width + 1)
            .filter((el) => !(el.parentElement && el.parentElement.closest('.table-wrap')))
            .map((el) => el.tagName + '.' + el.className + '#' + el.id).slice(0, 5)""",
        width,
    )
    assert not wide, wide
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _pdf_from(page: Any, click: Any, url_part: str, screenshot: str) -> bytes:
    """Clicks something that opens a PDF, checks that the server answered a PDF, and returns it.

    Chromium shows a PDF in its own viewer (whose page is not the PDF), so the URL the browser opened is fetched
    again with the browser's cookies to read the document; the viewer is photographed for a person to look at."""
    with page.expect_response(lambda r: url_part in r.url) as info:
        click()
    response = info.value
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    page.wait_for_timeout(1500)  # the viewer draws the document
    shot(page, screenshot)
    again = page.request.get(response.url)
    assert again.status == 200
    body: bytes = again.body()
    assert body.startswith(b"%PDF-")
    return body


@pytest.mark.parametrize("width,height", [(360, 780), (1280, 900)])
def test_taker_prints_labels_builds_and_dispatches_a_shipment(live_server, world, browser, width, height):
    base = live_server.url
    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    first = sample_in_state(SampleState.REGISTERED, taker=taker, lab=lab)
    second = sample_in_state(SampleState.REGISTERED, taker=taker, lab=lab)
    sample_in_state(SampleState.RESULT, taker=taker, lab=lab)  # something in another tab
    other = sample_in_state(
        SampleState.REGISTERED, taker=world.actors["taker_b"], lab=lab, data=sample_input(establishment="105100")
    )

    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
    page = context.new_page()
    sign_in(page, base, world.users["taker_a"])
    # English screens for the assertions below (the language switcher of the page shell).
    page.locator("#language-select").select_option("en")
    page.locator(".lang-form button[type=submit]").click()
    page.wait_for_load_state()

    # My samples: the "to send" tab lists both registered samples with their counts.
    page.locator('[data-nav="mysamples"]').click()
    page.wait_for_url(f"{base}/samples/")
    assert page.locator('[data-tab="to_send"] .count').inner_text() == "2"
    assert page.locator('[data-tab="result"] .count').inner_text() == "1"
    assert page.locator(f"#pick-{other.number}").count() == 0
    page.locator(f'label[for="pick-{first.number}"]').click()
    page.locator(f'label[for="pick-{second.number}"]').click()
    shot(page, f"mysamples-list-{width}")
    _fits(page, width)
    sheet = _pdf_from(
        page, lambda: page.locator("[data-print-labels]").click(), "/samples/labels.pdf", f"labels-sheet-{width}"
    )
    assert sheet.count(b"/Type /Page\n") == 1

    # Search by the patient's document narrows the list.
    page.goto(f"{base}/samples/")
    document = Sample.objects.select_related("patient").get(pk=first.pk).patient.document_number
    page.locator("#id_q").fill(document)
    page.locator("#id_q").press("Enter")
    expect(page.locator("table.samples tbody tr")).to_have_count(1)
    assert page.locator(f"#pick-{first.number}").count() == 1
    shot(page, f"mysamples-search-{width}")

    # A new shipment to lab X.
    page.locator('[data-nav="shipping"]').click()
    page.wait_for_url(f"{base}/shipments/**")
    shot(page, f"shipments-empty-{width}")
    page.locator('[data-action="new-shipment"]').click()
    page.wait_for_url(f"{base}/shipments/new/")
    shot(page, f"shipment-new-{width}")
    page.locator("#id_laboratory").select_option("1000000001")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{base}/shipments/*/")
    shipment = Shipment.objects.latest("pk")

    # Scan both tubes: type the number and Enter, as a keyboard-wedge scanner does.
    scan = page.locator("input[data-scan]")
    scan.fill(str(first.number))
    scan.press("Enter")
    page.locator('[data-scan-outcome="ok"]').wait_for()
    assert page.locator(f'tr[data-tube="{first.number}"]').count() == 1
    scan.fill(str(first.number))  # the same tube again: a warning, nothing added
    scan.press("Enter")
    page.locator('[data-scan-outcome="warn"]').wait_for()
    shot(page, f"shipment-scan-warn-{width}")
    scan.fill(str(other.number))  # another establishment's tube: refused, not revealed
    scan.press("Enter")
    page.locator('[data-scan-outcome="error"]').wait_for()
    shot(page, f"shipment-scan-error-{width}")
    scan.fill(str(second.number))
    scan.press("Enter")
    page.locator(f'tr[data-tube="{second.number}"]').wait_for()
    assert page.locator('[data-scan-outcome="ok"]').count() == 1
    assert page.locator("#shipment-items tbody tr").count() == 2
    shot(page, f"shipment-scanned-{width}")
    _fits(page, width)

    page.locator("#dispatch-button").click()
    page.wait_for_load_state()
    page.locator(f'[data-state="{Shipment.State.DISPATCHED}"]').wait_for()
    assert set(Sample.objects.filter(pk__in=[first.pk, second.pk]).values_list("state", flat=True)) == {
        SampleState.DISPATCHED
    }
    shot(page, f"shipment-dispatched-{width}")
    _pdf_from(
        page,
        lambda: page.locator('[data-action="manifest"]').click(),
        f"/shipments/{shipment.number}/manifest",
        f"shipment-manifest-{width}",
    )

    # The sample's page shows its timeline up to the dispatch, and no cancel any more.
    page.goto(f"{base}/samples/{first.number}/")
    assert page.locator('[data-event="dispatched"]').count() == 1
    assert page.locator('[data-action="cancel"]').count() == 0
    assert page.locator('[data-action="edit"]').count() == 1
    shot(page, f"mysamples-detail-{width}")
    _fits(page, width)
    # Edit and cancel a sample still to send.
    spare = sample_in_state(SampleState.REGISTERED, taker=taker, lab=lab)
    page.goto(f"{base}/samples/{spare.number}/")
    page.locator('[data-action="edit"]').click()
    page.wait_for_url(f"{base}/samples/{spare.number}/edit/")
    page.locator("#id_surveillance_number").fill("ENO-2026-1")
    shot(page, f"mysamples-edit-{width}")
    _fits(page, width)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{base}/samples/{spare.number}/")
    assert page.locator('[data-event="edited"]').count() == 1
    page.locator('[data-action="cancel"]').click()
    page.locator("#id_reason").fill("Registered twice")
    shot(page, f"mysamples-cancel-{width}")
    page.locator("main form button[type=submit]").click()
    page.locator('[data-state="cancelled"]').wait_for()
    assert Sample.objects.get(pk=spare.pk).state == SampleState.CANCELLED

    page.goto(f"{base}/shipments/")
    page.locator('[data-tab="dispatched"]').click()
    page.wait_for_load_state()
    shot(page, f"shipments-list-{width}")
    context.close()
