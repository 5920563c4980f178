"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.integrations.selectors import may_supervise
from muestra.web.navigation import NavItem


def nav_items(actor: Actor) -> list[NavItem]:
    """Lab staff and managers (their labs) and national administrators (every lab)."""
    if not may_supervise(actor):
        return []
    return [NavItem("supervision", _("Supervision"), reverse("supervision:overview"))]
