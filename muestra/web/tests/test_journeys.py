# mypy: disable-error-code="union-attr"
"""The main journey across the staff screens, in Debian's Chromium, in Spanish and in Vietnamese.

A sample taker of establishment A registers a patient and three samples (the known patient reused), prints a label,
builds a shipment to lab X by scanning the tubes, dispatches it and prints its manifest; lab X receives the box by
scanning two tubes (one missing), rejects one with an official reason and enters the other's result with its signed
PDF; the taker sees the result and downloads the report. A taker of establishment B and lab Y see none of it, not
even by guessing the addresses. Screenshots `journey-<lang>-<step>` go to test-artifacts/ for a person to look at.

Elements are found by id, name, role and data attributes, never by English text; the visible strings checked are
the chosen language's translations (see `says`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from muestra.accounts.models import User
from muestra.demo.builders import fresh_run
from muestra.samples.models import Sample, SampleState, Shipment
from muestra.web.testing import chromium_available, current_code, shot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed"),
]

WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 360, "height": 780}
PDF = {"name": "informe.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n% signed report\n%%EOF\n"}
#: Strings of the page shell whose translation is known, checked whatever the state of the other translations.
SHELL = {"es": {"Language": "Idioma"}, "vi": {"Language": "Ngôn ngữ"}}


def translated(lang: str, english: str) -> str:
    with translation.override(lang):
        return gettext(english)


def says(page: Any, lang: str, english: str, where: str = "main") -> None:
    """The page is in `lang` and shows `english` translated into it (a translation must exist)."""
    assert page.locator("html").get_attribute("lang") == lang
    text = translated(lang, english)
    assert text != english, f"{english!r} is not translated into {lang}"
    expect(page.locator(where).first).to_contain_text(text)


def in_language(page: Any, lang: str) -> None:
    """The page shell is in `lang`: its <html lang> and the language switcher's label."""
    assert page.locator("html").get_attribute("lang") == lang
    expect(page.locator('label[for="language-select"]')).to_have_text(SHELL[lang]["Language"])


def snap(page: Any, lang: str, step: str, *, narrow: bool = False) -> None:
    """A full-page screenshot at 1280 px, and also at 360 px for the screens used on phones."""
    shot(page, f"journey-{lang}-{step}-1280")
    if narrow:
        page.set_viewport_size(NARROW)
        shot(page, f"journey-{lang}-{step}-360")
        page.set_viewport_size(WIDE)


def persona(browser: Any, base: str, user: Any, lang: str | None = None) -> tuple[Any, Any]:
    """A browser context of its own for one person, signed in. With `lang`, their stored language is set first (it
    applies at sign-in); without it, the browser's language (Spanish) until they use the switcher."""
    if lang is not None:
        User.objects.filter(pk=user.pk).update(language=lang)
    context = browser.new_context(viewport=WIDE, locale="es-CL", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"{page.url}: {m.text} {m.location}") if "Content Security Policy" in m.text else None,
    )
    page.csp_errors = errors  # type: ignore[attr-defined]
    current_code(user)  # harmless for takers; people whose role needs a second factor sign in with a code
    sign_in(page, base, user)
    return context, page


def pdf(page: Any, url: str) -> bytes:
    """Fetches `url` with the page's cookies and checks that it is a PDF."""
    response = page.request.get(url)
    assert response.status == 200, f"{url}: {response.status}"
    assert response.headers["content-type"] == "application/pdf"
    body: bytes = response.body()
    assert body.startswith(b"%PDF-")
    return body


def status_of(page: Any, url: str) -> int:
    """The status of opening `url` in the page (a PDF would start a download instead of a page: a leak too)."""
    try:
        response = page.goto(url)
    except Exception as exc:  # Playwright reports a download as a navigation error
        raise AssertionError(f"{url} answered something other than a page: {exc}") from exc
    assert response is not None
    return int(response.status)


