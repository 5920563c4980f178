"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import Role
from muestra.accounts.scoping import Actor
from muestra.web.navigation import NavItem


def may_use(actor: Actor) -> bool:
    """Authority viewers and national administrators (read only)."""
    return actor.is_admin or Role.AUTHORITY_VIEWER in actor.roles


def nav_items(actor: Actor) -> list[NavItem]:
    if not may_use(actor):
        return []
    return [NavItem("territory", _("Territory samples"), reverse("territory:list"))]
