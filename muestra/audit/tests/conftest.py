"""Fixtures shared by the core-service tests (see muestra/samples/tests/support.py)."""

from muestra.samples.tests.support import _fast_password_hasher, actors  # noqa: F401
