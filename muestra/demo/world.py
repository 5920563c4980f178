"""A small, fixed world of places and people: the personas every test is written around and the demo data
`make run` shows. Building it is idempotent (natural keys), so the demo seeder can run it again safely.

Chile profile:
  establishment A (CESFAM in Santiago, region 13) and B (hospital in Valparaíso, region 05),
  lab X (assigned to A and B) and lab Y (assigned to B), both authorised for COVID-19 and Mpox.
Personas: taker at A, taker at B, manager of A, lab X staff, lab Y staff, regional viewer of region 13,
national admin, and a citizen account with no staff role.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from muestra.accounts.models import Membership, Role, User
from muestra.catalog.models import Disease
from muestra.facilities.models import Establishment, LabAssignment, Laboratory
from muestra.samples import lookups
from muestra.territories.models import CountryProfile, Territory, TerritoryLevel

DEMO_PASSWORD = "Muestra-demo-2026"  # noqa: S105 - published demo credential, never used in production


@dataclass(frozen=True)
class PersonaSpec:
    username: str
    national_id: str
    role: str
    first_name: str
    last_name: str
    establishment: str = ""
    laboratory: int | None = None
    territory: tuple[str, str] | None = None  # (level, code)


ESTABLISHMENT_A = ("113100", "CESFAM Muestra A (Santiago)", "13101")
ESTABLISHMENT_B = ("105100", "Hospital Muestra B (Valparaíso)", "05101")
LAB_X = (1000000001, "Laboratorio X (Santiago)", "13101")
LAB_Y = (1000000002, "Laboratorio Y (Valparaíso)", "05101")

PERSONAS = [
    PersonaSpec("taker_a", "11111111-1", Role.SAMPLE_TAKER, "Ana", "Tomadora", establishment=ESTABLISHMENT_A[0]),
    PersonaSpec("taker_b", "22222222-2", Role.SAMPLE_TAKER, "Bruno", "Tomador", establishment=ESTABLISHMENT_B[0]),
    PersonaSpec("manager_a", "33333333-3", Role.ESTABLISHMENT_MANAGER, "Marta", "Jefa",
                establishment=ESTABLISHMENT_A[0]),
    PersonaSpec("lab_x", "44444444-4", Role.LAB_STAFF, "Ximena", "Laboratorio", laboratory=LAB_X[0]),
    PersonaSpec("lab_y", "55555555-5", Role.LAB_STAFF, "Yolanda", "Laboratorio", laboratory=LAB_Y[0]),
    PersonaSpec("viewer_rm", "66666666-6", Role.AUTHORITY_VIEWER, "Víctor", "Seremi",
                territory=(TerritoryLevel.CL_REGION, "13")),
    PersonaSpec("admin", "77777777-7", Role.NATIONAL_ADMIN, "Nadia", "Nacional"),
    PersonaSpec("citizen", "88888888-8", "", "Carla", "Ciudadana"),
]


def _comuna(code: str) -> Territory:
    return Territory.objects.get(profile__code="CL", level=TerritoryLevel.CL_COMUNA, code=code)


@transaction.atomic
def build_world(*, password: str = DEMO_PASSWORD) -> dict[str, object]:
    """Creates (or finds) the fixed places and personas. Reference data must already be loaded."""
    chile = CountryProfile.objects.get(code="CL")
    establishments = {}
    for code, name, comuna in (ESTABLISHMENT_A, ESTABLISHMENT_B):
        establishments[code], _ = Establishment.objects.update_or_create(
            code=code, defaults={"name": name, "profile": chile, "territory": _comuna(comuna), "kind": "CESFAM"})
    labs = {}
    diseases = list(Disease.objects.all())
    for platform_id, name, comuna in (LAB_X, LAB_Y):
        lab, _ = Laboratory.objects.update_or_create(
            platform_id=platform_id,
            defaults={"name": name, "profile": chile, "territory": _comuna(comuna), "daily_capacity": 2000})
        lab.diseases.set(diseases)
        labs[platform_id] = lab
    for est_code, lab_id in ((ESTABLISHMENT_A[0], LAB_X[0]), (ESTABLISHMENT_B[0], LAB_X[0]),
                             (ESTABLISHMENT_B[0], LAB_Y[0])):
        LabAssignment.objects.get_or_create(establishment=establishments[est_code], laboratory=labs[lab_id])
    users = {}
    for spec in PERSONAS:
        user, created = User.objects.get_or_create(
            username=spec.username,
            defaults={"national_id": spec.national_id, "first_name": spec.first_name, "last_name": spec.last_name,
                      "email": f"{spec.username}@demo.muestra.invalid",
                      "is_staff": spec.role == Role.NATIONAL_ADMIN, "is_superuser": spec.role == Role.NATIONAL_ADMIN},
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        if spec.role and not user.memberships.exists():
            territory = None
            if spec.territory is not None:
                territory = Territory.objects.get(profile=chile, level=spec.territory[0], code=spec.territory[1])
            Membership.objects.create(
                user=user, role=spec.role,
                establishment=establishments.get(spec.establishment) if spec.establishment else None,
                laboratory=labs[spec.laboratory] if spec.laboratory else None, territory=territory)
        users[spec.username] = user
    lookups.clear()
    return {"establishments": establishments, "labs": labs, "users": users}
