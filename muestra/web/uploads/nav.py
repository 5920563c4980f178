"""This area's entries in the navigation bar, for the roles that may open them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.integrations.bulk.services import may_upload
from muestra.web.navigation import NavItem


def nav_items(actor: Actor) -> list[NavItem]:
    """Lab staff and managers, sample takers and establishment managers."""
    if not may_upload(actor):
        return []
    return [NavItem("uploads", _("Uploads"), reverse("uploads:list"))]
