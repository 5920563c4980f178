"""Sign-in, two-factor sign-in (TOTP), the account page, password change and reset, replacing an authenticator,
and the language switcher that remembers the choice. The writes live in services.py."""

from __future__ import annotations

import base64
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.i18n import set_language
from django_otp import login as otp_login

from muestra.accounts.forms import PasswordChangeForm, SignInForm, TotpCodeForm
from muestra.accounts.services import (
    totp_confirmed_device,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_verify,
    two_factor_required,
    user_language_remember,
)
from muestra.web.access import staff_required

#: Set in the session once the current authenticator's code was confirmed on the "replace authenticator" page.
REPLACE_CONFIRMED_SESSION_KEY = "muestra_totp_replace_confirmed"


def _apply_language(response: HttpResponse, language: str) -> None:
    """Activates `language` for the rest of this request and keeps it in the language cookie."""
    translation.activate(language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


def _supported(language: str) -> bool:
    return language in {code for code, _name in settings.LANGUAGES}


class SignInView(auth_views.LoginView):
    """Sign-in; a user's stored language (User.language) becomes the interface language from here on."""

    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        language = form.get_user().language
        if language and _supported(language):
            _apply_language(response, language)
        return response


@require_POST
def set_language_view(request: HttpRequest) -> HttpResponse:
    """Django's own language switcher, which also stores the choice on the signed-in user's account."""
    response = set_language(request)
    language = request.POST.get("language", "")
    user: Any = request.user
    if user.is_authenticated and _supported(language) and response.status_code in (200, 204, 302):
        user_language_remember(user=user, language=language)
    return response


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
    context = {
        **_enrolment_context(device),
        "form": form,
        "next": _next_url(request),
        "required": two_factor_required(user),
    }
    return render(request, "accounts/totp_enrol.html", context)


def _enrolment_context(device: Any) -> dict[str, Any]:
    secret = base64.b32encode(device.bin_key).decode()
    return {
        "qr_svg": _qr_svg(device.config_url),
        "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    }


@staff_required
def account_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    context = {"has_device": totp_confirmed_device(user) is not None, "required": two_factor_required(user)}
    return render(request, "accounts/account.html", context)


@never_cache
@staff_required
@sensitive_post_parameters("code")
def totp_replace_view(request: HttpRequest) -> HttpResponse:
    """Replacing an authenticator (a new phone), step 1: prove you hold the current one with a fresh code."""
    user: Any = request.user
    if totp_confirmed_device(user) is None:
        return redirect("accounts:totp_enrol")
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_verify(user=user, token=form.cleaned_data["code"]) is not None:
            request.session[REPLACE_CONFIRMED_SESSION_KEY] = True
            return redirect("accounts:totp_replace_enrol")
        form.add_error("code", _("That code is not valid or was already used. Wait for the next code and try again."))
    return render(request, "accounts/totp_replace.html", {"form": form})


@never_cache
@staff_required
@sensitive_post_parameters("code")
def totp_replace_enrol_view(request: HttpRequest) -> HttpResponse:
    """Step 2: scan the new authenticator and confirm it; the old one stops working at that moment."""
    user: Any = request.user
    if not request.session.get(REPLACE_CONFIRMED_SESSION_KEY):
        return redirect("accounts:totp_replace")
    device = totp_enrolment_start(user=user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_enrolment_confirm(user=user, device=device, token=form.cleaned_data["code"]):
            request.session.pop(REPLACE_CONFIRMED_SESSION_KEY, None)
            otp_login(request, device)
            messages.success(request, _("Your new authenticator is set up. The previous one no longer works."))
            return redirect("accounts:account")
        form.add_error("code", _("That code does not match. Check your device's clock and try the next code."))
    context = {**_enrolment_context(device), "form": form, "replacing": True, "next": reverse("accounts:account")}
    return render(request, "accounts/totp_enrol.html", context)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"
    form_class = PasswordChangeForm
    success_url = reverse_lazy("accounts:account")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)  # keeps this session signed in (update_session_auth_hash)
        messages.success(self.request, _("Your password has been changed."))
        return response


password_change_view = staff_required(PasswordChangeView.as_view())  # type: ignore[arg-type]


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset_email.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")
