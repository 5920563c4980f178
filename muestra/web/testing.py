"""Helpers for the browser tests of the staff screens (Playwright driving Debian's Chromium).

Every journey test signs in through the real login page; people whose role needs a second factor get a confirmed
authenticator created directly, and the test types its current code, as a person would read it off a phone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django_otp.oath import totp

from muestra.demo.world import DEMO_PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Camera scanning is tried with Chromium's fake camera, never a real device.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None


def shot(page: Any, name: str) -> Path:
    """Saves a full-page screenshot in test-artifacts/ for a person to look at; returns its path.

    The caret is left alone: to hide it, Playwright sets then clears an inline style on every input, which leaves
    an empty `style=""` behind; htmx copies that attribute when it swaps an element with the same id, and the
    page's Content-Security-Policy (no inline styles) then reports a refusal that the tests would count."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


def current_code(user: Any, *, drift: int = 0) -> str:
    """The six digits the user's authenticator app would show now (creating a confirmed authenticator if none)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test authenticator", confirmed=True
    )
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift)
    # A code is accepted once: move the device's memory back so a second sign-in in the same step still works.
    device.last_t = -1
    device.save(update_fields=["last_t"])
    return f"{code:0{device.digits}d}"


def sign_in(page: Any, base: str, user: Any, *, login: str | None = None, language: str = "es") -> None:
    """Signs `user` in through the login page (and the second-factor page when their role needs it).

    Labels are located by their `for`/`id` pairing, not their text, so the same helper works in every language.
    """
    from muestra.accounts.services import two_factor_required

    if two_factor_required(user):
        current_code(user)  # enrolled beforehand: the journey verifies a code rather than enrolling
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_username").fill(login or user.username)
    page.locator("#id_password").fill(DEMO_PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    if "/accounts/two-factor/" in page.url:
        page.locator("#id_code").fill(current_code(user))
        page.locator("main form button[type=submit]").click()
        page.wait_for_load_state()
