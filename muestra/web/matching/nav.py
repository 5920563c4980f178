"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from muestra.accounts.scoping import Actor
from muestra.integrations import matching
from muestra.web.navigation import NavItem


def nav_items(actor: Actor) -> list[NavItem]:
    if not actor.laboratory_ids:
        return []
    waiting = matching.held_items(actor).count()
    return [NavItem("matching", _("To match (%(count)d)") % {"count": waiting}, reverse("matching:list"))]
