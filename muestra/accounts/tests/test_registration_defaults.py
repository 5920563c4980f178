"""`registration_defaults_remember`: the registration form's settings per user, written only when they change."""

from __future__ import annotations

from typing import Any

import pytest

from muestra.accounts.models import User
from muestra.accounts.services import registration_defaults_remember

pytestmark = pytest.mark.django_db


def test_remembers_known_keys_only_and_writes_only_on_change(world: Any, django_assert_num_queries: Any) -> None:
    user = world.users["taker_a"]
    values = {"establishment": "113100", "laboratory": "1000000001", "test": "covid19-pcr", "patient": "x"}
    with django_assert_num_queries(1):
        assert registration_defaults_remember(user=user, values=values) is True
    assert User.objects.get(pk=user.pk).registration_defaults == {
        "establishment": "113100",
        "laboratory": "1000000001",
        "test": "covid19-pcr",
    }
    with django_assert_num_queries(0):
        assert registration_defaults_remember(user=user, values=values) is False
    registration_defaults_remember(user=user, values={**values, "laboratory": ""})
    assert "laboratory" not in User.objects.get(pk=user.pk).registration_defaults
