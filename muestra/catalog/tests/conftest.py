"""The `reference` fixture: reference data loaded for a test module, with the load's report.

The project's root conftest already loads the reference data once per session; loading it again here is then a
quick no-op that still returns the counts, and it keeps these tests valid when run without that conftest. The
module-wide transaction is rolled back at the end, and each test runs in its own savepoint (the `db` fixture), so
tests that change data do not leak.
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
