"""Who may see what. This module is the single place that decides it.

Every request is turned into an `Actor` (from a logged-in user's memberships or from an API key), and every
queryset of samples, patients, results, shipments or events passes through `scoped()` before it is read. A record
outside the actor's scope is simply absent from the queryset, so the caller answers 404 exactly as for a record
that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from muestra.accounts.models import ESTABLISHMENT_ROLES, LAB_ROLES, ApiKey, Membership, Role, User
from muestra.territories.models import TerritoryLevel

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Actor:
    """The caller of a service: who they are (for the audit trail) and where they may act."""

    label: str  # "user:12", "apikey:3", "system", "anonymous"
    user: User | None = None
    api_key: ApiKey | None = None
    roles: frozenset[str] = frozenset()
    establishment_ids: frozenset[int] = frozenset()
    managed_establishment_ids: frozenset[int] = frozenset()
    laboratory_ids: frozenset[int] = frozenset()
    territory_paths: tuple[str, ...] = ()
    health_service_ids: frozenset[int] = frozenset()
    sees_everything: bool = False
    is_admin: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None

    def acts_for_establishment(self, establishment_id: int) -> bool:
        return self.is_admin or establishment_id in self.establishment_ids

    def acts_for_laboratory(self, laboratory_id: int | None) -> bool:
        return laboratory_id is not None and (self.is_admin or laboratory_id in self.laboratory_ids)

    @property
    def is_lab(self) -> bool:
        return bool(self.laboratory_ids)


SYSTEM = Actor(label="system", sees_everything=True, is_admin=True)
ANONYMOUS = Actor(label="anonymous")


def actor_for_user(user: User) -> Actor:
    if not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    # The places are joined too: the staff pages' shell lists them from `actor.extra["memberships"]`.
    memberships = list(
        Membership.objects.filter(user=user).select_related("territory", "establishment", "laboratory").order_by("pk")
    )
    roles = {m.role for m in memberships}
    is_admin = Role.NATIONAL_ADMIN in roles or user.is_superuser
    territory_paths: list[str] = []
    health_services: set[int] = set()
    national_viewer = False
    for m in memberships:
        if m.role != Role.AUTHORITY_VIEWER:
            continue
        if m.territory is None:
            national_viewer = True
        elif m.territory.level == TerritoryLevel.CL_HEALTH_SERVICE:
            health_services.add(m.territory.pk)
        else:
            territory_paths.append(m.territory.path)
    return Actor(
        label=f"user:{user.pk}",
        user=user,
        roles=frozenset(roles),
        establishment_ids=frozenset(
            m.establishment_id for m in memberships if m.role in ESTABLISHMENT_ROLES and m.establishment_id
        ),
        managed_establishment_ids=frozenset(
            m.establishment_id for m in memberships if m.role == Role.ESTABLISHMENT_MANAGER and m.establishment_id
        ),
        laboratory_ids=frozenset(m.laboratory_id for m in memberships if m.role in LAB_ROLES and m.laboratory_id),
        territory_paths=tuple(territory_paths),
        health_service_ids=frozenset(health_services),
        sees_everything=is_admin or national_viewer,
        is_admin=is_admin,
        extra={"memberships": memberships},
    )


def actor_for_api_key(api_key: ApiKey) -> Actor:
    return Actor(
        label=f"apikey:{api_key.pk}",
        api_key=api_key,
        roles=frozenset({Role.LAB_STAFF} if api_key.laboratory_id else {Role.SAMPLE_TAKER}),
        establishment_ids=frozenset({api_key.establishment_id}) if api_key.establishment_id else frozenset(),
        laboratory_ids=frozenset({api_key.laboratory_id}) if api_key.laboratory_id else frozenset(),
    )


def _territory_q(actor: Actor, establishment_prefix: str) -> Q:
    """Rows whose establishment lies in one of the actor's territories (prefix: "establishment__" or "")."""
    p = establishment_prefix
    q = Q(pk__in=[])
    for path in actor.territory_paths:
        q |= Q(**{f"{p}territory__path__startswith": path + "."}) | Q(**{f"{p}territory__path": path})
    if actor.health_service_ids:
        q |= Q(**{f"{p}territory__health_service_id__in": actor.health_service_ids})
    return q


def _sample_q(actor: Actor, prefix: str = "") -> Q:
    p = prefix
    q = Q(**{f"{p}establishment_id__in": actor.establishment_ids}) if actor.establishment_ids else Q(pk__in=[])
    if actor.laboratory_ids:
        # A lab sees what is assigned to it now, and what it created under its own codes (to follow its fate).
        q |= Q(**{f"{p}laboratory_id__in": actor.laboratory_ids}) | Q(**{f"{p}client_lab_id__in": actor.laboratory_ids})
    if actor.territory_paths or actor.health_service_ids:
        q |= _territory_q(actor, f"{p}establishment__")
    return q


def scoped(actor: Actor, queryset: QuerySet[M]) -> QuerySet[M]:
    """`queryset` narrowed to what `actor` may see. The one gate every read passes through."""
    if actor.sees_everything:
        return queryset
    model_name = queryset.model._meta.label
    if not (actor.establishment_ids or actor.laboratory_ids or actor.territory_paths or actor.health_service_ids):
        return queryset.none()
    if model_name == "samples.Sample":
        return queryset.filter(_sample_q(actor))
    if model_name in {
        "samples.SampleEvent",
        "samples.Result",
        "samples.CorrectionAuthorization",
        "samples.CorrectionRequest",
        "samples.ShipmentItem",
    }:
        return queryset.filter(_sample_q(actor, "sample__"))
    if model_name == "samples.Shipment":
        q = Q(pk__in=[])
        if actor.establishment_ids:
            q |= Q(establishment_id__in=actor.establishment_ids)
        if actor.laboratory_ids:
            q |= Q(laboratory_id__in=actor.laboratory_ids)
        if actor.territory_paths or actor.health_service_ids:
            q |= _territory_q(actor, "establishment__")
        return queryset.filter(q)
    if model_name in {"integrations.Intake", "integrations.IntakeItem"}:
        # What a lab or establishment sent (or what was sent for it); authorities do not supervise lab systems.
        p = "intake__" if model_name == "integrations.IntakeItem" else ""
        q = Q(pk__in=[])
        if actor.laboratory_ids:
            q |= Q(**{f"{p}laboratory_id__in": actor.laboratory_ids})
        if actor.establishment_ids:
            q |= Q(**{f"{p}establishment_id__in": actor.establishment_ids})
        return queryset.filter(q)
    if model_name == "patients.Patient":
        from muestra.samples.models import Sample

        visible_samples = Sample.objects.filter(_sample_q(actor)).values("patient_id")
        return queryset.filter(pk__in=visible_samples)
    if model_name == "facilities.Establishment":
        q = Q(pk__in=actor.establishment_ids) | Q(laboratories__in=actor.laboratory_ids)
        if actor.territory_paths or actor.health_service_ids:
            q |= _territory_q(actor, "")
        return queryset.filter(q).distinct()
    if model_name == "facilities.Laboratory":
        return queryset.filter(
            Q(pk__in=actor.laboratory_ids) | Q(establishments__in=actor.establishment_ids)
        ).distinct()
    raise LookupError(f"No scoping rule for {model_name}; add one here before exposing it.")
