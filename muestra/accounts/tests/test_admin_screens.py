"""The administration: who may enter, API keys issued (secret shown once) and revoked through the services, users
with their roles, authenticator reset, read-only samples found by their public number, translated screens."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import login_with_second_factor
from muestra.accounts.models import ApiKey, Membership, Role, User, hash_api_key
from muestra.accounts.services import api_key_authenticate
from muestra.audit.models import AuditEntry
from muestra.demo.builders import sample_in_state
from muestra.samples.models import Sample, SampleState

ADD_KEY = "/admin/accounts/apikey/add/"


@pytest.fixture(autouse=True)
def _default_language_afterwards():
    """Requests here switch languages; the thread's active language must not leak into the next test."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


def admin(client, world):
    return login_with_second_factor(client, world.users["admin"])


def _nonce(page: str) -> str:
    match = re.search(r'name="issue_nonce" value="([^"]+)"', page)
    assert match, "the issue form carries a one-time nonce"
    return match.group(1)


# --- who may enter ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["taker_a", "lab_x", "viewer_rm"])
def test_staff_flag_without_the_administrator_role_opens_nothing(client, world, persona):
    user = world.users[persona]
    User.objects.filter(pk=user.pk).update(is_staff=True)
    login_with_second_factor(client, user)
    for url in ("/admin/", "/admin/accounts/apikey/", ADD_KEY, "/admin/samples/sample/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/admin/login/" in response["Location"]
    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert "not authorized" in page or "no está autorizado" in page or "không được phép" in page


def test_national_admin_role_with_staff_flag_enters(client, world):
    user = world.users["viewer_rm"]
    Membership.objects.create(user=user, role=Role.NATIONAL_ADMIN)
    User.objects.filter(pk=user.pk).update(is_staff=True)
    login_with_second_factor(client, user)
    assert client.get("/admin/").status_code == 200


def test_admin_login_sends_people_to_muestras_own_sign_in_and_second_factor(client, world):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(world.users["admin"])  # password given, second factor not yet
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/two-factor/")


def test_admin_index_is_translated_and_links_the_late_corrections_screen(client, world):
    admin(client, world)
    page = client.get("/admin/").content.decode()
    assert "Administración de Muestra" in page or "Muestra administration" in page
    assert "Establecimientos" in page  # lazily translated verbose names (Spanish is the default)
    client.cookies["django_language"] = "en"
    page = client.get("/admin/").content.decode()
    assert "Establishments" in page and "API keys" in page
    assert 'href="/corrections/"' in page


# --- API keys -----------------------------------------------------------------------------------------------------


def test_issuing_a_key_shows_the_secret_once_and_stores_only_its_hash(client, world):
    admin(client, world)
    form = client.get(ADD_KEY)
    assert form.status_code == 200
    response = client.post(
        ADD_KEY, {"name": "LIS nuevo", "laboratory": world.lab_y.pk, "issue_nonce": _nonce(form.content.decode())}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    found = re.search(r'value="(mst_[^"]+)"', response.content.decode())
    assert found is not None
    secret = found.group(1)
    key = ApiKey.objects.get(name="LIS nuevo")
    assert key.laboratory == world.lab_y and key.key_hash == hash_api_key(secret)
    assert api_key_authenticate(secret) == key
    assert AuditEntry.objects.filter(action="apikey.issue", object_id=str(key.pk)).exists()

    # Never shown again: not in the list, not on the key's page, and re-sending the form issues nothing.
    for url in ("/admin/accounts/apikey/", f"/admin/accounts/apikey/{key.pk}/change/"):
        page = client.get(url).content.decode()
        assert secret not in page and key.prefix in page
    again = client.post(
        ADD_KEY, {"name": "LIS nuevo", "laboratory": world.lab_y.pk, "issue_nonce": _nonce(form.content.decode())}
    )
    assert secret not in again.content.decode()
    assert 'class="errornote"' in again.content.decode()
    assert ApiKey.objects.filter(name="LIS nuevo").count() == 1


def test_a_key_needs_exactly_one_place_and_the_refusal_is_shown(client, world):
    admin(client, world)
    before = ApiKey.objects.count()
    nonce = _nonce(client.get(ADD_KEY).content.decode())
    response = client.post(
        ADD_KEY,
        {"name": "Dos sitios", "laboratory": world.lab_x.pk, "establishment": world.est_a.pk, "issue_nonce": nonce},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "mst_" not in page
    assert 'role="alert"' in page
    assert ApiKey.objects.count() == before
    assert 'value="Dos sitios"' in page  # what was typed is kept


def test_revoke_action_revokes_through_the_service_and_says_so(client, world):
    admin(client, world)
    key = ApiKey.objects.get(establishment=world.est_a)
    response = client.post(
        "/admin/accounts/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]}, follow=True
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(world.keys["est_a"]) is None
    assert AuditEntry.objects.filter(action="apikey.revoke", object_id=str(key.pk)).count() == 1
    assert 'class="success"' in response.content.decode()


def test_non_admin_cannot_issue_keys_by_posting(client, world):
    user = world.users["lab_x"]
    User.objects.filter(pk=user.pk).update(is_staff=True)
    login_with_second_factor(client, user)
    before = ApiKey.objects.count()
    response = client.post(ADD_KEY, {"name": "x", "laboratory": world.lab_x.pk})
    assert response.status_code == 302
    assert ApiKey.objects.count() == before


# --- users, roles, authenticators ---------------------------------------------------------------------------------


def test_user_list_shows_roles_and_two_factor_state(client, world):
    admin(client, world)
    TOTPDevice.objects.create(user=world.users["lab_x"], name="phone", confirmed=True)
    page = client.get("/admin/accounts/user/?q=lab_x").content.decode()
    assert "lab_x" in page
    assert "Personal de laboratorio" in page or "Laboratory staff" in page
    assert "icon-yes" in page


def test_reset_authenticator_action_removes_devices_and_is_audited(client, world):
    admin(client, world)
    lab_user = world.users["lab_x"]
    TOTPDevice.objects.create(user=lab_user, name="lost phone", confirmed=True)
    client.post(
        "/admin/accounts/user/", {"action": "reset_authenticator", "_selected_action": [lab_user.pk]}, follow=True
    )
    assert not TOTPDevice.objects.filter(user=lab_user).exists()
    entry = AuditEntry.objects.get(action="totp.reset", object_id=str(lab_user.pk))
    assert entry.actor == f"user:{world.users['admin'].pk}"

    # At the next sign-in the person is sent to set up a new authenticator.
    other = client.__class__()
    other.force_login(lab_user)
    response = other.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/two-factor/enrol/")


def test_role_changes_in_the_user_screen_are_audited(client, world):
    admin(client, world)
    user = world.users["citizen"]
    page = client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    data = {
        "username": user.username,
        "national_id": user.national_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "language": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-role": Role.SAMPLE_TAKER,
        "memberships-0-establishment": world.est_b.pk,
        "memberships-0-user": user.pk,
    }
    response = client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    membership = Membership.objects.get(user=user)
    entry = AuditEntry.objects.get(action="membership.add", object_id=str(membership.pk))
    assert entry.data["role"] == Role.SAMPLE_TAKER and entry.data["establishment"] == world.est_b.pk


# --- samples (read only) ------------------------------------------------------------------------------------------


def test_samples_are_listed_by_public_number_found_by_it_and_never_editable(client, world):
    admin(client, world)
    sample = sample_in_state(SampleState.REGISTERED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    page = client.get(f"/admin/samples/sample/?q={sample.number}").content.decode()
    assert str(sample.number) in page
    assert "1 muestra" in page or "1 sample" in page
    detail = client.get(f"/admin/samples/sample/{sample.pk}/change/")
    assert detail.status_code == 200
    assert sample.patient is not None
    assert sample.patient.given_names not in detail.content.decode()  # no personal data in the admin
    client.post(f"/admin/samples/sample/{sample.pk}/change/", {"state": SampleState.CANCELLED})
    assert Sample.objects.get(pk=sample.pk).state == SampleState.REGISTERED
    assert client.get("/admin/samples/sample/add/").status_code == 403
    assert client.get(f"/admin/samples/sample/{sample.pk}/delete/").status_code == 403


def test_reference_screens_open_for_the_administrator(client, world):
    admin(client, world)
    for url in (
        "/admin/facilities/establishment/",
        f"/admin/facilities/establishment/{world.est_a.pk}/change/",
        "/admin/facilities/laboratory/",
        "/admin/facilities/labassignment/",
        "/admin/catalog/test/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{world.users['taker_a'].pk}/change/",
    ):
        assert client.get(url).status_code == 200, url
    assert client.get(f"/admin/facilities/establishment/{world.est_a.pk}/delete/").status_code == 403
