"""The demo data behind `manage.py seed_demo` and what `manage.py demo_info` shows about it.

Everything is written through the real services with the personas' own actors, so the demo's samples, events,
audit entries and shipments are exactly what real use produces (and a service that misbehaves fails the seeding
instead of being papered over). The people are fictitious: invented name combinations, RUN numbers from the unused
91 million range and phone numbers that follow the national formats.

Seeding happens once: the samples that lab X's LIS "created" under its own codes (`DEMO-X-...`) mark the demo as
present, and all samples are written in one transaction, so the marker exists exactly when the rest does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from muestra.accounts.models import Membership, User
from muestra.accounts.scoping import Actor, actor_for_user
from muestra.catalog.models import Test
from muestra.core.reference import LoadReport, load_all
from muestra.demo import world
from muestra.demo.builders import REPORT
from muestra.facilities.models import Establishment, LabAssignment, Laboratory
from muestra.patients.documents import run_check_digit
from muestra.patients.models import Patient
from muestra.samples import services
from muestra.samples.inputs import PatientInput, SampleInput
from muestra.samples.models import Channel, Sample, SampleEvent, Shipment
from muestra.territories.models import CountryProfile

#: Lab X's LIS registers some samples under its own codes with this prefix; their presence marks the demo seeded.
DEMO_CODE_PREFIX = "DEMO-"
CITIZEN_ROLE = "citizen"

EST_A = world.ESTABLISHMENT_A[0]
EST_B = world.ESTABLISHMENT_B[0]
EST_C = world.ESTABLISHMENT_C[0]
EST_VN = world.ESTABLISHMENT_VN[0]
LAB_X = world.LAB_X[0]
LAB_Y = world.LAB_Y[0]
LAB_VN = world.LAB_VN[0]
DEMO_ESTABLISHMENTS = (EST_A, EST_B, EST_C, EST_VN)
DEMO_LABS = (LAB_X, LAB_Y, LAB_VN)

#: The signed report of a corrected result: a new document, not the first one again.
CORRECTED_REPORT = services.ReportFile(b"%PDF-1.4\n% Muestra demo signed report (corrected)\n%%EOF\n")

VN_RESIDENCE_HCMC = "VN:vn_province:79"  # the residence key of Hồ Chí Minh City (2025 province 79)


# --- fictitious people ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A tested person as the registration form would capture them."""

    given_names: str
    paternal_surname: str
    maternal_surname: str
    sex: str
    birth_date: date
    residence: str
    address: str
    phone: str
    document_number: str
    document_type: str = "run"
    insurance: str = "fonasa"

    def as_input(self) -> PatientInput:
        return PatientInput(
            document_type=self.document_type,
            document_number=self.document_number,
            given_names=self.given_names,
            paternal_surname=self.paternal_surname,
            maternal_surname=self.maternal_surname,
            birth_date=self.birth_date,
            sex=self.sex,
            residence=self.residence,
            address=self.address,
            phone=self.phone,
            insurance=self.insurance,
        )


def _run(body: int) -> str:
    return f"{body}-{run_check_digit(body)}"


