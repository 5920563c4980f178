"""Fixed personas shared by every test: taker at establishment A, taker at B, manager of A, lab X, lab Y,
regional viewer (region 13), national admin, citizen; plus API keys for lab X, lab Y and establishment A."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# CI runs the property tests with a fixed seed so a submission is judged on the same examples every time (a new
# counter-example found by a random run locally is still a bug to fix); no deadline on a shared 2-core machine.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

os.environ.setdefault("MUESTRA_FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("AXES_ENABLED", "0")


def pytest_configure(config: pytest.Config) -> None:
    # pytest-django may have read the settings before this file's environment defaults: apply them directly.
    # Argon2 is deliberately slow; a test hashing the personas' passwords with it would spend seconds on it.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AXES_ENABLED = False


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings.MEDIA_ROOT = str(tmp_path_factory.getbasetemp() / "media")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> None:
    """Reference data is loaded once into the test database; per-test transactions roll back over it."""
    from muestra.core.reference import load_all

    with django_db_blocker.unblock():
        load_all()


@pytest.fixture(autouse=True)
def _fresh_lookups() -> None:
    from muestra.samples import lookups

    lookups.clear()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Every test starts and ends in the default language: a sign-in with a stored language or a test client
    request with Accept-Language activates a language in the worker thread, which would leak into the next test."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


def in_english(client: Any) -> Any:
    """`client` (a Django test client) asks for English pages from now on; returns it."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def english(client: Any) -> Iterator[Any]:
    """For tests that read English wording (the default language is Spanish): the `client` fixture asks for
    English, and code run in the test itself (forms, messages, exports) speaks English too. Yields the client."""
    from django.utils import translation

    with translation.override("en"):
        yield in_english(client)


@dataclass
class World:
    establishments: dict[str, Any]
    labs: dict[int, Any]
    users: dict[str, Any]
    actors: dict[str, Any]
    keys: dict[str, str]

    @property
    def est_a(self) -> Any:
        return self.establishments["113100"]

    @property
    def est_b(self) -> Any:
        return self.establishments["105100"]

    @property
    def lab_x(self) -> Any:
        return self.labs[1000000001]

    @property
    def lab_y(self) -> Any:
        return self.labs[1000000002]


@pytest.fixture
def world(db: Any) -> World:
    from muestra.accounts.scoping import SYSTEM, actor_for_api_key, actor_for_user
    from muestra.accounts.services import api_key_issue
    from muestra.core.reference import load_all
    from muestra.demo.world import build_world
    from muestra.territories.models import Territory

    if not Territory.objects.exists():  # a transactional test flushed the tables
        load_all()
    built: dict[str, Any] = build_world()
    users = built["users"]
    actors = {name: actor_for_user(user) for name, user in users.items()}
    keys = {}
    key_lab_x, keys["lab_x"] = api_key_issue(actor=SYSTEM, name="LIS X", laboratory=built["labs"][1000000001])
    key_lab_y, keys["lab_y"] = api_key_issue(actor=SYSTEM, name="LIS Y", laboratory=built["labs"][1000000002])
    key_est_a, keys["est_a"] = api_key_issue(
        actor=SYSTEM, name="Sistema A", establishment=built["establishments"]["113100"]
    )
    actors["key_lab_x"] = actor_for_api_key(key_lab_x)
    actors["key_lab_y"] = actor_for_api_key(key_lab_y)
    actors["key_est_a"] = actor_for_api_key(key_est_a)
    return World(built["establishments"], built["labs"], users, actors, keys)


def login_with_second_factor(client: Any, user: Any) -> Any:
    """Logs `client` in as `user` with a verified authenticator, as the two-factor pages would."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test authenticator", confirmed=True
    )
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def admin_client(db: Any, admin_user: Any, client: Any) -> Any:
    """pytest-django's admin client, with the second factor the administration requires."""
    return login_with_second_factor(client, admin_user)
