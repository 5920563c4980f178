"""Sign-in, two-factor sign-in (TOTP), the account page and password reset. The writes live in services.py."""

from __future__ import annotations

import base64
from typing import Any

import segno
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from muestra.accounts.forms import SignInForm, TotpCodeForm
from muestra.accounts.services import (
    totp_confirmed_device,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_verify,
    two_factor_required,
)
from muestra.web.access import staff_required


class SignInView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("web:home")


@never_cache
@login_required
@sensitive_post_parameters("code")
def totp_verify_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    if totp_confirmed_device(user) is None:
        if two_factor_required(user):
            return redirect(f"{reverse('accounts:totp_enrol')}?{request.GET.urlencode()}")
        return redirect(_next_url(request))
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = totp_verify(user=user, token=form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            return redirect(_next_url(request))
        form.add_error("code", _("That code is not valid or was already used. Wait for the next code and try again."))
    return render(request, "accounts/totp_verify.html", {"form": form, "next": _next_url(request)})


def _qr_svg(uri: str) -> str:
    return segno.make(uri, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", omitsize=True, title=str(_("QR code"))
    )


@never_cache
@login_required
@sensitive_post_parameters("code")
def totp_enrol_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if totp_confirmed_device(user) is not None:
        # Replacing an authenticator is for a later screen (after verifying the current one).
        return redirect(reverse("accounts:account") if user.is_verified() else reverse("accounts:totp_verify"))
    device = totp_enrolment_start(user=user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_enrolment_confirm(user=user, device=device, token=form.cleaned_data["code"]):
            otp_login(request, device)
            messages.success(request, _("Two-factor sign-in is now on for your account."))
            return redirect(_next_url(request))
        form.add_error("code", _("That code does not match. Check your device's clock and try the next code."))
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "next": _next_url(request),
        "qr_svg": _qr_svg(device.config_url),
        "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "required": two_factor_required(user),
    }
    return render(request, "accounts/totp_enrol.html", context)


@staff_required
def account_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    context = {"has_device": totp_confirmed_device(user) is not None, "required": two_factor_required(user)}
    return render(request, "accounts/account.html", context)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset_email.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")