# (given names, first surname, second surname, sex, birth date, comuna, address). Common Chilean names combined
# at random: any resemblance to a real person is accidental.
_CHILEANS: tuple[tuple[str, str, str, str, date, str, str], ...] = (
    ("Valentina", "Rojas", "Muñoz", "F", date(1991, 2, 11), "13101", "Calle San Diego 845, depto. 1203"),
    ("Matías", "González", "Soto", "M", date(1987, 7, 3), "13101", "Av. Santa Rosa 1520"),
    ("Catalina", "Díaz", "Contreras", "F", date(2001, 10, 22), "13123", "Av. Pedro de Valdivia 3310, depto. 51"),
    ("Benjamín", "Pérez", "Silva", "M", date(1979, 4, 30), "13120", "Calle Los Jazmines 472"),
    ("Francisca", "Martínez", "Sepúlveda", "F", date(1965, 12, 5), "13110", "Pasaje Los Aromos 2231"),
    ("Vicente", "Morales", "Fuentes", "M", date(2012, 6, 17), "13110", "Av. Vicuña Mackenna 7120, casa 14"),
    ("Antonia", "Araya", "Espinoza", "F", date(1995, 1, 9), "13101", "Calle Lira 390, depto. 806"),
    ("Joaquín", "Torres", "Castillo", "M", date(1958, 8, 28), "13114", "Calle Las Hualtatas 9110"),
    ("Javiera", "Reyes", "Vargas", "F", date(1983, 3, 14), "13101", "Av. Matta 1045"),
    ("Tomás", "Flores", "Cortés", "M", date(1999, 11, 2), "13123", "Calle Marchant Pereira 221"),
    ("Isidora", "Herrera", "Núñez", "F", date(1948, 5, 19), "13101", "Calle Portugal 612, depto. 34"),
    ("Agustín", "Castro", "Tapia", "M", date(1972, 9, 7), "13120", "Av. Irarrázaval 2980"),
    ("Rosa", "Moya", "Aravena", "F", date(1939, 1, 25), "13101", "Residencia Los Almendros, Calle Sazié 1933"),
    ("Luis", "Cárdenas", "Saavedra", "M", date(1942, 6, 3), "13101", "Residencia Los Almendros, Calle Sazié 1933"),
    ("Gloria", "Leiva", "Vidal", "F", date(1945, 10, 30), "13101", "Residencia Los Almendros, Calle Sazié 1933"),
    ("Fernanda", "Vega", "Bravo", "F", date(1990, 8, 8), "05101", "Calle Templeman 512, Cerro Alegre"),
    ("Cristóbal", "Carrasco", "Olivares", "M", date(1968, 2, 2), "05109", "Av. Libertad 980, depto. 402"),
    ("Constanza", "Navarro", "Gutiérrez", "F", date(2004, 4, 4), "05101", "Av. Brasil 1634"),
    ("Felipe", "Sánchez", "Pizarro", "M", date(1993, 12, 12), "05109", "Calle 5 Norte 215"),
    ("Daniela", "Ramírez", "Orellana", "F", date(1977, 7, 21), "05101", "Pasaje Gálvez 88, Cerro Concepción"),
    ("Sebastián", "Jara", "Cáceres", "M", date(1986, 3, 29), "05101", "Av. Pedro Montt 2050"),
    ("Camila", "Figueroa", "Alarcón", "F", date(1998, 9, 15), "05109", "Calle Quillota 760"),
    ("Diego", "Riquelme", "Salazar", "M", date(1961, 11, 8), "05101", "Calle Cumming 145"),
    ("María José", "Bustos", "Paredes", "F", date(1989, 5, 1), "13201", "Av. Concha y Toro 3120"),
    ("Juan Pablo", "Valenzuela", "Lagos", "M", date(1975, 1, 18), "13201", "Pasaje El Peumo 1187"),
    ("Paula", "Sandoval", "Miranda", "F", date(2009, 8, 26), "13201", "Calle Los Quillayes 671"),
    ("Ignacio", "Parra", "Henríquez", "M", date(1996, 6, 6), "13201", "Av. Gabriela Poniente 0455"),
    ("Elena", "Poblete", "Vera", "F", date(1953, 3, 3), "13201", "Calle Eyzaguirre 1290"),
    ("Raúl", "Campos", "Zúñiga", "M", date(1981, 10, 10), "13101", "Av. Portugal 1180, depto. 1502"),
    ("Ximena", "Acuña", "Quiroz", "F", date(1970, 12, 24), "13110", "Calle Walker Martínez 3345"),
    ("Andrés", "Salinas", "Molina", "M", date(1994, 4, 27), "13101", "Calle Arturo Prat 1460"),
    ("Pedro", "Navarrete", "Ibáñez", "M", date(1984, 2, 19), "13101", "Av. Manuel Montt 505"),
    ("Sofía", "Medina", "Rivas", "F", date(2015, 7, 7), "13110", "Pasaje Las Acacias 3021"),
    ("Carolina", "Lillo", "Gallardo", "F", date(1988, 9, 9), "05109", "Av. San Martín 433"),
)

