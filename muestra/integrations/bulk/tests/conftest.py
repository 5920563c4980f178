from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from muestra.api.tests.support import _fast_password_hasher, api  # noqa: F401


@pytest.fixture
def immediate_tasks(settings: Any) -> Iterator[None]:
    """Uploads are processed as soon as they are queued (the immediate backend runs the task in-process)."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    yield
