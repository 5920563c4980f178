"""The page shell's own screens: the home page and the error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader

from muestra.web.access import request_actor, staff_required
from muestra.web.navigation import abilities


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {"abilities": abilities(request_actor(request))})


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The requested path and the exception are deliberately not passed to the template.
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    # No request context: the failure may lie in the database or a context processor.
    return HttpResponse(loader.get_template("500.html").render(), status=500)
