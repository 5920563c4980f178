# mypy: disable-error-code="union-attr"
"""`scoped()` is the one gate every read passes through: samples, patients, shipments, events, results and
authorisations are narrowed consistently for every persona."""

from __future__ import annotations

import pytest

from muestra.accounts.models import Membership, Role, User
from muestra.accounts.scoping import ANONYMOUS, SYSTEM, actor_for_api_key, actor_for_user, scoped
from muestra.accounts.services import api_key_revoke
from muestra.demo.builders import REPORT, sample_in_state, sample_input
from muestra.facilities.models import Establishment, Laboratory
from muestra.patients.models import Patient
from muestra.samples import services
from muestra.samples.models import (
    CorrectionAuthorization,
    Result,
    Sample,
    SampleEvent,
    SampleState,
    Shipment,
    ShipmentItem,
)
from muestra.territories.models import Territory, TerritoryLevel

S = SampleState
LAB_X, LAB_Y = 1000000001, 1000000002


class Scene:
    """A sample in each corner of the world, each with a result, so every scoped model has rows to hide."""

    def __init__(self, world):
        a = world.actors
        # Establishment A -> lab X (registered by A's taker).
        self.a_x = sample_in_state(S.RESULT, taker=a["taker_a"], lab=a["lab_x"])
        # Establishment B -> lab Y.
        self.b_y = sample_in_state(
            S.RESULT, taker=a["taker_b"], lab=a["lab_y"], data=sample_input(establishment="105100", laboratory=LAB_Y)
        )
        # Establishment B -> lab X.
        self.b_x = sample_in_state(
            S.RECEIVED, taker=a["taker_b"], lab=a["lab_x"], data=sample_input(establishment="105100", laboratory=LAB_X)
        )
        # Created by lab X's LIS for establishment B, then forwarded by X to lab Y.
        self.x_made, _ = services.sample_register(
            actor=a["key_lab_x"], data=sample_input(establishment="105100", laboratory=LAB_X, client_code="XM-1")
        )
        services.sample_forward(actor=a["key_lab_x"], sample_id=self.x_made.pk, new_laboratory=LAB_Y)
        services.correction_authorise(actor=a["admin"], sample_id=self.a_x.pk, reason="ticket")
        services.correction_authorise(actor=a["admin"], sample_id=self.b_y.pk, reason="ticket")
        self.all = {"a_x": self.a_x, "b_y": self.b_y, "b_x": self.b_x, "x_made": self.x_made}

    def names(self, sample_ids) -> set[str]:
        return {name for name, s in self.all.items() if s.pk in set(sample_ids)}


@pytest.fixture
def scene(world) -> Scene:
    return Scene(world)


VISIBLE = {
    "taker_a": {"a_x"},
    "manager_a": {"a_x"},
    "key_est_a": {"a_x"},
    "taker_b": {"b_y", "b_x", "x_made"},
    "lab_x": {"a_x", "b_x", "x_made"},  # x_made: created under its own code, still followed after forwarding
    "key_lab_x": {"a_x", "b_x", "x_made"},
    "lab_y": {"b_y", "x_made"},
    "key_lab_y": {"b_y", "x_made"},
    "viewer_rm": {"a_x"},  # region 13: Santiago, not Valparaíso
    "admin": {"a_x", "b_y", "b_x", "x_made"},
    "citizen": set(),
}


# One scene for all personas (building it per persona would cost a second each on a busy PostgreSQL).
def test_samples_and_everything_hanging_from_them_are_scoped_alike(world, scene):
    for who, expected in VISIBLE.items():
        actor = world.actors[who]
        assert scene.names(scoped(actor, Sample.objects.all()).values_list("pk", flat=True)) == expected, who
        for model in (SampleEvent, Result, CorrectionAuthorization, ShipmentItem):
            owners = scene.names(scoped(actor, model.objects.all()).values_list("sample_id", flat=True))
            # Exactly the rows of the visible samples (every visible sample that has such rows shows them).
            has_rows = scene.names(model.objects.values_list("sample_id", flat=True))
            assert owners == has_rows & expected, (who, model.__name__)
        patients = set(scoped(actor, Patient.objects.all()).values_list("pk", flat=True))
        assert patients == {scene.all[n].patient_id for n in expected}, who


