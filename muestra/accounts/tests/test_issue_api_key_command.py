"""`issue_api_key` / `revoke_api_key`: keys issued at the console work once printed and stop once revoked."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from muestra.accounts.models import ApiKey
from muestra.accounts.scoping import actor_for_api_key
from muestra.accounts.services import api_key_authenticate
from muestra.audit.models import AuditEntry


def _issue(*args: str) -> list[str]:
    out = StringIO()
    call_command("issue_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_lab_key_authenticates_scoped_to_its_lab(world: Any) -> None:
    lines = _issue("--lab", str(world.lab_x.platform_id), "--name", "LIS Roche")
    secret = lines[-1]
    assert " " not in secret and secret.startswith("mst_")
    key = api_key_authenticate(secret)
    assert key is not None
    assert key.laboratory == world.lab_x and key.establishment is None
    assert key.name == "LIS Roche"
    assert key.created_by is None  # issued by the system (the console), not by a user
    actor = actor_for_api_key(key)
    assert actor.laboratory_ids == {world.lab_x.pk} and not actor.establishment_ids
    earlier = "\n".join(lines[:-1])
    assert key.prefix in earlier and "Authorization: Bearer" in earlier and "ACCESSKEY" in earlier
    assert secret not in earlier  # printed once
    assert AuditEntry.objects.filter(action="apikey.issue", object_id=str(key.pk)).exists()


def test_establishment_key(world: Any) -> None:
    secret = _issue("--establishment", world.est_b.code)[-1]
    key = api_key_authenticate(secret)
    assert key is not None and key.establishment == world.est_b and key.laboratory is None
    assert key.name  # a default name says what it is for


def test_revoke(world: Any) -> None:
    secret = _issue("--lab", str(world.lab_y.platform_id))[-1]
    key = api_key_authenticate(secret)
    assert key is not None
    out = StringIO()
    call_command("revoke_api_key", key.prefix, stdout=out)
    assert "revoked" in out.getvalue()
    assert api_key_authenticate(secret) is None
    again = StringIO()
    call_command("revoke_api_key", secret, stdout=again)  # the whole key works too; twice is harmless
    assert "already revoked" in again.getvalue()
    assert AuditEntry.objects.filter(action="apikey.revoke", object_id=str(key.pk)).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lab", "999"], "Unknown laboratory"),
        (["--lab", "X"], "Unknown laboratory"),
        (["--establishment", "nope"], "Unknown establishment"),
        (["--lab", "1000000001", "--establishment", "113100"], "not allowed with"),
        ([], "required"),
    ],
)
def test_errors(world: Any, args: list[str], message: str) -> None:
    before = ApiKey.objects.count()
    with pytest.raises(CommandError, match=message):
        _issue(*args)
    assert ApiKey.objects.count() == before


def test_revoke_unknown_prefix(db: Any) -> None:
    with pytest.raises(CommandError, match="No API key"):
        call_command("revoke_api_key", "deadbeef", stdout=StringIO())


def test_every_issued_key_authenticates(world: Any) -> None:
    """About half of the secrets contain "_" (token_urlsafe): the key must still authenticate (a fixed bug)."""
    secrets_ = [_issue("--lab", str(world.lab_x.platform_id))[-1] for _ in range(20)]
    assert all(api_key_authenticate(secret) is not None for secret in secrets_)
