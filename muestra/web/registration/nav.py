"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.web.navigation import NavItem
from muestra.web.registration.forms import may_register


def nav_items(actor: Actor) -> list[NavItem]:
    if not may_register(actor):
        return []
    return [NavItem("registration", _("Register a sample"), reverse("registration:new"))]
