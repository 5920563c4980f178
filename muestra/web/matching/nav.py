"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from muestra.accounts.scoping import Actor
from muestra.web.navigation import NavItem


def nav_items(actor: Actor) -> list[NavItem]:
    return []
