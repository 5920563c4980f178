"""Fixtures shared by the staff screens' tests (every area under muestra/web/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from muestra.web.testing import CHROMIUM, LAUNCH_ARGS


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Debian Chromium. Tests using it carry the `browser` mark and skip where Chromium is absent."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the fixtures are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()
