"""The gate of every staff screen: signed in, and with a verified second factor when the role requires one."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from muestra.accounts.scoping import Actor, actor_for_user
from muestra.accounts.services import totp_confirmed_device, two_factor_required_for

View = Callable[..., HttpResponse]


def second_factor_redirect(request: HttpRequest) -> HttpResponse | None:
    """Where a signed-in user must go first (verify or enrol an authenticator), or None when they may proceed."""
    user: Any = request.user
    if user.is_verified() or not two_factor_required_for(request_actor(request)):
        return None
    target = "accounts:totp_verify" if totp_confirmed_device(user) else "accounts:totp_enrol"
    return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")


def staff_required(view: View) -> View:
    """Requires a signed-in, active user, and a verified TOTP device for the roles that need two factors."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return second_factor_redirect(request) or view(request, *args, **kwargs)

    return wrapper


def request_actor(request: HttpRequest) -> Actor:
    """The signed-in user as an Actor, computed once per request (the shell and the view share it)."""
    cached: Actor | None = getattr(request, "_muestra_actor", None)
    if cached is None:
        user: Any = request.user
        cached = actor_for_user(user)
        request._muestra_actor = cached  # type: ignore[attr-defined]
    return cached


def actor_or_404(request: HttpRequest, allowed: Callable[[Actor], object]) -> Actor:
    """The request's actor when `allowed(actor)` holds; 404 otherwise (another role's page looks like a missing one)."""
    actor = request_actor(request)
    if not allowed(actor):
        raise Http404
    return actor