CHILEANS: tuple[Person, ...] = tuple(
    Person(
        given,
        paternal,
        maternal,
        sex,
        born,
        comuna,
        address,
        phone=f"+569{61_000_000 + 7_919 * i:08d}",
        document_number=_run(91_000_001 + 37 * i),
        insurance="isapre" if i % 4 == 3 else "fonasa",
    )
    for i, (given, paternal, maternal, sex, born, comuna, address) in enumerate(_CHILEANS)
)

#: The citizen persona is also a patient, so logging in as `citizen` shows a real result of her own.
CITIZEN = Person(
    "Carla",
    "Ciudadana",
    "Demo",
    "F",
    date(1990, 3, 14),
    "13101",
    "Calle Huérfanos 1160, depto. 702",
    phone="+56987654321",
    document_number="88888888-8",
)


def _cccd(sex: str, born: date, serial: int) -> str:
    """A CCCD of Hồ Chí Minh City (079) with the century/sex digit and birth year it encodes."""
    century_sex = (0 if born.year < 2000 else 2) + (1 if sex == "F" else 0)
    return f"079{century_sex}{born.year % 100:02d}{serial:06d}"


# (given names, family name, sex, birth date, address): Vietnamese names are written family name first.
_VIETNAMESE: tuple[tuple[str, str, str, date, str], ...] = (
    ("Văn Hùng", "Nguyễn", "M", date(1984, 3, 12), "12 Đường Lê Lợi, Phường Sài Gòn"),
    ("Thị Mai", "Trần", "F", date(1990, 7, 25), "45 Đường Nguyễn Trãi, Phường Chợ Quán"),
    ("Minh Tuấn", "Lê", "M", date(2002, 1, 8), "78 Đường Cách Mạng Tháng Tám, Phường Bàn Cờ"),
    ("Thị Hoa", "Phạm", "F", date(1975, 11, 30), "9 Hẻm 34 Đường Phan Xích Long, Phường Cầu Kiệu"),
    ("Quốc Bảo", "Hoàng", "M", date(1996, 5, 19), "210 Đường Võ Văn Tần, Phường Xuân Hòa"),
    ("Ngọc Anh", "Huỳnh", "F", date(2005, 9, 2), "33 Đường Hai Bà Trưng, Phường Tân Định"),
    ("Đức Thắng", "Phan", "M", date(1969, 12, 1), "5 Đường Nguyễn Văn Cừ, Phường Chợ Quán"),
    ("Thu Trang", "Vũ", "F", date(1988, 4, 14), "101 Đường Điện Biên Phủ, Phường Gia Định"),
    ("Gia Huy", "Võ", "M", date(2010, 6, 23), "67 Đường Nguyễn Đình Chiểu, Phường Xuân Hòa"),
    ("Thị Lan", "Đặng", "F", date(1958, 2, 17), "18 Đường Trần Hưng Đạo, Phường Cầu Ông Lãnh"),
    ("Hoàng Nam", "Bùi", "M", date(1993, 10, 5), "240 Đường Lý Thường Kiệt, Phường Diên Hồng"),
)

VIETNAMESE: tuple[Person, ...] = tuple(
    Person(
        given,
        family,
        "",
        sex,
        born,
        VN_RESIDENCE_HCMC,
        address,
        phone=f"+8490{3_100_000 + 4_273 * i:07d}",
        document_number=_cccd(sex, born, 101 + i),
        document_type="cccd",
        insurance="",
    )
    for i, (given, family, sex, born, address) in enumerate(_VIETNAMESE)
)


