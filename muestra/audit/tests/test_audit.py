# mypy: disable-error-code="union-attr"
"""The audit trail: every change writes its entries in the same transaction (a failed call writes none), the chain
verifies, and any tampering (an altered, removed or truncated entry) is reported with the entry where it shows."""

from __future__ import annotations

import itertools
import re
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muestra.accounts.services import api_key_issue, api_key_revoke
from muestra.audit.models import GENESIS_HASH, AuditEntry, AuditHead
from muestra.audit.services import AuditItem, audit_record, audit_record_many, audit_verify
from muestra.core.errors import DomainError, IllegalTransition, ValidationFailed
from muestra.demo.builders import REPORT, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import Sample, SampleState
from muestra.samples.tests.support import assert_unchanged, db_state

S = SampleState
LAB_X, LAB_Y = 1000000001, 1000000002


def actions_since(last_id: int) -> list[tuple[str, str]]:
    return list(AuditEntry.objects.filter(pk__gt=last_id).order_by("pk").values_list("actor", "action"))


def last_id() -> int:
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def verify_output() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def verify_error() -> str:
    with pytest.raises(CommandError) as info:
        call_command("audit_verify", stdout=StringIO())
    return str(info.value)


# --- every service writes its entries ---------------------------------------------------------------------------


def _receive(w, s):
    return services.sample_receive(actor=w.actors["lab_x"], sample_id=s.pk)


SERVICE_CALLS = [
    (
        "register",
        S.REGISTERED,
        lambda w, s: services.sample_register(actor=w.actors["taker_a"], data=sample_input()),
        "taker_a",
        ["sample.registered"],
    ),
    (
        "batch",
        S.REGISTERED,
        lambda w, s: services.sample_register_batch(actor=w.actors["taker_a"], items=[sample_input(), sample_input()]),
        "taker_a",
        ["sample.registered", "sample.registered"],
    ),
    (
        "edit",
        S.REGISTERED,
        lambda w, s: services.sample_update(
            actor=w.actors["taker_a"], sample_id=s.pk, changes={"surveillance_number": "7"}
        ),
        "taker_a",
        ["sample.edited"],
    ),
    (
        "cancel",
        S.REGISTERED,
        lambda w, s: services.sample_cancel(actor=w.actors["taker_a"], sample_id=s.pk, reason="x"),
        "taker_a",
        ["sample.cancelled"],
    ),
    (
        "shipment_create",
        S.REGISTERED,
        lambda w, s: services.shipment_create(
            actor=w.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X
        ),
        "taker_a",
        ["shipment.create"],
    ),
    (
        "shipment_create_with_samples",
        S.REGISTERED,
        lambda w, s: services.shipment_create(
            actor=w.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X, sample_ids=[s.pk]
        ),
        "taker_a",
        ["shipment.create", "shipment.add_samples"],
    ),
    ("receive", S.DISPATCHED, _receive, "lab_x", ["sample.received"]),
    (
        "reject",
        S.DISPATCHED,
        lambda w, s: services.sample_reject(actor=w.actors["lab_x"], sample_id=s.pk, reason="spilled"),
        "lab_x",
        ["sample.rejected"],
    ),
    (
        "return",
        S.RECEIVED,
        lambda w, s: services.sample_return(actor=w.actors["lab_x"], sample_id=s.pk),
        "lab_x",
        ["sample.returned"],
    ),
    (
        "forward",
        S.RECEIVED,
        lambda w, s: services.sample_forward(actor=w.actors["lab_x"], sample_id=s.pk, new_laboratory=LAB_Y),
        "lab_x",
        ["sample.forwarded"],
    ),
    (
        "deliver",
        S.RECEIVED,
        lambda w, s: services.result_deliver(
            actor=w.actors["key_lab_x"], sample_id=s.pk, value="negative", report=REPORT
        ),
        "key_lab_x",
        ["sample.result_delivered"],
    ),
    (
        "deliver_implicit_receipt",
        S.DISPATCHED,
        lambda w, s: services.result_deliver(actor=w.actors["lab_x"], sample_id=s.pk, value="negative", report=REPORT),
        "lab_x",
        ["sample.received", "sample.result_delivered"],
    ),
    (
        "correct",
        S.RESULT,
        lambda w, s: services.result_correct(
            actor=w.actors["lab_x"], sample_id=s.pk, value="positive", reason="x", report=REPORT
        ),
        "lab_x",
        ["sample.result_corrected"],
    ),
    (
        "authorise",
        S.RESULT,
        lambda w, s: services.correction_authorise(actor=w.actors["admin"], sample_id=s.pk, reason="x"),
        "admin",
        ["sample.correction_authorised"],
    ),
    (
        "apikey_issue",
        S.REGISTERED,
        lambda w, s: api_key_issue(actor=w.actors["admin"], name="k", laboratory=w.lab_y),
        "admin",
        ["apikey.issue"],
    ),
    (
        "apikey_revoke",
        S.REGISTERED,
        lambda w, s: api_key_revoke(actor=w.actors["admin"], api_key_id=w.actors["key_lab_y"].api_key.pk),
        "admin",
        ["apikey.revoke"],
    ),
]


