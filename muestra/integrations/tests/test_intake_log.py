from __future__ import annotations

from muestra.core.errors import ValidationFailed
from muestra.integrations import selectors, services
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem


def _open(world, content=b"a,b\n1,2\n", actor="key_lab_x"):
    return services.intake_open(
        actor=world.actors[actor],
        channel=IntakeChannel.FILE,
        kind="results-national",
        content=content,
        filename="results.csv",
        laboratory_id=world.lab_x.pk,
    )


def test_an_intake_records_every_item_and_a_repeat_is_recognised(world):
    intake, created = _open(world)
    assert created and intake.payload.read() == b"a,b\n1,2\n"
    services.intake_start(intake=intake, total=3)
    services.intake_items_record(
        intake=intake,
        items=[
            services.ItemOutcomeRecord(1, IntakeItem.Outcome.ACCEPTED, "1000000001"),
            services.ItemOutcomeRecord.refused(
                2, ValidationFailed("Unknown result.", field="result"), reference="x", data={"result": "maybe"}
            ),
            services.ItemOutcomeRecord(3, IntakeItem.Outcome.HELD, "SPM-9"),
        ],
    )
    services.intake_finish(actor=world.actors["key_lab_x"], intake=intake)
    intake.refresh_from_db()
    assert (intake.state, intake.total, intake.accepted, intake.rejected, intake.held) == ("done", 3, 1, 1, 1)
    rejected = intake.items.get(position=2)
    assert rejected.errors == [{"field": "result", "code": "validation_error", "message": "Unknown result."}]
    assert rejected.data == {"result": "maybe"}

    again, created = _open(world)
    assert not created and again.pk == intake.pk
    other_sender, created = _open(world, actor="lab_x")
    assert created and other_sender.pk != intake.pk


def test_a_unit_that_could_not_be_read_is_read_again_when_resent(world):
    intake, _ = _open(world, content=b"\x00garbage")
    services.intake_finish(actor=world.actors["key_lab_x"], intake=intake, error="Not a CSV or XLSX file.")
    assert intake.state == Intake.State.FAILED
    again, created = _open(world, content=b"\x00garbage")
    assert created and again.pk != intake.pk


def test_the_intake_log_is_scoped_to_the_sending_lab(world):
    intake, _ = _open(world)
    services.intake_items_record(intake=intake, items=[services.ItemOutcomeRecord(1, IntakeItem.Outcome.ACCEPTED)])
    assert selectors.intake_get(world.actors["lab_x"], intake.pk) is not None
    assert selectors.intake_get(world.actors["admin"], intake.pk) is not None
    for persona in ("lab_y", "key_lab_y", "taker_b", "viewer_rm", "citizen"):
        assert selectors.intake_get(world.actors[persona], intake.pk) is None
        assert not selectors.intake_items(world.actors[persona], intake.pk).exists()
    assert selectors.intake_items(world.actors["lab_x"], intake.pk).count() == 1
