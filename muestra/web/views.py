"""The page shell's own screens: the home page and the error pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader

from muestra.accounts.scoping import actor_for_user
from muestra.web.access import staff_required
from muestra.web.navigation import abilities


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    return render(request, "web/home.html", {"abilities": abilities(actor_for_user(user))})


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The requested path and the exception are deliberately not passed to the template.
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    # No request context: the failure may lie in the database or a context processor.
    return HttpResponse(loader.get_template("500.html").render(), status=500)
