"""Security headers on every page, templates free of inline script and style, and an accessibility check (axe-core)
of every staff page for several personas, in Debian's Chromium, with the Content-Security-Policy enforced.

To check more pages, add them to PAGES below: (persona, path). A path may contain `{...}` placeholders filled from
the records `_page_data()` creates (e.g. `{sample}` = the number of a registered sample of establishment A), and a
`#fragment` naming a step in PREPARE that the browser takes first (e.g. opening a shipment for receipt).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import translation

from conftest import login_with_second_factor
from muestra.web.security import ADMIN_CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY
from muestra.web.testing import chromium_available, current_code, shot, sign_in

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).resolve().parent / "assets" / "axe.min.js"

#: The pages the accessibility check visits, as (persona, path). Add new screens here.
PAGES: list[tuple[str, str]] = [
    ("anonymous", "/accounts/login/"),
    ("anonymous", "/accounts/password-reset/"),
    ("taker_a", "/"),
    ("taker_a", "/accounts/"),
    ("taker_a", "/accounts/password/"),
    ("taker_a", "/accounts/two-factor/enrol/"),  # optional for takers: the set-up page with its QR code
    ("lab_x", "/"),
    ("lab_x", "/accounts/"),
    ("lab_x", "/accounts/two-factor/replace/"),
    # The sample taker's screens (establishment A).
    ("taker_a", "/register/"),
    ("taker_a", "/samples/"),
    ("taker_a", "/samples/?tab=result"),
    ("taker_a", "/samples/?q=no-such-patient"),  # a search that finds nothing
    ("taker_a", "/samples/{sample}/"),
    ("taker_a", "/samples/{result_sample}/"),  # with its result, report link and full timeline
    ("taker_a", "/samples/{sample}/edit/"),
    ("taker_a", "/samples/{sample}/cancel/"),
    ("taker_a", "/shipments/"),
    ("taker_a", "/shipments/?state=dispatched"),
    ("taker_a", "/shipments/new/"),
    ("taker_a", "/shipments/{open_shipment}/"),  # being filled: the scan form
    ("taker_a", "/shipments/{shipment}/"),  # dispatched
    # The laboratory's screens (lab X).
    ("lab_x", "/lab/"),
    ("lab_x", "/lab/?tab=in_process"),
    ("lab_x", "/lab/?tab=finished"),
    ("lab_x", "/lab/?tab=rejected"),
    ("lab_x", "/lab/receive/"),
    ("lab_x", "/lab/receive/#receiving"),  # a shipment being received, tube by tube
    ("lab_x", "/lab/samples/{lab_sample}/"),  # received: result entry, reject, return, forward
    ("lab_x", "/lab/samples/{late_sample}/"),  # a result with a pending late-correction request
    ("lab_x", "/lab/results/"),
    ("lab_x", "/supervision/"),
    ("lab_x", "/uploads/"),
    ("lab_x", "/matching/"),
    ("admin", "/supervision/"),
    ("viewer_rm", "/"),
    ("viewer_rm", "/territory/"),
    ("viewer_rm", "/territory/?collected_from=2026-01-10&collected_to=2026-01-01"),  # with field errors
    ("admin", "/territory/"),
    ("admin", "/corrections/"),
    ("admin", "/corrections/{correction}/"),
    ("admin", "/admin/"),
    ("admin", "/admin/accounts/apikey/add/"),
]

#: Personas whose role needs a second factor (they get an authenticator before signing in).
TWO_FACTOR_PERSONAS = {"lab_x", "lab_y", "viewer_rm", "admin"}

#: axe impact levels that fail the test.
FAILING_IMPACTS = {"serious", "critical"}


@pytest.fixture(autouse=True)
def _default_language_afterwards():
    """Requests here switch languages; the thread's active language must not leak into the next test."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


# --- headers ----------------------------------------------------------------------------------------------------


def test_every_page_carries_the_security_headers(client, world):
    for url in ("/accounts/login/", "/no-such-page/"):
        response = client.get(url)
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        assert response["Permissions-Policy"].startswith("camera=(self), ")
        assert "microphone=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
    login_with_second_factor(client, world.users["viewer_rm"])
    assert client.get("/territory/")["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert client.get("/territory/export.csv")["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_only_the_admin_may_use_inline_styles_and_never_inline_scripts(admin_client):
    response = admin_client.get("/admin/")
    assert response["Content-Security-Policy"] == ADMIN_CONTENT_SECURITY_POLICY
    assert "style-src 'self' 'unsafe-inline'" in ADMIN_CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in ADMIN_CONTENT_SECURITY_POLICY


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"<style[\s>]", re.I), "<style> element"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on*= handler"),
    (re.compile(r"\bhx-on", re.I), "hx-on attribute"),
]