def scan(page: Any, selector: str, code: str) -> str:
    """Types a code into a scan input and presses Enter, as a keyboard-wedge scanner does; returns the outcome."""
    box = f"form:has({selector}) [data-scan-feedback]"
    page.eval_on_selector(box, "el => el.replaceChildren()")  # wait for this scan's answer, not the last one
    field = page.locator(selector)
    field.fill(code)
    field.press("Enter")
    feedback = page.locator(f"{box} [data-scan-outcome]")
    feedback.wait_for()
    return str(feedback.first.get_attribute("data-scan-outcome"))


def register(page: Any, lang: str, *, tube: str, run: str, new_patient: bool = False, step: str = "") -> int:
    """Registers one sample of the patient with document `run` through the form; returns its number. With `step`,
    the filled form is photographed before it is saved."""
    number_field = page.locator("#id_document_number")
    number_field.fill(run)
    number_field.press("Enter")  # the look-up
    if new_patient:
        page.locator('[data-patient-status="new"]').wait_for()
        page.locator("#id_given_names").fill("Rosa")
        page.locator("#id_paternal_surname").fill("Pérez")
        page.locator("#id_maternal_surname").fill("Soto")
        page.locator("#id_birth_date").fill("1980-05-05")
        page.locator("#id_sex").select_option("F")
        page.locator("#id_address").fill("Calle Larga 12")
        page.locator("#id_phone").fill("912345678")
        page.locator("#id_insurance").select_option("fonasa")
    else:
        page.locator('[data-patient-status="known"]').wait_for()
        expect(page.locator("#id_given_names")).to_have_value("Rosa")
    page.locator("#id_tube_code").fill(tube)
    if step:
        snap(page, lang, step, narrow=True)
    before = page.locator("#saved [data-sample-number]").all_inner_texts()
    page.locator("#id_tube_code").press("Control+Enter")  # save and register the next
    saved = page.locator("#saved [data-sample-number]")
    saved.wait_for()
    expect(saved).not_to_have_text(before[0] if before else "-")
    number = int(saved.inner_text())
    sample = Sample.objects.get(tube_code=tube)
    assert sample.number == number
    return number


