# mypy: disable-error-code="union-attr"
"""Two people fixing the same failed HL7 message at once: one correction is received, the other is refused before
anything of it is stored (PostgreSQL: real concurrent transactions)."""

from __future__ import annotations

import pytest

from muestra.audit.services import audit_verify
from muestra.core.errors import Conflict
from muestra.demo.builders import sample_in_state
from muestra.integrations import services
from muestra.integrations.hl7 import processing as hl7
from muestra.integrations.hl7.tests.helpers import for_sample, message
from muestra.integrations.models import Intake, IntakeItem
from muestra.samples.models import EventKind, Result, SampleEvent, SampleState
from muestra.samples.tests.support import requires_postgresql, run_in_threads

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]


def test_two_fixes_of_one_hl7_message_at_once_receive_exactly_one(world):
    sample = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    body = message("oru_covid_several_obx.hl7", result_code="99999999", result_text="Quizás", **for_sample(sample))
    item = hl7.receive(world.actors["key_lab_x"], body).intake.items.get()
    assert item.outcome == IntakeItem.Outcome.REJECTED
    raw = services.stored_content(item)
    fixes = [
        raw.replace("99999999^Quizás", "260373001^Detected"),
        raw.replace("99999999^Quizás", "260415000^Not detected"),
    ]
    units_before = Intake.objects.filter(channel="hl7").count()

    results, errors = run_in_threads(
        2,
        lambda i: services.intake_item_reprocess(
            actor=world.actors["lab_x"], item_id=item.pk, data={"content": fixes[i]}
        ),
    )

    assert len([r for r in results if r is not None]) == 1
    assert len(errors) == 1 and isinstance(errors[0], Conflict), errors
    assert Intake.objects.filter(channel="hl7").count() == units_before + 1  # the refused fix left no unit
    item.refresh_from_db()
    assert item.superseded_by is not None and item.superseded_by.outcome == IntakeItem.Outcome.ACCEPTED
    assert Result.objects.filter(sample=sample).count() == 1
    assert SampleEvent.objects.filter(sample=sample, kind=EventKind.RESULT_DELIVERED).count() == 1
    assert audit_verify()[1] is None
