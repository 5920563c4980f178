"""A small, fixed world of places and people: the personas every test is written around and the demo data
`make run` shows. Building it is idempotent (natural keys), so the demo seeder can run it again safely.

Chile profile:
  establishment A (CESFAM in Santiago, region 13) and B (hospital in Valparaíso, region 05),
  lab X (assigned to A and B) and lab Y (assigned to B), both authorised for COVID-19 and Mpox.
Personas: taker at A, taker at B, manager of A, lab X staff, lab Y staff, regional viewer of region 13,
national admin, and a citizen account with no staff role.

`build_demo_world` adds what only the demo shows (the test fixtures keep the smaller world above): a third Chilean
establishment C (Puente Alto) sending to lab X, and the Vietnam profile: an establishment and lab Z in Hồ Chí Minh
City (2025 province 79) with a Vietnamese sample taker and lab persona.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.hashers import make_password
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
    language: str = ""  # the user's interface language; "" follows the browser


ESTABLISHMENT_A = ("113100", "CESFAM Muestra A (Santiago)", "13101")
ESTABLISHMENT_B = ("105100", "Hospital Muestra B (Valparaíso)", "05101")
LAB_X = (1000000001, "Laboratorio X (Santiago)", "13101")
LAB_Y = (1000000002, "Laboratorio Y (Valparaíso)", "05101")

PERSONAS = [
    PersonaSpec("taker_a", "11111111-1", Role.SAMPLE_TAKER, "Ana", "Tomadora", establishment=ESTABLISHMENT_A[0]),
    PersonaSpec("taker_b", "22222222-2", Role.SAMPLE_TAKER, "Bruno", "Tomador", establishment=ESTABLISHMENT_B[0]),
    PersonaSpec(
        "manager_a", "33333333-3", Role.ESTABLISHMENT_MANAGER, "Marta", "Jefa", establishment=ESTABLISHMENT_A[0]
    ),
    PersonaSpec("lab_x", "44444444-4", Role.LAB_STAFF, "Ximena", "Laboratorio", laboratory=LAB_X[0]),
    PersonaSpec("lab_y", "55555555-5", Role.LAB_STAFF, "Yolanda", "Laboratorio", laboratory=LAB_Y[0]),
    PersonaSpec(
        "viewer_rm", "66666666-6", Role.AUTHORITY_VIEWER, "Víctor", "Seremi", territory=(TerritoryLevel.CL_REGION, "13")
    ),
    PersonaSpec("admin", "77777777-7", Role.NATIONAL_ADMIN, "Nadia", "Nacional"),
    PersonaSpec("citizen", "88888888-8", "", "Carla", "Ciudadana"),
]


# Only in the demo (build_demo_world): more places and the Vietnamese personas.
ESTABLISHMENT_C = ("113200", "SAPU Muestra C (Puente Alto)", "13201")
ESTABLISHMENT_VN = ("VN79001", "Trạm Y tế Muestra (TP. Hồ Chí Minh)", "79")  # 2025 province code
LAB_VN = (1000000079, "Phòng xét nghiệm Muestra Z (TP. Hồ Chí Minh)", "79")

DEMO_PERSONAS = [
    PersonaSpec("taker_c", "99999999-9", Role.SAMPLE_TAKER, "Camila", "Tomadora", establishment=ESTABLISHMENT_C[0]),
    # Vietnamese national ids are CCCD numbers: province 079 (HCMC), century/sex digit, birth year, serial.
    PersonaSpec(
        "taker_vn",
        "079188000101",
        Role.SAMPLE_TAKER,
        "Thị Lan",
        "Nguyễn",
        establishment=ESTABLISHMENT_VN[0],
        language="vi",
    ),
    PersonaSpec("lab_vn", "079090000202", Role.LAB_STAFF, "Văn Minh", "Trần", laboratory=LAB_VN[0], language="vi"),
]


def _comuna(code: str) -> Territory:
    return Territory.objects.get(profile__code="CL", level=TerritoryLevel.CL_COMUNA, code=code)


def _vn_province(code: str) -> Territory:
    return Territory.objects.get(profile__code="VN", level=TerritoryLevel.VN_PROVINCE, code=code)


class _PasswordHash:
    """The demo password hashed once, on first need, and shared by every demo user.

    Argon2 is slow on purpose (a tenth of a second or more per hash), so hashing per user made seeding take
    seconds. One salt for all demo accounts gives nothing away: their common password is published anyway.
    """

    def __init__(self, password: str) -> None:
        self._password = password
        self._hashed: str | None = None

    def hashed(self) -> str:
        if self._hashed is None:
            self._hashed = make_password(self._password)
        return self._hashed


def _ensure_persona(
    spec: PersonaSpec,
    *,
    establishments: dict[str, Establishment],
    labs: dict[int, Laboratory],
    password: _PasswordHash,
) -> User:
    """The persona's user with its one membership; an existing user (and a changed password) is left alone."""
    user, created = User.objects.get_or_create(
        username=spec.username,
        defaults={
            "national_id": spec.national_id,
            "first_name": spec.first_name,
            "last_name": spec.last_name,
            "email": f"{spec.username}@demo.muestra.invalid",
            "language": spec.language,
            "is_staff": spec.role == Role.NATIONAL_ADMIN,
            "is_superuser": spec.role == Role.NATIONAL_ADMIN,
        },
    )
    if created:
        user.password = password.hashed()
        user.save(update_fields=["password"])
    if spec.role and not user.memberships.exists():
        territory = None
        if spec.territory is not None:
            territory = Territory.objects.get(profile__code="CL", level=spec.territory[0], code=spec.territory[1])
        Membership.objects.create(
            user=user,
            role=spec.role,
            establishment=establishments.get(spec.establishment) if spec.establishment else None,
            laboratory=labs[spec.laboratory] if spec.laboratory else None,
            territory=territory,
        )
    return user