# --- the seeder ----------------------------------------------------------------------------------------------


@dataclass
class SeedReport:
    """What one `seed_demo` run did."""

    already_present: bool
    reference: LoadReport | None = None  # set when the reference data had to be loaded first
    samples_created: int = 0
    patients_created: int = 0
    shipments_created: int = 0
    events_created: int = 0
    states: dict[str, int] = field(default_factory=dict)


def demo_present() -> bool:
    """True when the demo samples exist (the lab-X LIS samples under `DEMO-` codes are written with all others)."""
    return Sample.objects.filter(client_lab__platform_id=LAB_X, client_code__startswith=DEMO_CODE_PREFIX).exists()


def reference_loaded() -> bool:
    return CountryProfile.objects.filter(code__in=["CL", "VN"]).count() == 2 and Test.objects.exists()


def seed_demo(*, now: datetime | None = None) -> SeedReport:
    """Loads the reference data if missing, builds the demo world and, once, the demo samples."""
    reference = None if reference_loaded() else load_all()
    built = world.build_demo_world()
    if demo_present():
        return SeedReport(already_present=True, reference=reference)
    before = (Sample.objects.count(), Patient.objects.count(), Shipment.objects.count(), SampleEvent.objects.count())
    actors = {name: actor_for_user(user) for name, user in built["users"].items()}
    with transaction.atomic():
        _Scenario(actors, now or timezone.now()).run()
    return SeedReport(
        already_present=False,
        reference=reference,
        samples_created=Sample.objects.count() - before[0],
        patients_created=Patient.objects.count() - before[1],
        shipments_created=Shipment.objects.count() - before[2],
        events_created=SampleEvent.objects.count() - before[3],
        states=dict(sample_state_counts()),
    )


class SeedingFailed(RuntimeError):
    """A service did not do what the scenario relies on (e.g. refused a tube for a shipment)."""


