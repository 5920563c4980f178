"""A sample taker registers a patient and two samples with the keyboard only, at phone and desktop widths."""

from __future__ import annotations

import time
from typing import Any

import pytest

from muestra.demo.builders import fresh_run
from muestra.patients.models import Patient
from muestra.samples.models import Sample
from muestra.web.testing import chromium_available, shot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
]


def focused_id(page: Any) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def wait_until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Polls `expression` from Python (wait_for_function would evaluate a string, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}; focus on #{focused_id(page)}")
        time.sleep(0.05)


def wait_focus(page: Any, element_id: str) -> None:
    wait_until(page, f"document.activeElement && document.activeElement.id === {element_id!r}")


def press_until(page: Any, element_id: str, key: str = "Enter", limit: int = 20) -> None:
    """Presses `key` (Enter moves to the next field) until the field `element_id` has the focus."""
    for _ in range(limit):
        if focused_id(page) == element_id:
            return
        page.keyboard.press(key)
    raise AssertionError(f"never reached #{element_id}; focus on #{focused_id(page)}")


@pytest.mark.parametrize(("width", "height"), [(360, 780), (1280, 900)])
def test_keyboard_only_registration_of_a_patient_and_two_samples(
    live_server: Any, world: Any, browser: Any, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="es-CL")
    page = context.new_page()
    sign_in(page, live_server.url, world.users["taker_a"])
    page.goto(f"{live_server.url}/register/")
    wait_focus(page, "id_document_number")  # the form opens on the document
    shot(page, f"registration-empty-{width}")

    # Wrong check digit: said next to the field as soon as Enter is pressed; the focus stays on the number.
    page.keyboard.type("12.345.678-9")
    page.keyboard.press("Enter")
    error = page.locator("#id_document_number_error")
    error.filter(has_text="verificador").wait_for()
    wait_until(page, "document.getElementById('id_document_number').getAttribute('aria-invalid') === 'true'")
    assert focused_id(page) == "id_document_number"
    shot(page, f"registration-wrong-run-{width}")

    # The settings, three fields back: the sample type (no default among several) and the strategy; both are
    # remembered for the next sample.
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
    assert focused_id(page) == "id_sample_type"
    page.keyboard.press("End")  # "Tórula orofaríngea", the last by name
    page.keyboard.press("ArrowUp")  # "Tórula nasofaríngea"
    assert page.locator("#id_sample_type").input_value() == "nasopharyngeal-swab"
    page.keyboard.press("Tab")
    assert focused_id(page) == "id_strategy"
    page.keyboard.type("Aten")  # "Atención médica"
    assert page.locator("#id_strategy").input_value() == "medical-care"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused_id(page) == "id_document_number"

    run = fresh_run()
    page.keyboard.press("Control+a")
    page.keyboard.type(run)
    page.keyboard.press("Enter")  # look-up: a new person, so on to their names
    page.locator('[data-patient-status="new"]').wait_for()
    wait_focus(page, "id_given_names")
    assert page.locator("#id_document_number_error").inner_text() == ""
    page.keyboard.type("Rosa")
    page.keyboard.press("Enter")
    page.keyboard.type("Pérez")
    page.keyboard.press("Enter")
    page.keyboard.type("Soto")
    page.keyboard.press("Enter")
    assert focused_id(page) == "id_birth_date"
    page.keyboard.type("05051980")  # day and month alike: the field order follows the browser's locale
    page.keyboard.press("Enter")
    assert focused_id(page) == "id_sex"
    page.keyboard.type("F")
    page.keyboard.press("Enter")
    press_until(page, "id_address")  # the comuna is already the establishment's
    page.keyboard.type("Calle Larga 12")
    page.keyboard.press("Enter")
    page.keyboard.type("912345678")
    page.keyboard.press("Enter")
    assert focused_id(page) == "id_insurance"
    page.keyboard.type("FONASA")
    press_until(page, "id_tube_code")
    assert page.locator("#id_birth_date").input_value() == "1980-05-05"
    assert page.locator("#id_sex").input_value() == "F"
    assert page.locator("#id_insurance").input_value() == "fonasa"
    assert page.locator("[aria-invalid=true]").count() == 0
    shot(page, f"registration-filled-{width}")
    page.keyboard.type(f"T{width}-1")
    page.keyboard.press("Enter")  # the last field: save and register the next

    page.locator("#saved [data-sample-number]").wait_for()
    first = Sample.objects.get(tube_code=f"T{width}-1")
    assert page.locator("#saved [data-sample-number]").inner_text() == str(first.number)
    assert first.strategy is not None and first.strategy.code == "medical-care"
    assert first.sample_type.code == "nasopharyngeal-swab"
    wait_focus(page, "id_document_number")
    assert page.locator("#id_given_names").input_value() == ""  # the person is cleared...
    assert page.locator("#id_strategy").input_value() == "medical-care"  # ...the settings are kept
    assert page.locator("#id_sample_type").input_value() == "nasopharyngeal-swab"
    shot(page, f"registration-saved-{width}")

    # The second sample of the same person: the look-up fills the form and sends the focus to the tube.
    page.keyboard.type(run)
    page.keyboard.press("Enter")
    page.locator('[data-patient-status="known"]').wait_for()
    wait_focus(page, "id_tube_code")
    assert page.locator("#id_given_names").input_value() == "Rosa"
    assert page.locator("#id_phone").input_value() == "+56912345678"
    shot(page, f"registration-known-patient-{width}")
    page.keyboard.type(f"T{width}-2")
    page.keyboard.press("Control+Enter")
    page.locator(f"#saved:has-text('{first.number + 1}')").wait_for()

    second = Sample.objects.get(tube_code=f"T{width}-2")
    assert second.patient_id == first.patient_id
    assert second.strategy is not None and second.strategy.code == "medical-care"
    assert Patient.objects.filter(document_number=run).count() == 1
    assert Sample.objects.filter(patient=first.patient).count() == 2
    context.close()