SHIPMENT_RULES = {
    "taker_a": lambda est, lab: est == "113100",
    "manager_a": lambda est, lab: est == "113100",
    "key_est_a": lambda est, lab: est == "113100",
    "taker_b": lambda est, lab: est == "105100",
    "lab_x": lambda est, lab: lab == LAB_X,
    "key_lab_x": lambda est, lab: lab == LAB_X,
    "lab_y": lambda est, lab: lab == LAB_Y,
    "key_lab_y": lambda est, lab: lab == LAB_Y,
    "viewer_rm": lambda est, lab: est == "113100",
    "admin": lambda est, lab: True,
    "citizen": lambda est, lab: False,
}


def test_shipments_are_scoped_by_sender_and_destination(world, scene):
    everything = {(s.establishment.code, s.laboratory.platform_id) for s in Shipment.objects.all()}
    assert len(everything) == 3  # A->X, B->Y, B->X
    for who, rule in SHIPMENT_RULES.items():
        shipments = scoped(world.actors[who], Shipment.objects.all())
        visible = {(s.establishment.code, s.laboratory.platform_id) for s in shipments}
        assert visible == {pair for pair in everything if rule(*pair)}, who


def test_every_persona_is_covered():
    assert set(VISIBLE) == set(SHIPMENT_RULES)


def test_establishments_and_labs_are_scoped(world, scene):
    a = world.actors
    codes = lambda who: set(scoped(a[who], Establishment.objects.all()).values_list("code", flat=True))  # noqa: E731
    labs = lambda who: set(scoped(a[who], Laboratory.objects.all()).values_list("platform_id", flat=True))  # noqa: E731
    assert codes("taker_a") == {"113100"}
    assert codes("lab_x") == {"113100", "105100"}
    assert codes("lab_y") == {"105100"}
    assert "113100" in codes("viewer_rm") and "105100" not in codes("viewer_rm")
    assert codes("citizen") == set()
    assert labs("taker_a") == {LAB_X}
    assert labs("taker_b") == {LAB_X, LAB_Y}
    assert labs("lab_y") == {LAB_Y}


def test_health_service_viewer_sees_the_establishments_of_that_service(world, scene):
    service = world.est_a.territory.health_service
    assert service is not None and service.level == TerritoryLevel.CL_HEALTH_SERVICE
    user = User.objects.create(username="viewer_ss", national_id="12345678-5")
    Membership.objects.create(user=user, role=Role.AUTHORITY_VIEWER, territory=service)
    actor = actor_for_user(user)
    assert actor.health_service_ids == {service.pk} and not actor.sees_everything
    assert scene.names(scoped(actor, Sample.objects.all()).values_list("pk", flat=True)) == {"a_x"}
    assert set(scoped(actor, Patient.objects.all()).values_list("pk", flat=True)) == {scene.a_x.patient_id}
    assert scoped(actor, Result.objects.all()).count() == scene.a_x.results.count()
    # An establishment of another service in the same region is not included.
    other_service_comuna = (
        Territory.objects.filter(level=TerritoryLevel.CL_COMUNA, path__startswith="CL.r13.")
        .exclude(health_service=service)
        .first()
    )
    assert other_service_comuna is not None
    est_c = Establishment.objects.create(
        code="113999", name="C", profile=world.est_a.profile, territory=other_service_comuna
    )
    assert not scoped(actor, Establishment.objects.filter(pk=est_c.pk)).exists()
    assert scoped(world.actors["viewer_rm"], Establishment.objects.filter(pk=est_c.pk)).exists()