@pytest.mark.parametrize(("name", "state", "call", "who", "actions"), SERVICE_CALLS, ids=[c[0] for c in SERVICE_CALLS])
def test_every_service_writes_its_audit_entries(world, name, state, call, who, actions):
    sample = sample_in_state(state, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    start = last_id()
    call(world, sample)
    label = world.actors[who].label
    assert actions_since(start) == [(label, a) for a in actions]
    assert audit_verify()[1] is None


def test_shipment_dispatch_and_receive_are_audited(world):
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    shipment = services.shipment_create(
        actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X, sample_ids=[sample.pk]
    )
    start = last_id()
    services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    assert [a for _, a in actions_since(start)] == ["sample.dispatched", "shipment.dispatch"]
    start = last_id()
    services.shipment_receive(actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=[])
    assert [a for _, a in actions_since(start)] == ["sample.missing", "shipment.receive"]


def test_removing_a_sample_from_a_shipment_is_audited(world):
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    shipment = services.shipment_create(
        actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X, sample_ids=[sample.pk]
    )
    start = last_id()
    services.shipment_remove_sample(actor=world.actors["taker_a"], shipment_id=shipment.pk, sample_id=sample.pk)
    assert [a for _, a in actions_since(start)] == ["shipment.remove_sample"]


def test_audit_entries_carry_no_personal_data(world):
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    patient = sample.patient
    dump = " ".join(str(v) for v in AuditEntry.objects.values_list("actor", "action", "object_id", "data"))
    for secret in (
        patient.document_number,
        patient.given_names,
        patient.paternal_surname,
        patient.phone,
        patient.address,
    ):
        assert secret not in dump


def test_a_refused_call_writes_no_audit_entry(world):
    sample = sample_in_state(S.CANCELLED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(sample.pk)
    with pytest.raises(IllegalTransition):
        services.sample_receive(actor=world.actors["lab_x"], sample_id=sample.pk)
    with pytest.raises(ValidationFailed):
        services.sample_register(actor=world.actors["taker_a"], data=sample_input(test="nope"))
    assert_unchanged(before, sample.pk)


@pytest.mark.parametrize(
    "target", ["muestra.samples.services.audit_record_many", "muestra.audit.services._canonical_tail"]
)
def test_a_failure_while_auditing_rolls_the_change_back(world, target):
    """The change and its audit entries commit together: if writing the audit fails, nothing is stored."""
    sample = sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(sample.pk)
    with mock.patch(target, side_effect=RuntimeError("disk full")):
        with pytest.raises(RuntimeError):
            services.sample_receive(actor=world.actors["lab_x"], sample_id=sample.pk)
        with pytest.raises(RuntimeError):
            services.sample_register(actor=world.actors["taker_a"], data=sample_input())
        with pytest.raises(RuntimeError):
            services.sample_register_batch(actor=world.actors["taker_a"], items=[sample_input(), sample_input()])
    assert_unchanged(before, sample.pk)


def test_a_failing_item_in_a_shipment_receipt_rolls_back_the_whole_box(world):
    samples = [services.sample_register(actor=world.actors["taker_a"], data=sample_input())[0] for _ in range(2)]
    shipment = services.shipment_create(
        actor=world.actors["taker_a"],
        establishment_code="113100",
        laboratory_id=LAB_X,
        sample_ids=[s.pk for s in samples],
    )
    services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    Sample.objects.filter(pk=samples[1].pk).update(collected_at=samples[1].collected_at.replace(year=2100))
    before = db_state()
    with pytest.raises(DomainError):  # the second tube's reception time is before its (bogus) collection time
        services.shipment_receive(
            actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples]
        )
    assert_unchanged(before)


# --- the chain and its verification -------------------------------------------------------------------------------


@pytest.fixture
def chain(world):
    """A few dozen entries written by real services."""
    for state in (S.RESULT, S.REJECTED, S.RETURNED):
        sample_in_state(state, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    ids = list(AuditEntry.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) > 10
    return ids


def test_audit_verify_passes_on_an_intact_chain(chain):
    assert audit_verify() == (len(chain), None)
    assert f"{len(chain)} entries verified" in verify_output()


def test_the_chain_links_each_entry_to_the_previous_and_the_head_to_the_last(chain):
    entries = list(AuditEntry.objects.order_by("pk"))
    assert entries[0].prev_hash == GENESIS_HASH
    for prev, entry in itertools.pairwise(entries):
        assert entry.prev_hash == prev.hash
    head = AuditHead.objects.get(pk=1)
    assert (head.last_entry_id, head.last_hash) == (entries[-1].pk, entries[-1].hash)


def test_small_batches_verify_the_same(chain):
    assert audit_verify(batch_size=3) == (len(chain), None)


def test_an_empty_trail_verifies(db):
    assert audit_verify() == (0, None)
    assert "0 entries verified" in verify_output()


def reported_id(message: str) -> int:
    match = re.search(r"broken at entry (\d+)", message)
    assert match, message
    return int(match.group(1))


@pytest.mark.parametrize("how", ["queryset", "raw_sql"])
def test_altered_entry_is_reported(chain, how):
    victim = chain[len(chain) // 2]
    if how == "queryset":
        AuditEntry.objects.filter(pk=victim).update(data={"to": "result", "result": "negative"})
    else:
        with connection.cursor() as cursor:
            sql = f"UPDATE {AuditEntry._meta.db_table} SET actor = %s WHERE id = %s"  # noqa: S608 - our own table
            cursor.execute(sql, ["user:999", victim])
    message = verify_error()
    assert reported_id(message) == victim
    assert "altered" in message
    assert audit_verify()[0] == chain.index(victim)


@pytest.mark.parametrize("field", ["action", "object_id", "at", "prev_hash", "hash"])
def test_any_altered_field_is_reported(chain, field):
    victim = AuditEntry.objects.get(pk=chain[3])
    value = {
        "action": "sample.nothing",
        "object_id": "1",
        "at": victim.at.replace(year=2000),
        "prev_hash": "f" * 64,
        "hash": "e" * 64,
    }[field]
    AuditEntry.objects.filter(pk=victim.pk).update(**{field: value})
    broken_at = audit_verify()[1].entry_id
    # Changing a hash shows at the entry itself (its content no longer matches) or at the next one (the link).
    assert broken_at in {chain[3], chain[4]}


def test_entry_deleted_in_the_middle_is_reported(chain):
    victim = chain[5]
    AuditEntry.objects.filter(pk=victim).delete()  # a bulk delete bypasses the model's delete()
    message = verify_error()
    assert reported_id(message) == chain[6]
    assert "removed" in message


def test_entries_deleted_at_the_end_are_reported(chain):
    AuditEntry.objects.filter(pk__in=chain[-2:]).delete()
    message = verify_error()
    assert reported_id(message) == chain[-3]
    assert "head" in message
    checked, broken = audit_verify()
    assert checked == len(chain) - 2 and broken is not None


def test_wiping_the_whole_trail_is_reported(chain):
    AuditEntry.objects.all().delete()
    assert audit_verify()[1] is not None


def test_entry_inserted_in_the_middle_is_reported(chain):
    entry = AuditEntry.objects.get(pk=chain[2])
    AuditEntry.objects.filter(pk=chain[2]).update(hash="0" * 63 + "1")  # free the unique hash
    forged = AuditEntry(
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        data=entry.data,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )
    forged.save()
    assert audit_verify()[1] is not None


def test_entries_cannot_be_changed_or_deleted_through_the_model(chain):
    entry = AuditEntry.objects.get(pk=chain[0])
    entry.action = "sample.other"
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        entry.delete()
    assert audit_verify()[1] is None


def test_audit_record_appends_to_the_chain(db):
    audit_record(actor="system", action="test.one", object_type="thing", object_id=1, data={"a": 1})
    assert audit_record_many(actor="system", items=[AuditItem("test.two", "thing", 2), AuditItem("test.3", "t", 3)])
    assert audit_record_many(actor="system", items=[]) == 0
    assert audit_verify() == (3, None)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5).filter(lambda k: "\x00" not in k), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.dictionaries(st.text(max_size=8).filter(lambda k: "\x00" not in k), JSON, max_size=4),
    object_id=st.text(min_size=1, max_size=20).filter(lambda k: "\x00" not in k),
)
def test_whatever_json_data_is_written_the_chain_verifies(db, data, object_id):
    """What is stored and read back (JSON column, timestamps) hashes to the same value on every backend."""
    audit_record(actor="system", action="test.fuzz", object_type="thing", object_id=object_id, data=data)
    assert audit_verify()[1] is None


@settings(max_examples=50, deadline=None)
@given(prev=st.text(max_size=70), data=st.dictionaries(st.text(max_size=5), JSON, max_size=3))
def test_entry_hash_is_the_sha256_of_the_canonical_json_list(prev, data):
    """The hash PostgreSQL computes from "[prev," + tail (one-statement append) is the documented one."""
    import hashlib
    import json
    from datetime import UTC, datetime

    from muestra.audit.services import entry_hash

    at = datetime(2026, 11, 22, 5, 0, 0, 123456, tzinfo=UTC)
    canonical = json.dumps(
        [prev, at.isoformat(timespec="microseconds"), "apikey:1", "sample.registered", "sample", "1000000001", data],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    got = entry_hash(
        prev_hash=prev,
        at=at,
        actor="apikey:1",
        action="sample.registered",
        object_type="sample",
        object_id="1000000001",
        data=data,
    )
    assert got == expected


def test_the_first_entry_creates_the_head_when_missing(db):
    AuditHead.objects.all().delete()
    audit_record(actor="system", action="test.one", object_type="thing", object_id=1)
    audit_record_many(actor="system", items=[AuditItem("test.two", "thing", 2), AuditItem("test.3", "t", 3)])
    assert audit_verify() == (3, None)
    assert AuditHead.objects.get(pk=1).last_entry_id == last_id()