@transaction.atomic
def build_world(*, password: str = DEMO_PASSWORD) -> dict[str, object]:
    """Creates (or finds) the fixed places and personas. Reference data must already be loaded."""
    chile = CountryProfile.objects.get(code="CL")
    establishments = {}
    for code, name, comuna in (ESTABLISHMENT_A, ESTABLISHMENT_B):
        establishments[code], _ = Establishment.objects.update_or_create(
            code=code, defaults={"name": name, "profile": chile, "territory": _comuna(comuna), "kind": "CESFAM"}
        )
    labs = {}
    diseases = list(Disease.objects.all())
    for platform_id, name, comuna in (LAB_X, LAB_Y):
        lab, _ = Laboratory.objects.update_or_create(
            platform_id=platform_id,
            defaults={"name": name, "profile": chile, "territory": _comuna(comuna), "daily_capacity": 2000},
        )
        lab.diseases.set(diseases)
        labs[platform_id] = lab
    for est_code, lab_id in (
        (ESTABLISHMENT_A[0], LAB_X[0]),
        (ESTABLISHMENT_B[0], LAB_X[0]),
        (ESTABLISHMENT_B[0], LAB_Y[0]),
    ):
        LabAssignment.objects.get_or_create(establishment=establishments[est_code], laboratory=labs[lab_id])
    users = {}
    hashed = _PasswordHash(password)
    for spec in PERSONAS:
        users[spec.username] = _ensure_persona(spec, establishments=establishments, labs=labs, password=hashed)
    lookups.clear()
    return {"establishments": establishments, "labs": labs, "users": users}


@transaction.atomic
def build_demo_world(*, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    """`build_world` plus the demo-only places and personas (establishment C, the Vietnamese site and lab).

    Kept apart from `build_world` so the test fixtures' world (and every count a test makes in it) stays small.
    """
    built: dict[str, Any] = build_world(password=password)
    establishments: dict[str, Establishment] = built["establishments"]
    labs: dict[int, Laboratory] = built["labs"]
    chile = CountryProfile.objects.get(code="CL")
    vietnam = CountryProfile.objects.get(code="VN")
    code, name, comuna = ESTABLISHMENT_C
    establishments[code], _ = Establishment.objects.update_or_create(
        code=code, defaults={"name": name, "profile": chile, "territory": _comuna(comuna), "kind": "SAPU"}
    )
    code, name, province = ESTABLISHMENT_VN
    establishments[code], _ = Establishment.objects.update_or_create(
        code=code, defaults={"name": name, "profile": vietnam, "territory": _vn_province(province), "kind": "Trạm Y tế"}
    )
    platform_id, name, province = LAB_VN
    lab_vn, _ = Laboratory.objects.update_or_create(
        platform_id=platform_id,
        defaults={"name": name, "profile": vietnam, "territory": _vn_province(province), "daily_capacity": 20000},
    )
    # Lab Z is authorised for COVID-19 only, so the demo shows a lab that refuses another disease.
    lab_vn.diseases.set(Disease.objects.filter(code="covid19"))
    labs[platform_id] = lab_vn
    for est_code, lab_id in ((ESTABLISHMENT_C[0], LAB_X[0]), (ESTABLISHMENT_VN[0], LAB_VN[0])):
        LabAssignment.objects.get_or_create(establishment=establishments[est_code], laboratory=labs[lab_id])
    users: dict[str, User] = built["users"]
    hashed = _PasswordHash(password)
    for spec in DEMO_PERSONAS:
        users[spec.username] = _ensure_persona(spec, establishments=establishments, labs=labs, password=hashed)
    lookups.clear()
    return {"establishments": establishments, "labs": labs, "users": users}


def all_demo_personas() -> list[PersonaSpec]:
    """Every persona of the demo: the test personas first, then the demo-only ones."""
    return [*PERSONAS, *DEMO_PERSONAS]
