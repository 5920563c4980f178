"""My account: password change, replacing an authenticator, and the stored language applied at sign-in."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import login_with_second_factor
from muestra.accounts.models import User
from muestra.audit.models import AuditEntry
from muestra.demo.world import DEMO_PASSWORD


@pytest.fixture(autouse=True)
def _default_language_afterwards():
    """Requests here switch languages; the thread's active language must not leak into the next test."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


# --- password change ------------------------------------------------------------------------------------------------


def test_password_change_from_my_account(client, world):
    user = world.users["taker_a"]
    client.force_login(user)
    account = client.get(reverse("accounts:account")).content.decode()
    assert reverse("accounts:password_change") in account
    page = client.get(reverse("accounts:password_change"))
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.content.decode()
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": DEMO_PASSWORD,
            "new_password1": "otra-clave-larga-2026",
            "new_password2": "otra-clave-larga-2026",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("accounts:account")
    user.refresh_from_db()
    assert user.check_password("otra-clave-larga-2026")
    assert client.get("/").status_code == 200  # still signed in


def test_password_change_errors_are_shown_next_to_the_field_and_change_nothing(client, world):
    user = world.users["taker_a"]
    client.force_login(user)
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": "wrong-one", "new_password1": "short", "new_password2": "different"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_old_password_error"' in page and 'aria-describedby="id_old_password_error"' in page
    assert 'id="id_new_password2_error"' in page
    user.refresh_from_db()
    assert user.check_password(DEMO_PASSWORD)


def test_password_change_needs_the_second_factor_for_roles_that_have_one(client, world):
    client.force_login(world.users["lab_x"])
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302 and "/accounts/two-factor/" in response["Location"]


# --- replacing an authenticator ------------------------------------------------------------------------------------


def test_replacing_an_authenticator_needs_a_current_code_then_confirms_the_new_one(client, world):
    user = world.users["lab_x"]
    login_with_second_factor(client, user)
    old = TOTPDevice.objects.get(user=user, confirmed=True)
    assert reverse("accounts:totp_replace") in client.get(reverse("accounts:account")).content.decode()

    # Step 2 cannot be reached before step 1.
    assert client.get(reverse("accounts:totp_replace_enrol"))["Location"] == reverse("accounts:totp_replace")
    bad = client.post(reverse("accounts:totp_replace"), {"code": "000000" if code(old) != "000000" else "111111"})
    assert 'id="id_code_error"' in bad.content.decode()
    old.refresh_from_db()
    old.throttle_reset()

    response = client.post(reverse("accounts:totp_replace"), {"code": code(old)})
    assert response["Location"] == reverse("accounts:totp_replace_enrol")
    page = client.get(reverse("accounts:totp_replace_enrol")).content.decode()
    assert "<svg" in page and "data-secret" in page
    new = TOTPDevice.objects.get(user=user, confirmed=False)
    assert TOTPDevice.objects.filter(pk=old.pk).exists()  # the old one works until the new one is confirmed
    response = client.post(reverse("accounts:totp_replace_enrol"), {"code": code(new)})
    assert response["Location"] == reverse("accounts:account")
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", "confirmed")) == [(new.pk, True)]
    assert AuditEntry.objects.filter(action="totp.enrol", object_id=str(user.pk)).exists()
    assert client.get("/").status_code == 200  # the session is verified with the new authenticator


# --- language -------------------------------------------------------------------------------------------------------


def test_stored_language_is_applied_at_sign_in(client, world):
    User.objects.filter(username="taker_a").update(language="vi")
    response = client.post(reverse("accounts:login"), {"username": "taker_a", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "vi"
    assert client.get("/").headers["Content-Language"] == "vi"


def test_no_stored_language_leaves_the_browsers_choice(client, world):
    response = client.post(
        reverse("accounts:login"), {"username": "taker_a", "password": DEMO_PASSWORD}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "django_language" not in response.cookies
    assert client.get("/", HTTP_ACCEPT_LANGUAGE="en").headers["Content-Language"] == "en"


def test_switching_language_is_remembered_on_the_account(client, world):
    user = world.users["taker_a"]
    client.force_login(user)
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "en"
    user.refresh_from_db()
    assert user.language == "en"
    client.post(reverse("set_language"), {"language": "klingon", "next": "/"})
    user.refresh_from_db()
    assert user.language == "en"


def test_switching_language_signed_out_still_works(client, world):
    response = client.post(reverse("set_language"), {"language": "vi", "next": "/accounts/login/"})
    assert response.status_code == 302 and response.cookies["django_language"].value == "vi"
