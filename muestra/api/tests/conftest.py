"""Fixtures of the REST API tests (defined in support.py): `api`, `make_sample`, `_fast_password_hasher`."""

from muestra.api.tests.support import _fast_password_hasher, api, make_sample  # noqa: F401
