from __future__ import annotations

from muestra.demo.builders import sample_input
from muestra.samples import selectors, services


def test_a_scan_finds_the_sample_by_public_number_or_tube_barcode_within_scope(world):
    data = sample_input()
    data.tube_code = "TUBE-000123"
    sample, _created = services.sample_register(actor=world.actors["taker_a"], data=data)

    by_number = selectors.sample_by_scan(world.actors["taker_a"], f" {sample.number} ")
    by_tube = selectors.sample_by_scan(world.actors["lab_x"], "TUBE-000123")
    assert by_number is not None and by_number.pk == sample.pk
    assert by_tube is not None and by_tube.pk == sample.pk

    # Out of scope and unknown codes look the same: nothing.
    assert selectors.sample_by_scan(world.actors["taker_b"], str(sample.number)) is None
    assert selectors.sample_by_scan(world.actors["taker_b"], "TUBE-000123") is None
    assert selectors.sample_by_scan(world.actors["taker_a"], "9999999999") is None
    assert selectors.sample_by_scan(world.actors["taker_a"], "") is None
