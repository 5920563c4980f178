"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.web.navigation import NavItem


def nav_items(actor: Actor) -> list[NavItem]:
    if not actor.laboratory_ids:
        return []
    return [
        NavItem("lab-worklist", _("Worklists"), reverse("lab:worklist")),
        NavItem("lab-receive", _("Receive"), reverse("lab:receive")),
        NavItem("lab-results", _("Results"), reverse("lab:results")),
    ]
