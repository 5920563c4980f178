"""What the page shell shows a user: their roles, places and the screens they may open.

Only screens that exist are listed. Each area of the staff screens (muestra/web/<area>/) declares its own entries
in its `nav.py` (`nav_items(actor) -> list[NavItem]`), listing only what the actor's roles may open.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import Membership, Role
from muestra.accounts.scoping import Actor


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str | Promise
    url: str


@dataclass(frozen=True)
class Place:
    role: str | Promise
    name: str


#: What each role may do, in a sentence, for the home page.
ROLE_ABILITIES: dict[str, Promise] = {
    Role.SAMPLE_TAKER: _("Register samples taken at your establishment, follow them and prepare shipments."),
    Role.ESTABLISHMENT_MANAGER: _(
        "Everything a sample taker does, plus managing your establishment's samples and shipments."
    ),
    Role.LAB_STAFF: _("Receive samples sent to your laboratory, reject them or report their results."),
    Role.LAB_MANAGER: _("Everything laboratory staff do, plus corrections and your laboratory's worklists."),
    Role.AUTHORITY_VIEWER: _("Consult samples and results of the establishments in your territory (read only)."),
    Role.NATIONAL_ADMIN: _("Administer users, establishments, laboratories, catalogues and API keys."),
}


#: The areas in the order their entries appear in the navigation bar.
AREAS = (
    "registration",
    "mysamples",
    "shipping",
    "lab",
    "uploads",
    "matching",
    "supervision",
    "corrections",
    "territory",
)


def navigation(actor: Actor) -> list[NavItem]:
    items = [NavItem("home", _("Home"), reverse("web:home"))]
    for area in AREAS:
        module = import_module(f"muestra.web.{area}.nav")
        items.extend(module.nav_items(actor))
    if actor.is_admin:
        items.append(NavItem("admin", _("Administration"), reverse("admin:index")))
    items.append(NavItem("account", _("My account"), reverse("accounts:account")))
    return items


def places(actor: Actor) -> list[Place]:
    """The user's roles with the establishment, laboratory or territory each applies to."""
    memberships: list[Membership] = actor.extra.get("memberships", [])
    result = []
    for m in memberships:
        place = m.establishment or m.laboratory or m.territory
        result.append(Place(m.get_role_display(), str(place) if place else str(_("Whole country"))))
    if not result and actor.user is not None and actor.user.is_superuser:
        result.append(Place(Role.NATIONAL_ADMIN.label, str(_("Whole country"))))
    return result


def abilities(actor: Actor) -> list[Promise]:
    roles = set(actor.roles)
    if actor.is_admin:
        roles.add(Role.NATIONAL_ADMIN)
    return [ROLE_ABILITIES[role] for role in Role.values if role in roles]
