"""`seed_demo`: every state and story of the demo, written once, through the services."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from muestra.accounts.models import ApiKey, Membership, User
from muestra.audit.models import AuditEntry
from muestra.demo import seed
from muestra.demo.world import DEMO_PERSONAS, ESTABLISHMENT_VN, LAB_VN, PERSONAS
from muestra.facilities.models import Establishment, LabAssignment, Laboratory
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.patients.models import Patient
from muestra.samples.models import EventKind, Result, Sample, SampleEvent, SampleState, Shipment, ShipmentItem

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    models: list[Any] = [
        Sample,
        Patient,
        User,
        Membership,
        SampleEvent,
        Result,
        Shipment,
        ShipmentItem,
        AuditEntry,
        Establishment,
        Laboratory,
        LabAssignment,
        ApiKey,
        Intake,
        IntakeItem,
    ]
    return {model.__name__: model.objects.count() for model in models}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_second_run_creates_nothing() -> None:
    first = _seed()
    assert "Demo data created" in first
    after_first = _counts()
    second = _seed()
    assert "already present" in second
    assert _counts() == after_first


def test_every_state_and_story_is_there() -> None:
    _seed()
    demo = Sample.objects.filter(establishment__code__in=seed.DEMO_ESTABLISHMENTS)
    assert set(demo.values_list("state", flat=True)) == set(SampleState.values)
    # Results: negative, positive and one corrected (two versions).
    results = demo.filter(state=SampleState.RESULT, pool__isnull=True, is_pool=False)
    assert {"negative", "positive"} <= set(results.values_list("result_value__code", flat=True))
    assert Result.objects.filter(sample__in=demo, version=2).count() == 1
    assert SampleEvent.objects.filter(sample__in=demo, kind=EventKind.RESULT_CORRECTED).count() == 1
    # A manifest in transit, and a received one with exactly one missing tube.
    assert demo.filter(shipment__state=Shipment.State.DISPATCHED).exists()
    missing = ShipmentItem.objects.filter(outcome=ShipmentItem.Outcome.MISSING)
    assert missing.count() == 1
    assert missing.get().shipment.state == Shipment.State.RECEIVED
    assert missing.get().sample.state == SampleState.DISPATCHED
    # Pools: a negative one makes its 3 members negative; a positive one marks its members for re-testing.
    vn_pools = demo.filter(is_pool=True, establishment__code=ESTABLISHMENT_VN[0])
    pools = {code: vn_pools.get(result_value__code=code) for code in ("negative", "positive")}
    negative_members = pools["negative"].members.all()
    assert negative_members.count() == 3
    assert set(negative_members.values_list("result_value__code", flat=True)) == {"negative"}
    positive_members = pools["positive"].members.all()
    assert positive_members.count() >= 3
    assert all(m.retest_needed for m in positive_members)
    assert set(positive_members.values_list("result_value__code", flat=True)) == {"retest-needed"}
    # A point-of-care antigen test carries its result from registration, with no lab.
    antigen = demo.filter(test__code="covid19-antigen")
    assert antigen.exists()
    assert all(s.state == SampleState.RESULT and s.laboratory_id is None for s in antigen)
    # Side exits went through the services with their reasons.
    assert demo.filter(state=SampleState.REJECTED, rejection_reason__code="spilled").exists()
    assert SampleEvent.objects.filter(sample__in=demo, kind=EventKind.FORWARDED).count() == 1
    # Collection times within the last 3 days; every sample registered by a persona, never anonymously.
    now = timezone.now()
    assert all(now - timedelta(days=3) <= s.collected_at <= now for s in demo)
    assert not demo.filter(registered_by__isnull=True).exists()
    assert seed.demo_present()


def test_lab_x_has_something_to_supervise_and_to_match() -> None:
    _seed()
    lab_x = Laboratory.objects.get(platform_id=1000000001)
    upload = Intake.objects.get(channel=IntakeChannel.FILE, laboratory=lab_x)
    assert (upload.state, upload.accepted, upload.rejected) == (Intake.State.DONE, 1, 1)
    wrong_row = upload.items.get(outcome=IntakeItem.Outcome.REJECTED)
    assert wrong_row.errors[0]["field"] == "patient" and wrong_row.data  # its input is kept, to fix on the page
    held = IntakeItem.objects.get(intake__channel=IntakeChannel.HL7, intake__laboratory=lab_x)
    assert held.outcome == IntakeItem.Outcome.HELD and held.reference


def test_vietnam_profile_is_visible() -> None:
    _seed()
    establishment = Establishment.objects.get(code=ESTABLISHMENT_VN[0])
    assert establishment.profile.code == "VN"
    assert establishment.territory.code == "79"
    lab = Laboratory.objects.get(platform_id=LAB_VN[0])
    assert lab.profile.code == "VN"
    patients = Patient.objects.filter(samples__establishment=establishment).distinct()
    assert patients.exists()
    assert set(patients.values_list("document_type__code", flat=True)) == {"cccd"}
    assert all(len(p.document_number) == 12 and p.document_number.startswith("079") for p in patients)
    # The positive pool's members came back for an individual test: the same patient, not a duplicate.
    retested = Patient.objects.filter(samples__establishment=establishment, samples__pool__isnull=False)
    assert any(p.samples.filter(pool__isnull=True).exists() for p in retested)
    usernames = set(User.objects.values_list("username", flat=True))
    assert {p.username for p in [*PERSONAS, *DEMO_PERSONAS]} <= usernames


def test_citizen_persona_has_her_own_result() -> None:
    _seed()
    citizen = User.objects.get(username="citizen")
    sample = Sample.objects.get(patient__document_number=citizen.national_id)
    assert sample.state == SampleState.RESULT


def test_seeding_on_top_of_the_test_world(world: Any) -> None:
    """The shared test fixture's world is a subset of the demo's: seeding extends it instead of clashing."""
    _seed()
    assert Establishment.objects.filter(code__in=seed.DEMO_ESTABLISHMENTS).count() == 4


def test_a_refused_step_stores_no_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any) -> None:
        raise seed.SeedingFailed("refused on purpose")

    monkeypatch.setattr(seed._Scenario, "vietnam", refuse)
    with pytest.raises(CommandError, match="refused on purpose"):
        _seed()
    assert not Sample.objects.exists()
    assert not seed.demo_present()
    monkeypatch.undo()
    assert "Demo data created" in _seed()
