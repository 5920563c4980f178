"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.web.navigation import NavItem


def nav_items(actor: Actor) -> list[NavItem]:
    # Sample takers and establishment managers: the samples of their establishments.
    if not actor.establishment_ids:
        return []
    return [NavItem("mysamples", _("My samples"), reverse("mysamples:list"))]
