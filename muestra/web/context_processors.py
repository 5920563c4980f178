"""Puts the page shell's data (navigation, the user's roles and places) into every page rendered with a request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from muestra.accounts.services import two_factor_required_for
from muestra.web.access import request_actor
from muestra.web.navigation import navigation, places


def shell(request: HttpRequest) -> dict[str, Any]:
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    actor = request_actor(request)
    if not user.is_verified() and two_factor_required_for(actor):
        # Half signed in (password given, second factor not yet): show no navigation and no places.
        return {"shell_pending_second_factor": True}
    return {"nav_items": navigation(actor), "user_places": places(actor)}
