"""Browser journeys in Debian's Chromium at phone (360 px) and desktop (1280 px) widths, with screenshots saved in
test-artifacts/ for a person to look at."""

from __future__ import annotations

import base64
import os
import shutil

import pytest
from django_otp.oath import totp

from muestra.demo.world import DEMO_PASSWORD
from muestra.web.testing import CHROMIUM, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("MUESTRA_SKIP_BROWSER") == "1", reason="MUESTRA_SKIP_BROWSER=1"),
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is not installed"),
]


def _code(secret: str, drift: int) -> str:
    key = base64.b32decode(secret.replace(" ", ""))
    return f"{totp(key, step=30, t0=0, digits=6, drift=drift):06d}"


def _shot(page, name: str) -> None:
    shot(page, name)


def _sign_in(page, base: str, login: str) -> None:
    page.goto(f"{base}/")
    page.get_by_label("Nombre de usuario o RUN").fill(login)
    page.get_by_label("Contraseña").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()


def test_taker_and_lab_journeys_at_phone_and_desktop_widths(live_server, world, browser):
    base = live_server.url
    secret = ""
    for width, height in ((360, 780), (1280, 900)):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="es-CL")
        page = context.new_page()

        page.goto(f"{base}/accounts/login/")
        _shot(page, f"login-{width}")
        page.get_by_label("Nombre de usuario o RUN").fill("taker_a")
        page.get_by_label("Contraseña").fill("wrong-password-123")
        page.get_by_role("button", name="Iniciar sesión").click()
        assert page.get_by_role("alert").first.is_visible()
        _shot(page, f"login-error-{width}")

        _sign_in(page, base, "taker_a")
        page.wait_for_url(f"{base}/")
        assert page.get_by_role("heading", name="Bienvenido/a, Ana").is_visible()
        assert page.locator('[data-nav="admin"]').count() == 0
        _shot(page, f"home-taker-{width}")

        page.get_by_label("Idioma").select_option("vi")
        page.get_by_role("button", name="Cambiar").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Xin chào, Ana").is_visible()
        _shot(page, f"home-taker-vi-{width}")
        page.get_by_label("Ngôn ngữ").select_option("es")
        page.get_by_role("button", name="Đổi").click()
        page.get_by_role("button", name="Cerrar sesión").click()
        page.wait_for_url(f"{base}/accounts/login/")

        _sign_in(page, base, "44444444-4")  # lab_x, by national ID
        if not secret:
            page.wait_for_url(f"{base}/accounts/two-factor/enrol/**")
            _shot(page, f"totp-enrol-{width}")
            secret = page.locator("[data-secret]").inner_text()
            page.get_by_label("Código de seis dígitos").fill(_code(secret, 0))
            page.get_by_role("button", name="Confirmar").click()
        else:
            page.wait_for_url(f"{base}/accounts/two-factor/**")
            _shot(page, f"totp-verify-{width}")
            page.get_by_label("Código de seis dígitos").fill(_code(secret, 1))
            page.get_by_role("button", name="Verificar").click()
        page.wait_for_url(f"{base}/")
        assert page.get_by_text("Recepcionar las muestras").is_visible()
        _shot(page, f"home-lab-{width}")

        page.goto(f"{base}/no-such-page/")
        _shot(page, f"error-404-{width}")
        context.close()