@pytest.mark.parametrize(
    ("level", "code", "sees_a", "sees_b"),
    [
        (TerritoryLevel.CL_COMUNA, "13101", True, False),
        (TerritoryLevel.CL_COMUNA, "13102", False, False),
        (TerritoryLevel.CL_PROVINCE, "131", True, False),
        (TerritoryLevel.CL_REGION, "05", False, True),
    ],
)
def test_territory_viewers_by_level(world, scene, level, code, sees_a, sees_b):
    user = User.objects.create(username=f"viewer_{level}_{code}")
    Membership.objects.create(
        user=user,
        role=Role.AUTHORITY_VIEWER,
        territory=Territory.objects.get(level=level, code=code, profile__code="CL"),
    )
    seen = scene.names(scoped(actor_for_user(user), Sample.objects.all()).values_list("pk", flat=True))
    assert ("a_x" in seen) == sees_a
    assert ("b_y" in seen) == sees_b


def test_region_prefix_does_not_leak_into_a_longer_code(world, scene):
    """Region "1" must not match region "13" by string prefix (paths end at a dot)."""
    region_1 = Territory.objects.filter(level=TerritoryLevel.CL_REGION, code__in=["1", "01"]).first()
    if region_1 is None:
        pytest.skip("no region 01 in the reference data")
    user = User.objects.create(username="viewer_r1")
    Membership.objects.create(user=user, role=Role.AUTHORITY_VIEWER, territory=region_1)
    assert not scoped(actor_for_user(user), Sample.objects.all()).exists()


def test_national_viewer_sees_everything_but_is_not_admin(world, scene):
    user = User.objects.create(username="viewer_cl")
    Membership.objects.create(user=user, role=Role.AUTHORITY_VIEWER, territory=None)
    actor = actor_for_user(user)
    assert actor.sees_everything and not actor.is_admin
    assert scoped(actor, Sample.objects.all()).count() == Sample.objects.count()
    with pytest.raises(services.PermissionDenied):
        services.sample_cancel(actor=actor, sample_id=scene.a_x.pk, reason="x")


def test_citizen_anonymous_and_inactive_users_see_nothing(world, scene):
    world.users["taker_a"].is_active = False
    world.users["taker_a"].save()
    for actor in (world.actors["citizen"], ANONYMOUS, actor_for_user(world.users["taker_a"])):
        for model in (Sample, Patient, Shipment, SampleEvent, Result, Establishment):
            assert not scoped(actor, model.objects.all()).exists()


def test_system_sees_everything(world, scene):
    assert scoped(SYSTEM, Sample.objects.all()).count() == Sample.objects.count()


def test_a_user_in_two_establishments_sees_both(world, scene):
    Membership.objects.create(user=world.users["taker_a"], role=Role.SAMPLE_TAKER, establishment=world.est_b)
    actor = actor_for_user(world.users["taker_a"])
    assert scene.names(scoped(actor, Sample.objects.all()).values_list("pk", flat=True)) == {
        "a_x",
        "b_y",
        "b_x",
        "x_made",
    }


def test_api_key_actor_matches_its_scope(world):
    key = world.actors["key_lab_x"].api_key
    actor = actor_for_api_key(key)
    assert actor.laboratory_ids == {world.lab_x.pk} and not actor.establishment_ids
    assert actor.label == f"apikey:{key.pk}"
    api_key_revoke(actor=world.actors["admin"], api_key_id=key.pk)
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_unknown_models_are_refused_not_leaked(world):
    with pytest.raises(LookupError):
        scoped(world.actors["taker_a"], User.objects.all())


def test_scoping_is_what_services_use(world, scene):
    """A sample out of scope is answered exactly like a missing one by the services."""
    with pytest.raises(services.NotFound):
        services.sample_update(
            actor=world.actors["taker_a"], sample_id=scene.b_y.pk, changes={"surveillance_number": "1"}
        )
    with pytest.raises(services.NotFound):
        services.result_deliver(actor=world.actors["lab_y"], sample_id=scene.b_x.pk, value="negative", report=REPORT)