class _Scenario:
    """The demo's story, one establishment at a time. Times are relative to `now`; collections within 3 days."""

    def __init__(self, actors: dict[str, Actor], now: datetime) -> None:
        self.actors = actors
        self.now = now
        self._chileans = iter(CHILEANS)
        self._vietnamese = iter(VIETNAMESE)

    # helpers -------------------------------------------------------------------------------------------------

    def ago(self, hours: float) -> datetime:
        return self.now - timedelta(hours=hours)

    def chilean(self) -> Person:
        return next(self._chileans)

    def vietnamese(self) -> Person:
        return next(self._vietnamese)

    def register(
        self,
        taker: str,
        *,
        establishment: str,
        laboratory: int | None,
        person: Person | None,
        hours_ago: float,
        test: str = "covid19-pcr",
        sample_type: str = "nasopharyngeal-swab",
        strategy: str = "symptomatic",
        channel: str = Channel.WEB,
        **extra: Any,
    ) -> Sample:
        data = SampleInput(
            establishment=establishment,
            laboratory=laboratory,
            test=test,
            sample_type=sample_type,
            collected_at=self.ago(hours_ago),
            patient=person.as_input() if person is not None else None,
            strategy=strategy,
            **extra,
        )
        sample, _created = services.sample_register(actor=self.actors[taker], data=data, channel=channel)
        return sample

    def ship(self, taker: str, samples: Sequence[Sample], *, note: str = "") -> Shipment:
        """A dispatched manifest holding exactly `samples` (all from one establishment to one lab)."""
        actor = self.actors[taker]
        first = samples[0]
        assert first.laboratory is not None
        shipment = services.shipment_create(
            actor=actor,
            establishment_code=first.establishment.code,
            laboratory_id=first.laboratory.platform_id,
            note=note,
        )
        outcomes = services.shipment_add_samples(
            actor=actor, shipment_id=shipment.pk, sample_ids=[s.pk for s in samples]
        )
        refused = [o for o in outcomes if not o.ok]
        if refused:
            raise SeedingFailed(f"shipment_add_samples refused {len(refused)} tube(s): {refused[0].errors}")
        return services.shipment_dispatch(actor=actor, shipment_id=shipment.pk, channel=Channel.WEB)

    def receive_box(
        self,
        lab: str,
        shipment: Shipment,
        *,
        received: Sequence[Sample],
        damaged: Sequence[Sample] = (),
        damage_reason: str = "",
        hours_ago: float,
    ) -> services.ShipmentReceipt:
        return services.shipment_receive(
            actor=self.actors[lab],
            shipment_id=shipment.pk,
            received_sample_ids=[s.pk for s in received],
            damaged_sample_ids=[s.pk for s in damaged],
            damage_reason=damage_reason,
            received_at=self.ago(hours_ago),
            channel=Channel.WEB,
        )

    def result(self, lab: str, sample: Sample, value: str, *, hours_ago: float, channel: str = Channel.WEB) -> None:
        services.result_deliver(
            actor=self.actors[lab],
            sample_id=sample.pk,
            value=value,
            reported_at=self.ago(hours_ago),
            report=REPORT,
            channel=channel,
        )

    # the story -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.establishment_a()
        self.establishment_b()
        self.establishment_c()
        self.vietnam()
        self.lab_x_lis()

    def establishment_a(self) -> None:
        """CESFAM A (Santiago) -> lab X: a box received yesterday with one tube missing, one in transit today."""
        # Yesterday's box: collected in the morning, received in the evening, results overnight.
        box = [
            self.register("taker_a", establishment=EST_A, laboratory=LAB_X, person=CITIZEN, hours_ago=30),
            *[
                self.register("taker_a", establishment=EST_A, laboratory=LAB_X, person=self.chilean(), hours_ago=h)
                for h in (29.5, 29, 28.5, 28, 27.5)
            ],
        ]
        residents = [self.chilean().as_input() for _ in range(3)]  # a care home (ELEAM), screened in one pool
        pool = self.register(
            "taker_a",
            establishment=EST_A,
            laboratory=LAB_X,
            person=None,
            hours_ago=27,
            strategy="bac-eleam",
            pool_members=residents,
        )
        # The last tube never arrives: it stays "sent to laboratory", flagged missing on the manifest.
        citizen, negative, positive, corrected, rejected, _missing = box
        shipment = self.ship("taker_a", [*box, pool], note="Envío de la mañana")
        self.receive_box("lab_x", shipment, received=[*box[:5], pool], hours_ago=22)
        self.result("lab_x", citizen, "negative", hours_ago=16)
        self.result("lab_x", negative, "negative", hours_ago=16)
        self.result("lab_x", positive, "positive", hours_ago=15.5)
        self.result("lab_x", pool, "negative", hours_ago=15)  # every resident negative
        self.result("lab_x", corrected, "negative", hours_ago=15)
        services.result_correct(
            actor=self.actors["lab_x"],
            sample_id=corrected.pk,
            value="positive",
            reason="Error de transcripción al ingresar el resultado",
            reported_at=self.ago(4),
            # A correction comes with its own newly signed report. (Omitting it is refused although
            # result_correct means to reuse the previous one: `_check_report` runs before that fallback.)
            report=CORRECTED_REPORT,
            channel=Channel.WEB,
        )
        services.sample_reject(
            actor=self.actors["lab_x"],
            sample_id=rejected.pk,
            reason="poorly-collected",
            note="Tórula sin material suficiente",
            channel=Channel.WEB,
        )

        # Today: a box on its way, two tubes not yet packed (one Mpox lesion swab), one registered by mistake.
        in_transit = [
            self.register("taker_a", establishment=EST_A, laboratory=LAB_X, person=self.chilean(), hours_ago=h)
            for h in (4, 3.5, 3)
        ]
        self.ship("taker_a", in_transit, note="Envío de la tarde")
        self.register("taker_a", establishment=EST_A, laboratory=LAB_X, person=self.chilean(), hours_ago=1.5)
        self.register(
            "taker_a",
            establishment=EST_A,
            laboratory=LAB_X,
            person=self.chilean(),
            hours_ago=1,
            test="mpox-pcr",
            sample_type="lesion-swab",
            strategy="medical-care",
        )
        mistaken = self.register("manager_a", establishment=EST_A, laboratory=LAB_X, person=self.chilean(), hours_ago=2)
        services.sample_cancel(
            actor=self.actors["manager_a"],
            sample_id=mistaken.pk,
            reason="Registrada por error: paciente duplicado en la fila",
            channel=Channel.WEB,
        )

    def establishment_b(self) -> None:
        """Hospital B (Valparaíso) -> lab Y (and X): damaged tube, return, forwarding, antigen tests."""
        box = [
            self.register("taker_b", establishment=EST_B, laboratory=LAB_Y, person=self.chilean(), hours_ago=h)
            for h in (50, 49, 48.5, 48)
        ]
        mpox = self.register(
            "taker_b",
            establishment=EST_B,
            laboratory=LAB_Y,
            person=self.chilean(),
            hours_ago=47,
            test="mpox-pcr",
            sample_type="vesicle-content",
            strategy="medical-care",
        )
        negative, positive, returned, damaged = box
        shipment = self.ship("taker_b", [*box, mpox])
        self.receive_box(
            "lab_y",
            shipment,
            received=[negative, positive, returned, mpox],
            damaged=[damaged],
            damage_reason="Tubo quebrado en la caja de transporte",
            hours_ago=42,
        )
        self.result("lab_y", negative, "negative", hours_ago=36)
        self.result("lab_y", positive, "positive", hours_ago=36)
        self.result("lab_y", mpox, "positive", hours_ago=30)
        services.sample_return(
            actor=self.actors["lab_y"],
            sample_id=returned.pk,
            reason="Sin reactivos de extracción: se devuelve para derivar",
            channel=Channel.WEB,
        )

        # Lab X receives a tube, then its PCR machine goes down and it forwards the tube to lab Y.
        forwarded = self.register("taker_b", establishment=EST_B, laboratory=LAB_X, person=self.chilean(), hours_ago=20)
        shipment = self.ship("taker_b", [forwarded])
        self.receive_box("lab_x", shipment, received=[forwarded], hours_ago=15)
        services.sample_forward(
            actor=self.actors["lab_x"],
            sample_id=forwarded.pk,
            new_laboratory=LAB_Y,
            reason="Equipo PCR en mantención",
            channel=Channel.WEB,
        )

        # Rapid antigen tests carry their result at registration and go to no lab.
        for hours, value in ((5, "negative"), (3, "positive")):
            self.register(
                "taker_b",
                establishment=EST_B,
                laboratory=None,
                person=self.chilean(),
                hours_ago=hours,
                test="covid19-antigen",
                result=value,
                result_at=self.ago(hours - 0.25),
            )
        self.register("taker_b", establishment=EST_B, laboratory=LAB_Y, person=self.chilean(), hours_ago=1)

    def establishment_c(self) -> None:
        """SAPU C (Puente Alto) -> lab X: a box received, results on the way; an antigen test; a new tube."""
        box = [
            self.register(
                "taker_c",
                establishment=EST_C,
                laboratory=LAB_X,
                person=self.chilean(),
                hours_ago=h,
                strategy="bac-school" if h < 27 else "symptomatic",
            )
            for h in (28, 27, 26)
        ]
        shipment = self.ship("taker_c", box)
        self.receive_box("lab_x", shipment, received=box, hours_ago=20)
        self.result("lab_x", box[0], "negative", hours_ago=10, channel=Channel.API)
        self.result("lab_x", box[1], "negative", hours_ago=10, channel=Channel.API)
        self.register(
            "taker_c",
            establishment=EST_C,
            laboratory=None,
            person=self.chilean(),
            hours_ago=6,
            test="covid19-antigen",
            sample_type="anterior-nares-swab",
            result="negative",
            result_at=self.ago(5.75),
        )
        self.register("taker_c", establishment=EST_C, laboratory=LAB_X, person=self.chilean(), hours_ago=0.5)

    def vietnam(self) -> None:
        """Mass screening in Hồ Chí Minh City -> lab Z: a negative and a positive pool, re-tests of the latter."""
        negative_members = [self.vietnamese() for _ in range(3)]
        positive_members = [self.vietnamese() for _ in range(4)]
        pools = [
            self.register(
                "taker_vn",
                establishment=EST_VN,
                laboratory=LAB_VN,
                person=None,
                hours_ago=hours,
                sample_type="throat-swab",
                strategy="community-screening",
                pool_members=[p.as_input() for p in members],
            )
            for hours, members in ((12, negative_members), (11.5, positive_members))
        ]
        symptomatic = self.register(
            "taker_vn", establishment=EST_VN, laboratory=LAB_VN, person=self.vietnamese(), hours_ago=11
        )
        shipment = self.ship("taker_vn", [*pools, symptomatic])
        self.receive_box("lab_vn", shipment, received=[*pools, symptomatic], hours_ago=9)
        self.result("lab_vn", pools[0], "negative", hours_ago=5)
        self.result("lab_vn", pools[1], "positive", hours_ago=5)  # members: re-test needed
        self.result("lab_vn", symptomatic, "negative", hours_ago=5)
        # Two members of the positive pool came back for an individual test (same CCCD: the same patient).
        retests = [
            self.register(
                "taker_vn",
                establishment=EST_VN,
                laboratory=LAB_VN,
                person=person,
                hours_ago=hours,
                sample_type="throat-swab",
                strategy="community-screening",
            )
            for hours, person in ((2, positive_members[0]), (1.5, positive_members[1]))
        ]
        self.ship("taker_vn", retests, note="Xét nghiệm lại (pool dương tính)")
        self.register("taker_vn", establishment=EST_VN, laboratory=LAB_VN, person=self.vietnamese(), hours_ago=0.5)

    def lab_x_lis(self) -> None:
        """Lab X's LIS registers tubes it already holds for CESFAM A under its own codes (national API style):
        they start as "sent to laboratory". These are the demo's marker samples."""
        codes = [f"{DEMO_CODE_PREFIX}X-{n:04d}" for n in (1, 2, 3)]
        lis = [
            self.register(
                "lab_x",
                establishment=EST_A,
                laboratory=LAB_X,
                person=self.chilean(),
                hours_ago=20,
                channel=Channel.API,
                client_code=code,
            )
            for code in codes
        ]
        for sample in lis[:2]:
            services.sample_receive(
                actor=self.actors["lab_x"], sample_id=sample.pk, received_at=self.ago(18), channel=Channel.API
            )
        self.result("lab_x", lis[0], "negative", hours_ago=8, channel=Channel.API)
        self.lab_x_integrations(lis)

    def lab_x_integrations(self, lis: list[Sample]) -> None:
        """What the supervision and matching screens show: a results file with one good row and one whose patient
        does not match (to fix and re-process), and an HL7 result for a specimen nobody knows (held to match)."""
        from muestra.integrations.bulk.processing import process_intake
        from muestra.integrations.bulk.services import upload_submit
        from muestra.integrations.hl7 import er7
        from muestra.integrations.hl7 import processing as hl7

        lab = self.actors["lab_x"]
        good, wrong = lis[1], lis[2]
        document = good.patient.document_number if good.patient else ""
        rows = [
            "ID Muestra;ID Paciente;Resultado",
            f"{good.number};{document};Muestra no apta",
            f"{wrong.number};{document};Muestra no apta",  # the patient of the other row: rejected, fixable
        ]
        intake, _created = upload_submit(
            actor=lab,
            kind="results-national",
            filename="resultados-lab-x.csv",
            content=("\n".join(rows) + "\n").encode(),
        )
        process_intake(intake.pk)  # now, so the demo does not wait for the task worker
        now = er7.format_ts(self.now)
        collected = er7.format_ts(self.ago(20))
        message = (
            f"MSH|^~\\&|LIS-X|LAB X|MUESTRA|MINSAL|{now}||ORU^R01^ORU_R01|DEMO-HL7-1|P|2.5.1\r"
            "PID|1||12345678-5^^^CL&&ISO^NNCHL||Pérez^María José||19850517|F\r"
            f"OBR|1|LIS-DEMO-404|LIS-DEMO-404|94500-6^SARS-CoV-2 RNA NAA^LN|||{collected}|||||||||||||||{now}|||F\r"
            "OBX|1|CWE|94500-6^SARS-CoV-2 RNA NAA^LN||125154007^Specimen unsatisfactory for evaluation^SCT||||||F\r"
            f"SPM|1|LIS-DEMO-404||258500001^Nasopharyngeal swab^SCT|||||||||||||{collected}\r"
        )
        hl7.receive(lab, message.encode())


