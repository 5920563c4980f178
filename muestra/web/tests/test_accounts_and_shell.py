"""Sign-in (username or national ID), lockout, two-factor sign-in, navigation by role, languages, error pages."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from muestra.demo.world import DEMO_PASSWORD

LOGIN = "/accounts/login/"


def sign_in(client, username, password=DEMO_PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def code(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


@pytest.mark.parametrize("login", ["taker_a", "11111111-1", "11.111.111-1"])
def test_taker_signs_in_by_username_or_national_id_and_reaches_home_without_2fa(client, world, login):
    response = sign_in(client, login)
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert "Ana" in home.content.decode()


def test_wrong_password_is_announced(client, world):
    response = sign_in(client, "taker_a", "not-the-password")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page
    assert "no son correctos" in page
    assert client.get("/").status_code == 302


def test_lockout_after_the_failure_limit(client, world, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        sign_in(client, "taker_a", "wrong-password-123")
    response = sign_in(client, "taker_a")  # even the right password is refused now
    assert response.status_code == 429
    assert "Cuenta bloqueada temporalmente" in response.content.decode()
    assert client.get("/").status_code == 302


def test_pages_require_sign_in(client, world):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_lab_persona_is_forced_through_enrolment_then_verification(client, world):
    sign_in(client, "lab_x")
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:totp_enrol"))
    page = client.get(response["Location"])
    assert "<svg" in page.content.decode()
    assert "Aplicación web" not in page.content.decode()  # no navigation while half signed in
    device = TOTPDevice.objects.get(user=world.users["lab_x"], confirmed=False)
    bad = client.post(reverse("accounts:totp_enrol"), {"code": "000000" if code(device) != "000000" else "111111"})
    assert 'role="alert"' in bad.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # a failure delays the next try (django-otp throttling); the test does not wait
    response = client.post(reverse("accounts:totp_enrol"), {"code": code(device), "next": "/"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200

    # Next sign-in: the confirmed device is asked for, and each code works only once.
    client.post(reverse("accounts:logout"))
    sign_in(client, "44444444-4")
    response = client.get("/")
    assert response["Location"].startswith(reverse("accounts:totp_verify"))
    device.refresh_from_db()
    assert device.confirmed
    reused = client.post(reverse("accounts:totp_verify"), {"code": code(device)})
    assert reused.status_code == 200
    device.refresh_from_db()
    device.throttle_reset()
    response = client.post(reverse("accounts:totp_verify"), {"code": code(device, drift=1), "next": "/"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_taker_may_enrol_optionally(client, world):
    sign_in(client, "taker_a")
    assert reverse("accounts:totp_enrol") in client.get(reverse("accounts:account")).content.decode()
    client.get(reverse("accounts:totp_enrol"))
    device = TOTPDevice.objects.get(user=world.users["taker_a"])
    client.post(reverse("accounts:totp_enrol"), {"code": code(device)})
    device.refresh_from_db()
    assert device.confirmed


@pytest.mark.parametrize(
    ("username", "nav_admin"),
    [("taker_a", False), ("manager_a", False), ("lab_x", False), ("viewer_rm", False), ("admin", True)],
)
def test_navigation_by_role(client, world, username, nav_admin):
    user = world.users[username]
    client.force_login(user)
    if username in {"lab_x", "viewer_rm", "admin"}:
        device = TOTPDevice.objects.create(user=user, name="t", confirmed=True)
        client.post(reverse("accounts:totp_verify"), {"code": code(device)})
    page = client.get("/").content.decode()
    assert 'data-nav="home"' in page
    assert ('data-nav="admin"' in page) is nav_admin
    if username == "taker_a":
        assert "Registrar las muestras" in page
    if username == "lab_x":
        assert "Recepcionar las muestras" in page
    if username == "viewer_rm":
        assert "solo lectura" in page


@pytest.mark.parametrize(("language", "text"), [("vi", "Trang chủ"), ("en", "Home"), ("es", "Inicio")])
def test_language_switch_changes_the_page(client, world, language, text):
    client.force_login(world.users["taker_a"])
    response = client.post("/i18n/setlang/", {"language": language, "next": "/"}, follow=True)
    assert text in response.content.decode()
    assert f'<html lang="{language}">' in response.content.decode()


@pytest.mark.parametrize(("language", "text"), [("es", "Página no encontrada"), ("vi", "Không tìm thấy trang")])
def test_404_is_translated_and_leaks_nothing(client, world, language, text):
    client.force_login(world.users["taker_a"])
    response = client.get("/no-such-page-12345/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 404
    page = response.content.decode()
    assert text in page
    assert "no-such-page-12345" not in page
    assert "Ana" not in page


def test_500_page_renders_without_a_request():
    from django.test import RequestFactory

    from muestra.web.views import error_500

    response = error_500(RequestFactory().get("/"))
    assert response.status_code == 500
    assert "Ocurrió un error" in response.content.decode()


def test_password_reset_sends_a_translated_mail(client, world):
    response = client.post(reverse("accounts:password_reset"), {"email": "taker_a@demo.muestra.invalid"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "restablezca su contraseña" in mail.outbox[0].subject
    assert "/accounts/password-reset/" in mail.outbox[0].body


def test_security_headers(client, world):
    response = client.get(LOGIN)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "csrfmiddlewaretoken" in response.content.decode()
