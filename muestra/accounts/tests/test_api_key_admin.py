from __future__ import annotations

from conftest import login_with_second_factor
from muestra.accounts.models import ApiKey
from muestra.accounts.services import api_key_authenticate
from muestra.audit.models import AuditEntry


def test_admin_revokes_keys_through_the_service(world, client):
    login_with_second_factor(client, world.users["admin"])
    key = ApiKey.objects.get(laboratory=world.lab_x)
    response = client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(world.keys["lab_x"]) is None
    assert AuditEntry.objects.filter(action="apikey.revoke", object_id=str(key.pk)).exists()


def test_api_keys_cannot_be_edited_or_deleted_in_the_admin(world, client):
    login_with_second_factor(client, world.users["admin"])
    key = ApiKey.objects.get(laboratory=world.lab_x)
    client.post(f"/admin/accounts/apikey/{key.pk}/change/", {"name": "renamed", "revoked_at": ""})
    key.refresh_from_db()
    assert key.name == "LIS X"
    assert client.get(f"/admin/accounts/apikey/{key.pk}/delete/").status_code == 403


def test_the_administration_requires_a_second_factor(world, client):
    client.force_login(world.users["admin"])  # password only
    response = client.get("/admin/accounts/apikey/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