def test_our_templates_have_no_inline_script_style_or_handlers():
    """The policy forbids them: they would silently stop working. (The admin's own templates are Django's.)"""
    problems = []
    for template in sorted((ROOT / "muestra" / "templates").rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{template.relative_to(ROOT)}:{line}: {what}")
    assert problems == []


# --- accessibility (browser) ------------------------------------------------------------------------------------


def _page_data(world: Any) -> dict[str, int]:
    """The records the pages of PAGES show, created through the services, by placeholder name (public numbers, or
    the primary key of a correction request). Every list has a few rows in several states."""
    from datetime import timedelta

    from django.utils import timezone

    from muestra.demo.builders import sample_in_state, sample_input
    from muestra.samples import services
    from muestra.samples.models import Result, SampleState

    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    s = SampleState
    registered = [sample_in_state(s.REGISTERED, taker=taker, lab=lab) for _ in range(3)]
    result = sample_in_state(s.RESULT, taker=taker, lab=lab)
    received = sample_in_state(s.RECEIVED, taker=taker, lab=lab)
    sample_in_state(s.REJECTED, taker=taker, lab=lab)
    sample_in_state(s.DISPATCHED, taker=taker, lab=lab)
    late = sample_in_state(s.RESULT, taker=taker, lab=lab)
    Result.objects.filter(sample=late).update(entered_at=timezone.now() - timedelta(days=10))
    correction, _created = services.correction_request_create(
        actor=lab, sample_id=late.pk, proposed_value="positive", reason="Transcription error found in review"
    )
    open_shipment = services.shipment_create(
        actor=taker, establishment_code="113100", laboratory_id=1000000001, sample_ids=[registered[1].pk]
    )
    box = [services.sample_register(actor=taker, data=sample_input())[0] for _ in range(3)]
    shipment = services.shipment_create(
        actor=taker, establishment_code="113100", laboratory_id=1000000001, sample_ids=[b.pk for b in box]
    )
    services.shipment_dispatch(actor=taker, shipment_id=shipment.pk)
    return {
        "sample": registered[0].number,
        "result_sample": result.number,
        "lab_sample": received.number,
        "late_sample": late.number,
        "correction": correction.pk,
        "open_shipment": open_shipment.number,
        "shipment": shipment.number,
        "box_tube": box[0].number,
    }


def _receiving(page: Any, base: str, data: dict[str, int]) -> None:
    """Lab X opens the dispatched shipment for receipt (its manifest scanned) and scans one of its tubes."""
    page.goto(f"{base}/lab/receive/")
    page.locator("#id_manifest").fill(str(data["shipment"]))
    page.locator("#id_manifest").press("Enter")
    page.locator("#id_shipment_code").wait_for()
    page.locator("#id_shipment_code").fill(str(data["box_tube"]))
    page.locator("#id_shipment_code").press("Enter")
    page.locator("#shipment-scan [data-scan-outcome]").wait_for()


#: Steps the browser takes before checking a page whose path ends with their #name.
PREPARE = {"receiving": _receiving}


def _axe(page: Any) -> list[dict[str, Any]]:
    """Runs axe-core in the page (evaluated through the DevTools protocol, so the page's CSP stays on)."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }"""
    )
    return list(result)


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Debian's Chromium is not installed")
@pytest.mark.parametrize("width", [360, 1280])
def test_pages_have_no_serious_accessibility_violations_nor_csp_refusals(live_server, world, browser, width):
    failures: list[str] = []
    data = _page_data(world)
    personas = list(dict.fromkeys(persona for persona, _path in PAGES))
    for persona in personas:
        context = browser.new_context(viewport={"width": width, "height": 900}, locale="es-CL")
        page = context.new_page()
        refusals: list[str] = []
        page.on(
            "console",
            lambda msg, sink=refusals: sink.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        if persona != "anonymous":
            if persona in TWO_FACTOR_PERSONAS:
                current_code(world.users[persona])  # an authenticator to sign in with (enrolment has its own test)
            sign_in(page, live_server.url, world.users[persona])
        for who, path in PAGES:
            if who != persona:
                continue
            url, _hash, step = path.format(**data).partition("#")
            if step:
                PREPARE[step](page, live_server.url, data)
            response = page.goto(f"{live_server.url}{url}")
            assert response is not None and response.status < 400, f"{persona} {url}: {response and response.status}"
            assert urlsplit(page.url).path == urlsplit(url).path, f"{persona} {url} ended at {page.url}"
            page.wait_for_load_state("networkidle")
            name = re.sub(r"[^a-z0-9]+", "-", f"a11y-{persona}-{url}-{step}".lower()).strip("-")
            shot(page, f"{name}-{width}")
            for violation in _axe(page):
                if violation["impact"] in FAILING_IMPACTS:
                    failures.append(f"{persona} {url} @{width}px: {json.dumps(violation, ensure_ascii=False)}")
            failures.extend(f"{persona} {url} @{width}px CSP: {text}" for text in refusals)
            refusals.clear()
        context.close()
    assert failures == [], "\n".join(failures)