# --- what demo_info shows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    national_id: str
    where: str


def demo_users() -> list[DemoUser]:
    """The demo logins that exist, in persona order, with their role and place read from their memberships."""
    specs = world.all_demo_personas()
    users = {u.username: u for u in User.objects.filter(username__in=[s.username for s in specs])}
    memberships: dict[int, list[Membership]] = {}
    for m in Membership.objects.filter(user__in=users.values()).select_related(
        "establishment", "laboratory", "territory"
    ):
        memberships.setdefault(m.user_id, []).append(m)
    rows = []
    for spec in specs:
        user = users.get(spec.username)
        if user is None:
            continue
        own = memberships.get(user.pk, [])
        role = own[0].role if own else CITIZEN_ROLE
        where = ", ".join(_place(m) for m in own) or "—"
        rows.append(DemoUser(user.username, world.DEMO_PASSWORD, role, user.national_id or "", where))
    return rows


def _place(m: Membership) -> str:
    if m.establishment is not None:
        return f"{m.establishment.name} ({m.establishment.code})"
    if m.laboratory is not None:
        return f"{m.laboratory.name} ({m.laboratory.platform_id})"
    if m.territory is not None:
        return m.territory.name
    return "national"


def demo_info() -> dict[str, list[dict[str, Any]]]:
    """The demo logins, establishments (with the platform ids of their labs) and labs, as `demo_info --json`."""
    establishments = list(
        Establishment.objects.filter(code__in=DEMO_ESTABLISHMENTS).select_related("profile").order_by("code")
    )
    assigned: dict[int, list[int]] = {}
    for est_id, platform_id in (
        LabAssignment.objects.filter(establishment__in=establishments, active=True)
        .order_by("laboratory__platform_id")
        .values_list("establishment_id", "laboratory__platform_id")
    ):
        assigned.setdefault(est_id, []).append(platform_id)
    labs = Laboratory.objects.filter(platform_id__in=DEMO_LABS).order_by("platform_id")
    return {
        "users": [
            {"username": u.username, "password": u.password, "role": u.role, "national_id": u.national_id}
            for u in demo_users()
        ],
        "establishments": [{"code": e.code, "name": e.name, "labs": assigned.get(e.pk, [])} for e in establishments],
        "labs": [{"id": lab.platform_id, "name": lab.name} for lab in labs],
    }


def sample_state_counts() -> Counter[str]:
    """Samples of the demo establishments per state (for the seeder's summary)."""
    rows = Sample.objects.filter(establishment__code__in=DEMO_ESTABLISHMENTS).values_list("state", flat=True)
    return Counter(rows)
