"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from muestra.accounts.scoping import Actor
from muestra.samples.selectors import pending_correction_request_count
from muestra.web.navigation import NavItem


def nav_items(actor: Actor) -> list[NavItem]:
    if not actor.is_admin:
        return []
    # One indexed count per page for administrators only; built per request, so plain gettext is translated.
    pending = pending_correction_request_count(actor)
    label = _("Correction requests (%(count)d)") % {"count": pending} if pending else _("Correction requests")
    return [NavItem("corrections", label, reverse("corrections:list"))]