@pytest.mark.parametrize("lang", ["es", "vi"])
def test_main_journey_across_establishment_and_laboratory(live_server, world, browser, lang):
    started = time.monotonic()
    base = live_server.url
    run = fresh_run()

    # --- taker A: language, registration of one patient and three samples ----------------------------------------
    taker_context, page = persona(browser, base, world.users["taker_a"])
    page.locator("#language-select").select_option(lang)
    page.locator(".lang-form button[type=submit]").click()
    page.wait_for_load_state()
    in_language(page, lang)
    assert User.objects.get(pk=world.users["taker_a"].pk).language == lang  # remembered for the next sign-in
    says(page, lang, "My samples", "nav.main-nav")
    snap(page, lang, "home")

    page.locator('[data-nav="registration"]').click()
    page.wait_for_url(f"{base}/register/")
    says(page, lang, "Register a sample", "h1")
    page.locator("#id_laboratory").select_option(str(world.lab_x.platform_id))
    page.locator("#id_sample_type").select_option("nasopharyngeal-swab")
    page.locator("#id_strategy").select_option("medical-care")
    snap(page, lang, "register-empty", narrow=True)
    first = register(page, lang, tube=f"J{lang}-1", run=run, new_patient=True, step="register-new-patient")
    says(page, lang, "Sample registered:", "#saved")
    snap(page, lang, "register-saved", narrow=True)
    second = register(page, lang, tube=f"J{lang}-2", run=run, step="register-known-patient")  # the same person
    says(page, lang, "Sample registered:", "#saved")
    third = register(page, lang, tube=f"J{lang}-3", run=run)
    samples = Sample.objects.filter(tube_code__startswith=f"J{lang}-")
    assert samples.count() == 3 and len({s.patient_id for s in samples}) == 1
    assert {s.laboratory.platform_id for s in samples.select_related("laboratory")} == {world.lab_x.platform_id}

    # The label of the last one saved, from the link next to the confirmation.
    label_url = page.locator("#saved [data-label-link]").get_attribute("href")
    assert label_url == f"/samples/{third}/label.pdf"
    pdf(page, f"{base}{label_url}")

    # --- taker A: a shipment to lab X, by scanning the three tubes -------------------------------------------------
    page.locator('[data-nav="shipping"]').click()
    page.wait_for_url(f"{base}/shipments/**")
    says(page, lang, "Shipments", "h1")
    page.locator('[data-action="new-shipment"]').click()
    page.wait_for_url(f"{base}/shipments/new/")
    page.locator("#id_laboratory").select_option(str(world.lab_x.platform_id))
    snap(page, lang, "shipment-new")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{base}/shipments/*/")
    shipment = Shipment.objects.filter(establishment=world.est_a).latest("pk")
    for number in (first, second, third):
        assert scan(page, "input[data-scan]", str(number)) == "ok"
        page.locator(f'tr[data-tube="{number}"]').wait_for()
    expect(page.locator("#shipment-items tbody tr")).to_have_count(3)
    snap(page, lang, "shipment-scanned", narrow=True)
    page.locator("#dispatch-button").click()
    page.locator(f'[data-state="{Shipment.State.DISPATCHED}"]').wait_for()
    snap(page, lang, "shipment-dispatched")
    manifest_url = page.locator('[data-action="manifest"]').get_attribute("href")
    assert manifest_url == f"/shipments/{shipment.number}/manifest.pdf"
    pdf(page, f"{base}{manifest_url}")

    # --- lab X: receives the box (one tube missing), rejects one, enters the other's result with its PDF --------
    lab_context, lab = persona(browser, base, world.users["lab_x"], lang)
    in_language(lab, lang)
    says(lab, lang, "Worklists", "nav.main-nav")
    lab.locator('[data-nav="lab-receive"]').click()
    lab.wait_for_url(f"{base}/lab/receive/")
    snap(lab, lang, "lab-receive-start", narrow=True)
    lab.locator("#id_manifest").fill(str(shipment.number))
    lab.locator("#id_manifest").press("Enter")
    lab.locator("#id_shipment_code").wait_for()
    assert scan(lab, "#id_shipment_code", str(first)) == "ok"
    assert scan(lab, "#id_shipment_code", f"J{lang}-2") == "ok"  # the tube's own barcode works too
    snap(lab, lang, "lab-receive-scanning", narrow=True)
    lab.locator("#finish-receipt").click()
    lab.wait_for_url(f"{base}/lab/receive/summary/")
    expect(lab.locator("#sum-missing")).to_be_visible()
    expect(lab.locator("section:has(#sum-missing) .numbers")).to_contain_text(str(third))
    snap(lab, lang, "lab-receive-summary", narrow=True)
    states = dict(Sample.objects.filter(tube_code__startswith=f"J{lang}-").values_list("tube_code", "state"))
    assert states == {
        f"J{lang}-1": SampleState.RECEIVED,
        f"J{lang}-2": SampleState.RECEIVED,
        f"J{lang}-3": "dispatched",
    }

    lab.goto(f"{base}/lab/?tab=in_process")
    expect(lab.locator(f'a[href="/lab/samples/{first}/"]').first).to_be_visible()
    snap(lab, lang, "lab-worklist")
    lab.goto(f"{base}/lab/samples/{second}/")
    lab.locator("#action-reject summary").click()
    lab.locator("#id_reject-reason").select_option("poorly-collected")
    snap(lab, lang, "lab-reject")
    lab.locator("#action-reject button[type=submit]").click()
    lab.locator('[data-state="rejected"]').wait_for()
    lab.goto(f"{base}/lab/samples/{first}/")
    lab.locator("#id_result-value").select_option("negative")
    lab.locator("#id_result-report").set_input_files(PDF)
    snap(lab, lang, "lab-result-entry")
    lab.locator("#action-result button[type=submit]").click()
    lab.locator('[data-state="result"]').wait_for()
    snap(lab, lang, "lab-result-saved")
    assert Sample.objects.get(tube_code=f"J{lang}-1").state == SampleState.RESULT
    assert Sample.objects.get(tube_code=f"J{lang}-2").rejection_reason.code == "poorly-collected"

    # --- taker A: the result in "My samples", on the sample's timeline, and its signed report ---------------------
    page.locator('[data-nav="mysamples"]').click()
    page.wait_for_url(f"{base}/samples/")
    page.locator('[data-tab="result"]').click()
    page.wait_for_url("**/samples/?tab=result*")
    expect(page.locator('[data-tab="result"]')).to_have_attribute("aria-current", "page")
    says(page, lang, "With result", '[data-tab="result"]')
    expect(page.locator(f'a[href="/samples/{first}/"]')).to_be_visible()
    snap(page, lang, "mysamples-with-result", narrow=True)
    page.locator(f'a[href="/samples/{first}/"]').click()
    page.wait_for_url(f"{base}/samples/{first}/")
    expect(page.locator('[data-state="result"]')).to_be_visible()
    expect(page.locator('[data-event="result_delivered"]')).to_have_count(1)
    expect(page.locator('[data-event="received"]')).to_have_count(1)
    expect(page.locator('[data-event="dispatched"]')).to_have_count(1)
    says(page, lang, "Timeline", "#timeline-title")
    says(page, lang, "Download the signed report (PDF)", "[data-report]")
    snap(page, lang, "sample-with-result", narrow=True)
    report = pdf(page, f"{base}{page.locator('[data-report]').first.get_attribute('href')}")
    assert report == PDF["buffer"]
    page.goto(f"{base}/samples/?tab=rejected")
    expect(page.locator(f'a[href="/samples/{second}/"]')).to_be_visible()
    page.goto(f"{base}/samples/{third}/")  # the missing tube is still on its way
    expect(page.locator('[data-state="dispatched"]')).to_be_visible()
    expect(page.locator('[data-event="missing"]')).to_have_count(1)
    snap(page, lang, "sample-missing")

    # --- taker B and lab Y: none of it, in their lists or by guessing the addresses ------------------------------
    numbers = [str(n) for n in (first, second, third)]
    guesses = [
        *(f"/samples/{n}/" for n in numbers),
        *(f"/samples/{n}/label.pdf" for n in numbers),
        f"/samples/{first}/report.pdf",
        f"/samples/{first}/report.pdf?version=1",
        f"/shipments/{shipment.number}/",
        f"/shipments/{shipment.number}/manifest.pdf",
        *(f"/lab/samples/{n}/" for n in numbers),
    ]
    outsiders = [
        (
            "taker_b",
            ["/samples/?tab=" + t for t in ("to_send", "sent", "received", "result", "rejected")]
            + ["/shipments/?state=dispatched", "/shipments/?state=received"],
        ),
        (
            "lab_y",
            ["/lab/?tab=" + t for t in ("to_receive", "in_process", "finished", "rejected")]
            + ["/lab/receive/", "/lab/results/"],
        ),
    ]
    for name, lists in outsiders:
        context, other = persona(browser, base, world.users[name], lang)
        in_language(other, lang)
        for path in lists:
            assert status_of(other, f"{base}{path}") == 200, path
            body = other.locator("main").inner_text()
            for secret in [*numbers, str(shipment.number), run, "Rosa", f"J{lang}-"]:
                assert secret not in body, f"{name} sees {secret} on {path}"
        snap(other, lang, f"{name}-list")
        if name == "taker_b":  # searching for the patient finds nothing (the page repeats what was searched)
            other.goto(f"{base}/samples/?q={run}")
            expect(other.locator("table.samples tbody tr")).to_have_count(0)
            expect(other.locator("[data-tab] .count").filter(has_text="0")).to_have_count(6)
            snap(other, lang, f"{name}-search")
        for path in guesses:
            assert status_of(other, f"{base}{path}") == 404, f"{name} {path}"
        says(other, lang, "Page not found", "h1")
        snap(other, lang, f"{name}-guess-404")
        assert other.csp_errors == [], other.csp_errors
        context.close()

    assert page.csp_errors == [] and lab.csp_errors == [], "\n".join(page.csp_errors + lab.csp_errors)
    lab_context.close()
    taker_context.close()
    print(f"journey in {lang}: {time.monotonic() - started:.1f} s")  # shown with pytest -s
