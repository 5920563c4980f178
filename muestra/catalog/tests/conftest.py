"""Load the reference data once per test module and roll it back afterwards.

Loading takes a fraction of a second, but doing it for every test adds up; each test still runs inside its own
savepoint (the `db` fixture), so tests that change data do not leak into the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from muestra.core.reference import LoadReport, load_all


@pytest.fixture(scope="module")
def reference(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LoadReport]:
    with django_db_blocker.unblock(), transaction.atomic():
        yield load_all()
        transaction.set_rollback(True)
