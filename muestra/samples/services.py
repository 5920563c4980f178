"""Every write of the life of a sample: register, edit, cancel, ship, receive, reject, return, forward,
deliver and correct results, authorise late corrections.

Each service takes typed keyword arguments and an `Actor`, runs in one transaction, checks the actor's right to
act, checks the state table (`states.py`), records an append-only `SampleEvent` per change and the matching audit
entry, and announces committed events after commit. Retries are harmless: a repeated receipt or result with the
same content returns the stored outcome and records nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor, scoped
from muestra.audit.services import AuditItem, audit_record_many
from muestra.catalog.models import Interpretation, ResultValue, Test
from muestra.core.bulk import bulk_insert_rows, bulk_update_rows, insert_rows, loaded_rows, new_instance
from muestra.core.errors import (
    Conflict,
    DomainError,
    ErrorCollector,
    FieldError,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from muestra.facilities.models import Laboratory
from muestra.patients.services import patient_resolve, patients_resolve_many
from muestra.samples import lookups
from muestra.samples.inputs import ResolvedSample, SampleInput, check_collected_at, check_run, resolve_sample
from muestra.samples.models import (
    PUBLIC_NUMBER_OFFSET,
    Channel,
    CorrectionAuthorization,
    CorrectionRequest,
    EventKind,
    Result,
    Sample,
    SampleEvent,
    SampleState,
    Shipment,
    ShipmentItem,
)
from muestra.samples.signals import sample_events_committed
from muestra.samples.states import Step, ensure_allowed

S = SampleState

#: A tube that arrives broken or leaking is rejected as spilled (the official reason closest to it).
REJECTION_DAMAGED = "spilled"


# --- shared helpers ------------------------------------------------------------------------------------------


@dataclass
class _Recorder:
    """Collects the events and audit items of one transaction and writes them in bulk at the end."""

    actor: Actor
    channel: str
    events: list[SampleEvent] = field(default_factory=list)
    audit: list[AuditItem] = field(default_factory=list)

    def event(
        self,
        sample: Sample,
        kind: str,
        *,
        from_state: str = "",
        reason: str = "",
        occurred_at: datetime | None = None,
        data: dict[str, Any] | None = None,
        laboratory_id: int | None = None,
        audit_data: dict[str, Any] | None = None,
    ) -> None:
        now = timezone.now()
        user = self.actor.user
        event = new_instance(
            SampleEvent,
            {
                "sample_id": sample.pk,
                "kind": kind,
                "at": now,
                "occurred_at": occurred_at,
                "actor": self.actor.label,
                "actor_user_id": user.pk if user is not None else None,
                "laboratory_id": laboratory_id or sample.laboratory_id,
                "establishment_id": sample.establishment_id,
                "from_state": from_state,
                "to_state": sample.state,
                "reason": reason[:250],
                "channel": self.channel,
                "data": data or {},
            },
        )
        if sample.pk is None:
            event.sample = sample  # saved before the events are written; its id is taken then
        self.events.append(event)
        self.audit.append(
            AuditItem(
                f"sample.{kind}",
                "sample",
                sample.number,
                {"from": from_state, "to": sample.state, "channel": self.channel, **(audit_data or {})},
            )
        )

    #: From this many events on, they are written with COPY (two statements: ids, then the rows): far less CPU
    #: than a multi-row INSERT for a batch, one statement more for a single event.
    copy_from = 20

    def flush(self) -> None:
        if self.events:
            if len(self.events) >= self.copy_from:
                bulk_insert_rows(SampleEvent, self.events)
            else:
                insert_rows(SampleEvent, self.events)
            ids = [e.pk for e in self.events if e.pk is not None]
            transaction.on_commit(lambda: sample_events_committed.send(sender=SampleEvent, event_ids=ids))
        audit_record_many(actor=self.actor.label, items=self.audit)
        self.events = []
        self.audit = []


def may_write(actor: Actor) -> bool:
    """Whether the actor's role may change samples at all (viewers and people without a staff role may not)."""
    return actor.is_admin or bool(actor.establishment_ids or actor.laboratory_ids)


def _require_writer(actor: Actor) -> None:
    if not may_write(actor):
        raise PermissionDenied(_("Your role may read but not change samples."))


def _lock_sample(actor: Actor, sample_id: int) -> Sample:
    """The sample, row-locked for the rest of the transaction, or NotFound when missing or out of scope."""
    sample = scoped(actor, Sample.objects.select_for_update()).filter(pk=sample_id).first()
    if sample is None:
        raise NotFound(_("Sample not found."), field="sample")
    return sample


def _require_lab(actor: Actor, sample: Sample) -> Laboratory:
    """Lab steps may only be taken by the sample's current destination lab."""
    if not actor.acts_for_laboratory(sample.laboratory_id):
        raise PermissionDenied(
            _("Sample %(number)s is assigned to another laboratory.") % {"number": sample.number},
            code="wrong_laboratory",
            field="laboratory",
        )
    lab = lookups.laboratory_by_pk(sample.laboratory_id)
    assert lab is not None
    return lab


def _require_establishment_side(actor: Actor, sample: Sample) -> None:
    """Edits before receipt: the establishment's staff, or the lab that created the sample through its LIS."""
    if actor.acts_for_establishment(sample.establishment_id):
        return
    if sample.client_lab_id is not None and actor.acts_for_laboratory(sample.client_lab_id):
        return
    raise PermissionDenied(_("Only the establishment that took the sample may change it."))


def _not_member(sample: Sample) -> None:
    if sample.pool_id is not None:
        raise IllegalTransition(
            _("Sample %(number)s is part of a pooled tube; act on the pool tube instead.") % {"number": sample.number},
            field="sample",
        )


def _move(sample: Sample, to_state: str, now: datetime) -> str:
    previous = sample.state
    sample.state = to_state
    sample.state_changed_at = now
    return previous


def _members(sample: Sample) -> list[Sample]:
    return list(Sample.objects.select_for_update().filter(pool=sample)) if sample.is_pool else []


# --- registration ---------------------------------------------------------------------------------------------


@dataclass
class ItemOutcome:
    """The fate of one item of a batch: the stored sample, or the reasons it was refused."""

    index: int
    sample: Sample | None = None
    created: bool = False
    errors: list[FieldError] = field(default_factory=list)
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.sample is not None


def _check_registration_rights(actor: Actor, resolved: ResolvedSample, errors: ErrorCollector) -> None:
    _require_writer(actor)
    if actor.is_admin:
        return
    if actor.acts_for_establishment(resolved.establishment.pk):
        return
    if resolved.laboratory is not None and actor.acts_for_laboratory(resolved.laboratory.pk):
        return  # a lab's LIS registers the samples it will analyse (national API behaviour)
    if actor.laboratory_ids:
        errors.add("laboratory", "wrong_laboratory", _("A laboratory may only register samples addressed to itself."))
    else:
        errors.add(
            "establishment",
            "not_yours",
            _("You may not register samples for establishment %(est)s.") % {"est": resolved.establishment.code},
        )


def _existing_by_client_code(actor: Actor, data: SampleInput, resolved: ResolvedSample) -> Sample | None:
    """For retried creations from a LIS: the sample already stored under this lab's own code."""
    if not data.client_code or resolved.laboratory is None:
        return None
    return Sample.objects.filter(client_lab=resolved.laboratory, client_code=data.client_code).first()


def _same_registration(sample: Sample, resolved: ResolvedSample) -> bool:
    return (
        sample.establishment_id == resolved.establishment.pk
        and sample.test_id == resolved.test.pk
        and sample.sample_type_id == resolved.sample_type.pk
        and sample.collected_at == resolved.collected_at
        and (
            resolved.patient is None
            or resolved.patient.identity_key is None
            or (
                sample.patient is not None
                and (sample.patient.document_type_id, sample.patient.document_number, sample.patient.document_issuer)
                == resolved.patient.identity_key
            )
        )
    )


def _build_sample(actor: Actor, resolved: ResolvedSample, channel: str, now: datetime) -> Sample:
    data = resolved.source
    laboratory = resolved.laboratory
    is_lab_created = (
        laboratory is not None
        and actor.acts_for_laboratory(laboratory.pk)
        and not actor.acts_for_establishment(resolved.establishment.pk)
    )
    sample = new_instance(
        Sample,
        {
            "establishment_id": resolved.establishment.pk,
            "laboratory_id": laboratory.pk if laboratory is not None else None,
            "disease_id": resolved.test.disease_id,
            "test_id": resolved.test.pk,
            "sample_type_id": resolved.sample_type.pk,
            "strategy_id": resolved.strategy.pk if resolved.strategy is not None else None,
            "substrategy_id": resolved.substrategy.pk if resolved.substrategy is not None else None,
            "active_case_finding": data.active_case_finding
            or bool(resolved.strategy and resolved.strategy.active_case_finding),
            "collected_at": resolved.collected_at,
            "client_code": data.client_code or "",
            "client_lab_id": laboratory.pk if data.client_code and laboratory is not None else None,
            "tube_code": data.tube_code or None,
            "responsible_run": resolved.responsible_run,
            "ordering_physician_run": resolved.ordering_physician_run,
            "without_medical_order": data.without_medical_order,
            "surveillance_number": data.surveillance_number or "",
            "answers": data.answers or {},
            # A lab's own LIS registers samples it already holds on its way: the national platform put them
            # straight into "sent to lab" (state 2).
            "state": S.DISPATCHED if is_lab_created else S.REGISTERED,
            "state_changed_at": now,
            "registered_by_id": actor.user.pk if actor.user is not None else None,
            "channel": channel,
            "is_pool": bool(resolved.pool_members),
        },
    )
    # The reference rows are at hand: attached as if read, so nothing after this queries them again.
    cached = sample._state.fields_cache
    cached["establishment"] = resolved.establishment
    cached["laboratory"] = laboratory
    cached["test"] = resolved.test
    cached["sample_type"] = resolved.sample_type
    cached["strategy"] = resolved.strategy
    cached["substrategy"] = resolved.substrategy
    cached["client_lab"] = laboratory if sample.client_lab_id is not None else None
    if actor.user is not None:
        cached["registered_by"] = actor.user
    return sample


def _apply_registration_result(
    sample: Sample, resolved: ResolvedSample, actor: Actor, rec: _Recorder, now: datetime
) -> Result | None:
    if resolved.result_value is None:
        return None
    previous = _move(sample, S.RESULT, now)
    sample.result_value = resolved.result_value
    sample.result_at = resolved.result_at
    sample.save(update_fields=["state", "state_changed_at", "result_value", "result_at"])
    result = Result.objects.create(
        sample=sample,
        version=1,
        value=resolved.result_value,
        reported_at=resolved.result_at or now,
        entered_at=now,
        actor=actor.label,
    )
    rec.event(
        sample,
        EventKind.RESULT_DELIVERED,
        from_state=previous,
        data={"result": resolved.result_value.code, "point_of_care": True},
        audit_data={"result": resolved.result_value.code},
    )
    return result


class _CodeTaken(Exception):
    """The sample's own code or tube barcode was taken by a concurrent writer (the unique constraint fired)."""


def _settle_retry(existing: Sample, data: SampleInput, resolved: ResolvedSample) -> tuple[Sample, bool]:
    """A LIS sent a code it has already used: the same registration again is the stored sample, else a Conflict."""
    if _same_registration(existing, resolved):
        return existing, False
    raise Conflict(
        _("The laboratory's own code %(code)s is already used by sample %(number)s.")
        % {"code": data.client_code, "number": existing.number},
        field="client_code",
    )


def _late_retry(actor: Actor, data: SampleInput, errors: ErrorCollector) -> Sample | None:
    """The stored sample when `data` is a LIS's retry of a creation that succeeded so long ago that its collection
    time is now older than a new registration may be: the same registration again answers with what is stored,
    however late (a retry queue that drained after a week-long outage must not turn successes into refusals).

    Only when the age rule is the input's one fault and the lab's own code names a stored sample with the same
    content; anything else keeps the refusal the input earned."""
    if not data.client_code or not errors or any(e.code != "stale" for e in errors.errors):
        return None
    relaxed = ErrorCollector()
    resolved = resolve_sample(data, relaxed, check_age=False)
    if resolved is None:
        return None
    _check_registration_rights(actor, resolved, relaxed)
    if relaxed:
        return None
    existing = _existing_by_client_code(actor, data, resolved)
    return existing if existing is not None and _same_registration(existing, resolved) else None


def _register_one(actor: Actor, data: SampleInput, channel: str, *, code_known: bool = False) -> tuple[Sample, bool]:
    errors = ErrorCollector()
    resolved = resolve_sample(data, errors)
    if resolved is not None:
        _check_registration_rights(actor, resolved, errors)
    if (stored := _late_retry(actor, data, errors)) is not None:
        return stored, False
    errors.raise_if_any()
    assert resolved is not None
    if code_known:
        # The caller already knows this code is stored (a batch looked its codes up): settle it without writing.
        existing = _existing_by_client_code(actor, data, resolved)
        if existing is not None:
            return _settle_retry(existing, data, resolved)
    # Otherwise optimistic: nearly every registration is new, so the sample is inserted straight away and a retry
    # is only recognised when the unique constraint on (client_lab, client_code) or tube_code fires. That saves a
    # query on every registration; the failed attempt is rolled back whole (patient, sample), so a retry still
    # writes nothing, and a retry that raced its first call is settled exactly like a later one.
    try:
        return _register_new(actor, data, resolved, channel)
    except _CodeTaken as exc:
        existing = _existing_by_client_code(actor, data, resolved)
        if existing is not None:
            return _settle_retry(existing, data, resolved)
        raise Conflict(
            _("A sample with this tube barcode or laboratory code already exists."),
            field="client_code" if data.client_code else "tube_code",
        ) from exc.__cause__


def _register_new(actor: Actor, data: SampleInput, resolved: ResolvedSample, channel: str) -> tuple[Sample, bool]:
    now = timezone.now()
    rec = _Recorder(actor, channel)
    with transaction.atomic():
        sample = _build_sample(actor, resolved, channel, now)
        if resolved.patient is not None:
            sample.patient = patient_resolve(resolved.patient)[0]
        try:
            insert_rows(Sample, [sample])
        except IntegrityError as exc:
            # Leaving the atomic block with this exception rolls the whole registration back.
            raise _CodeTaken() from exc
        rec.event(
            sample,
            EventKind.REGISTERED,
            data=_registration_event_data(sample),
            audit_data={"establishment": resolved.establishment.code},
        )
        for member_data in resolved.pool_members:
            member = _build_sample(actor, resolved, channel, now)
            member.is_pool = False
            member.pool = sample
            member.client_code = ""
            member.client_lab = None
            member.tube_code = None
            member.patient = patient_resolve(member_data)[0]
            member.save()
            rec.event(member, EventKind.REGISTERED, data={"pool": sample.number})
        _apply_registration_result(sample, resolved, actor, rec, now)
        rec.flush()
    return sample, True


def _registration_event_data(sample: Sample) -> dict[str, Any]:
    # Public identifiers only: event data is shown to API callers and sent to other systems.
    lab = lookups.laboratory_by_pk(sample.laboratory_id)
    test = lookups.by_pk(Test, sample.test_id)
    return {"laboratory": lab.platform_id if lab else None, "test": test.code if test else "", "pool": sample.is_pool}


def sample_register(*, actor: Actor, data: SampleInput, channel: str = Channel.API) -> tuple[Sample, bool]:
    """Registers one sample (or a pooled tube with its members). Returns (sample, created).

    A retry by a LIS with the same own code and the same content returns the stored sample (created=False);
    the same code with different content is a Conflict.
    """
    return _register_one(actor, data, channel)


def sample_register_check(*, actor: Actor, data: SampleInput) -> list[FieldError]:
    """Every field error `sample_register` would report for `data`, without writing anything.

    The same validation as a registration (codes, dates, the patient's document and details, the actor's right to
    register for that establishment), so a screen can check a field as soon as it is left and the submit then
    meets no surprise. Uniqueness of tube barcodes is only known when writing, so it is not checked here.
    """
    errors = ErrorCollector()
    resolved = resolve_sample(data, errors)
    if resolved is not None:
        try:
            _check_registration_rights(actor, resolved, errors)
        except DomainError as exc:
            errors.errors.extend(exc.errors or [FieldError("establishment", exc.code, exc.message)])
    return errors.errors


def sample_register_batch(
    *, actor: Actor, items: Sequence[SampleInput], channel: str = Channel.API, all_or_nothing: bool = False
) -> list[ItemOutcome]:
    """Registers many samples item by item: good items are stored, bad ones come back with their reasons.

    The common case (plain samples, valid, new) is written in bulk; anything unusual (pools, point-of-care
    results, retries, a uniqueness race) goes through the one-by-one path so its outcome is exact.
    `all_or_nothing` reproduces the national API v2 (one bad item refuses the whole batch).
    """
    max_items = settings.MUESTRA["MAX_BATCH_ITEMS"]
    if len(items) > max_items:
        raise ValidationFailed(_("A batch holds at most %(max)d items.") % {"max": max_items}, field="items")
    if not all_or_nothing:
        return _register_items(actor, items, channel, stop_on_error=False)
    try:
        with transaction.atomic():
            outcomes = _register_items(actor, items, channel, stop_on_error=True)
            if any(o.errors for o in outcomes):
                raise _BatchRefused(outcomes)
    except _BatchRefused as refused:
        # A late failure (a conflicting retry, a race) undoes the items already written: nothing is stored.
        for outcome in refused.outcomes:
            outcome.sample, outcome.created = None, False
        return refused.outcomes
    return outcomes


class _BatchRefused(Exception):
    def __init__(self, outcomes: list[ItemOutcome]) -> None:
        super().__init__("batch refused")
        self.outcomes = outcomes


def _register_items(
    actor: Actor, items: Sequence[SampleInput], channel: str, *, stop_on_error: bool
) -> list[ItemOutcome]:
    outcomes = [ItemOutcome(index=i) for i in range(len(items))]
    fast: list[tuple[int, ResolvedSample]] = []
    slow: list[int] = []
    retry: set[int] = set()  # items whose own code is already stored
    seen_codes: dict[tuple[int, str], int] = {}
    for i, data in enumerate(items):
        errors = ErrorCollector()
        resolved = resolve_sample(data, errors)
        if resolved is not None:
            _check_registration_rights(actor, resolved, errors)
        if errors:
            if (late := _late_retry(actor, data, errors)) is not None:
                outcomes[i].sample = late
            else:
                outcomes[i].errors = errors.errors
            continue
        assert resolved is not None
        if resolved.pool_members or resolved.result_value is not None or data.tube_code:
            slow.append(i)
            continue
        if data.client_code and resolved.laboratory is not None:
            code_key = (resolved.laboratory.pk, data.client_code)
            if code_key in seen_codes:
                outcomes[i].errors = [
                    FieldError(
                        "client_code",
                        "duplicate",
                        _("The laboratory's own code %(code)s appears twice in this batch.")
                        % {"code": data.client_code},
                    )
                ]
                continue
            seen_codes[code_key] = i
        fast.append((i, resolved))
    if stop_on_error and any(o.errors for o in outcomes):
        return outcomes

    # Retries: items whose own code is already stored go one by one (same content -> success, else conflict).
    if seen_codes:
        lab_ids = {k[0] for k in seen_codes}
        stored = set(
            Sample.objects.filter(
                client_lab_id__in_array=list(lab_ids), client_code__in_array=[k[1] for k in seen_codes]
            ).values_list("client_lab_id", "client_code")
        )
        if stored:
            retry = {seen_codes[k] for k in stored if k in seen_codes}
            slow.extend(i for i, _r in fast if i in retry)
            fast = [(i, r) for i, r in fast if i not in retry]

    if fast:
        try:
            _register_bulk(actor, fast, channel, outcomes)
        except IntegrityError:
            slow.extend(i for i, _r in fast)  # a concurrent writer took a code: settle each exactly
    for i in sorted(slow):
        try:
            with transaction.atomic():
                outcomes[i].sample, outcomes[i].created = _register_one(actor, items[i], channel, code_known=i in retry)
        except DomainError as exc:
            outcomes[i].error = exc
            outcomes[i].errors = exc.errors or [FieldError(exc.field or "", exc.code, exc.message)]
    return outcomes


def _register_bulk(
    actor: Actor, fast: list[tuple[int, ResolvedSample]], channel: str, outcomes: list[ItemOutcome]
) -> None:
    now = timezone.now()
    rec = _Recorder(actor, channel)
    with transaction.atomic():
        patients = patients_resolve_many([r.patient for _i, r in fast if r.patient is not None])
        samples = []
        patient_iter = iter(patients)
        for _i, resolved in fast:
            sample = _build_sample(actor, resolved, channel, now)
            if resolved.patient is not None:
                sample.patient = next(patient_iter)
            samples.append(sample)
        bulk_insert_rows(Sample, samples)  # a code taken meanwhile is an IntegrityError, as with bulk_create
        for sample in samples:
            rec.event(
                sample,
                EventKind.REGISTERED,
                data=_registration_event_data(sample),
                audit_data={"establishment": sample.establishment.code},
            )
        rec.flush()
    for (i, _resolved), sample in zip(fast, samples, strict=True):
        outcomes[i].sample = sample
        outcomes[i].created = True


# --- edit and cancel before receipt ---------------------------------------------------------------------------

EDITABLE_FIELDS = {
    "sample_type",
    "strategy",
    "substrategy",
    "collected_at",
    "laboratory",
    "surveillance_number",
    "active_case_finding",
    "ordering_physician_run",
    "without_medical_order",
}


def sample_update(*, actor: Actor, sample_id: int, changes: dict[str, Any], channel: str = Channel.API) -> Sample:
    """Edits a sample that the lab has not yet received. `changes` maps field names to new values (codes)."""
    _require_writer(actor)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(
            _("These fields cannot be edited: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            field=sorted(unknown)[0],
        )
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        _require_establishment_side(actor, sample)
        _not_member(sample)
        ensure_allowed(sample, Step.EDIT)
        errors = ErrorCollector()
        before: dict[str, Any] = {}
        for name, value in changes.items():
            before[name] = _apply_edit(sample, name, value, errors)
        if not errors and not sample.without_medical_order and not sample.ordering_physician_run:
            errors.add(
                "ordering_physician_run",
                "required",
                _("The ordering physician's RUN is required with a medical order."),
            )
        errors.raise_if_any()
        changed = [n for n in changes if before[n] != _field_value(sample, n)]
        if not changed:
            return sample
        fields = [f"{n}_id" if n in {"sample_type", "strategy", "substrategy", "laboratory"} else n for n in changed]
        sample.save(update_fields=[*{f.removesuffix("_id") for f in fields}, "updated_at"])
        if "laboratory" in changed and sample.shipment_id is not None:
            # The tube leaves the manifest addressed to the old lab; it is shipped again to the new one.
            ShipmentItem.objects.filter(shipment_id=sample.shipment_id, sample=sample).delete()
            sample.shipment = None
            sample.save(update_fields=["shipment"])
        members = _members(sample)
        for member in members:
            for name in changed:
                setattr(member, name, getattr(sample, name))
            member.save(update_fields=[*{f.removesuffix("_id") for f in fields}, "updated_at"])
        rec = _Recorder(actor, channel)
        rec.event(
            sample, EventKind.EDITED, from_state=sample.state, data={"fields": changed}, audit_data={"fields": changed}
        )
        rec.flush()
    return sample


def _field_value(sample: Sample, name: str) -> Any:
    if name in {"sample_type", "strategy", "substrategy", "laboratory"}:
        return getattr(sample, f"{name}_id")
    return getattr(sample, name)


def _apply_edit(sample: Sample, name: str, value: Any, errors: ErrorCollector) -> Any:
    before = _field_value(sample, name)
    if name == "sample_type":
        st = lookups.sample_type(value)
        test = lookups.test(sample.test.code)
        if st is None or test is None or not lookups.test_accepts(test, sample_type_id=st.pk):
            errors.add(name, "unknown_code", _("Unknown sample type %(value)r.") % {"value": value})
        else:
            sample.sample_type = st
    elif name in {"strategy", "substrategy"}:
        strategy = lookups.strategy(value) if value else None
        if value and strategy is None:
            errors.add(name, "unknown_code", _("Unknown strategy %(value)r.") % {"value": value})
        else:
            setattr(sample, name, strategy)
    elif name == "collected_at":
        if value is not None and not isinstance(value, datetime):
            errors.add(name, "invalid", _("The collection time must be a date and time."))
            return before
        problems = len(errors.errors)
        check_collected_at(value, errors)
        if value is not None and len(errors.errors) == problems:
            sample.collected_at = value
    elif name == "laboratory":
        lab = lookups.laboratory(value)
        if sample.state != S.REGISTERED and (lab is None or lab.pk != sample.laboratory_id):
            # A dispatched tube is physically on its way: only its current lab can send it elsewhere (forward).
            errors.add(
                name,
                "already_dispatched",
                _("The sample is already on its way to its laboratory; that laboratory can forward it."),
            )
        elif lab is None:
            errors.add(name, "unknown_code", _("Unknown laboratory %(value)r.") % {"value": value})
        elif lab.pk not in lookups.assigned_lab_ids(sample.establishment_id):
            errors.add(
                name,
                "not_assigned",
                _("Laboratory %(lab)s is not assigned to establishment %(est)s.")
                % {"lab": lab.platform_id, "est": sample.establishment.code},
            )
        elif sample.disease_id not in lookups.lab_disease_ids(lab.pk):
            errors.add(
                name,
                "not_authorised",
                _("Laboratory %(lab)s is not authorised for this disease.") % {"lab": lab.platform_id},
            )
        else:
            sample.laboratory = lab
    elif name == "ordering_physician_run":
        problems = len(errors.errors)
        run = check_run(str(value or ""), errors, name)
        if len(errors.errors) == problems:
            sample.ordering_physician_run = run
    elif name in {"active_case_finding", "without_medical_order"}:
        if not isinstance(value, bool):
            errors.add(name, "invalid", _("%(field)s must be true or false.") % {"field": name})
        else:
            setattr(sample, name, value)
    elif name == "surveillance_number":
        text = "" if value is None else str(value).strip()
        if len(text) > (Sample.surveillance_number.field.max_length or 0):
            errors.add(name, "too_long", _("The surveillance notification number is too long."))
        else:
            sample.surveillance_number = text
    else:
        setattr(sample, name, value)
    return before


def sample_cancel(*, actor: Actor, sample_id: int, reason: str, channel: str = Channel.API) -> Sample:
    _require_writer(actor)
    if not reason or not reason.strip():
        raise ValidationFailed(_("A reason is required to cancel a sample."), field="reason")
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        _require_establishment_side(actor, sample)
        _not_member(sample)
        if sample.state == S.CANCELLED:
            return sample
        ensure_allowed(sample, Step.CANCEL)
        now = timezone.now()
        rec = _Recorder(actor, channel)
        if sample.shipment_id is not None:
            # A cancelled tube does not travel: take it off its (necessarily still open) manifest.
            ShipmentItem.objects.filter(shipment_id=sample.shipment_id, sample=sample).delete()
            sample.shipment = None
        for target in [sample, *_members(sample)]:
            previous = _move(target, S.CANCELLED, now)
            target.save(update_fields=["state", "state_changed_at", "shipment", "updated_at"])
            rec.event(target, EventKind.CANCELLED, from_state=previous, reason=reason)
        rec.flush()
    return sample


# --- shipments -----------------------------------------------------------------------------------------------


def shipment_create(
    *, actor: Actor, establishment_code: str, laboratory_id: int | str, sample_ids: Sequence[int] = (), note: str = ""
) -> Shipment:
    """Opens a manifest from an establishment to one of its assigned labs, optionally with samples in it."""
    _require_writer(actor)
    errors = ErrorCollector()
    establishment = lookups.establishment(establishment_code)
    lab = lookups.laboratory(laboratory_id)
    if establishment is None or not actor.acts_for_establishment(establishment.pk):
        errors.add(
            "establishment", "unknown_code", _("Unknown establishment %(value)r.") % {"value": establishment_code}
        )
    if lab is None:
        errors.add("laboratory", "unknown_code", _("Unknown laboratory %(value)r.") % {"value": laboratory_id})
    elif establishment is not None and lab.pk not in lookups.assigned_lab_ids(establishment.pk):
        errors.add(
            "laboratory",
            "not_assigned",
            _("Laboratory %(lab)s is not assigned to establishment %(est)s.")
            % {"lab": lab.platform_id, "est": establishment.code},
        )
    errors.raise_if_any()
    assert establishment is not None and lab is not None
    with transaction.atomic():
        shipment = Shipment.objects.create(
            establishment=establishment, laboratory=lab, note=note[:250], created_by=actor.user
        )
        audit_record_many(
            actor=actor.label,
            items=[AuditItem("shipment.create", "shipment", shipment.number, {"laboratory": lab.platform_id})],
        )
        if sample_ids:
            outcomes = shipment_add_samples(actor=actor, shipment_id=shipment.pk, sample_ids=sample_ids)
            refused = [FieldError(f"sample_ids[{o.index}]", e.code, e.message) for o in outcomes for e in o.errors]
            if refused:
                # A manifest is opened with exactly the tubes asked for, or not at all.
                raise ValidationFailed(refused[0].message, errors=refused)
    return shipment


def _lock_shipment(actor: Actor, shipment_id: int) -> Shipment:
    shipment = scoped(actor, Shipment.objects.select_for_update()).filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound(_("Shipment not found."), field="shipment")
    return shipment


def shipment_add_samples(*, actor: Actor, shipment_id: int, sample_ids: Sequence[int]) -> list[ItemOutcome]:
    """Puts samples in an open manifest, item by item (a tube of another lab or state is refused alone)."""
    _require_writer(actor)
    outcomes = []
    with transaction.atomic():
        shipment = _lock_shipment(actor, shipment_id)
        if not actor.acts_for_establishment(shipment.establishment_id):
            raise PermissionDenied(_("Only the sending establishment may fill its shipment."))
        if shipment.state != Shipment.State.OPEN:
            raise IllegalTransition(_("The shipment was already dispatched."), field="shipment")
        for i, sample_id in enumerate(sample_ids):
            outcome = ItemOutcome(index=i)
            try:
                with transaction.atomic():
                    sample = _lock_sample(actor, sample_id)
                    _not_member(sample)
                    if (
                        sample.establishment_id != shipment.establishment_id
                        or sample.laboratory_id != shipment.laboratory_id
                    ):
                        raise ValidationFailed(
                            _("Sample %(number)s goes to another laboratory or comes from another establishment.")
                            % {"number": sample.number},
                            field="sample",
                        )
                    ensure_allowed(sample, Step.DISPATCH)
                    if sample.shipment_id is not None and sample.shipment_id != shipment.pk:
                        # One tube, one manifest: take it off the other (still open) shipment first.
                        raise ValidationFailed(
                            _("Sample %(number)s is already in shipment %(shipment)s.")
                            % {"number": sample.number, "shipment": PUBLIC_NUMBER_OFFSET + sample.shipment_id},
                            field="sample",
                        )
                    _item, created = ShipmentItem.objects.get_or_create(shipment=shipment, sample=sample)
                    if sample.shipment_id != shipment.pk:
                        sample.shipment = shipment
                        sample.save(update_fields=["shipment", "updated_at"])
                    outcome.sample, outcome.created = sample, created
            except DomainError as exc:
                outcome.error = exc
                outcome.errors = exc.errors or [FieldError(exc.field or "", exc.code, exc.message)]
            outcomes.append(outcome)
        added = [o.sample.number for o in outcomes if o.created and o.sample is not None]
        if added:
            audit_record_many(
                actor=actor.label,
                items=[AuditItem("shipment.add_samples", "shipment", shipment.number, {"samples": added})],
            )
    return outcomes


def shipment_remove_sample(*, actor: Actor, shipment_id: int, sample_id: int) -> None:
    _require_writer(actor)
    with transaction.atomic():
        shipment = _lock_shipment(actor, shipment_id)
        if not actor.acts_for_establishment(shipment.establishment_id):
            raise PermissionDenied(_("Only the sending establishment may change its shipment."))
        if shipment.state != Shipment.State.OPEN:
            raise IllegalTransition(_("The shipment was already dispatched."), field="shipment")
        removed, _by_model = ShipmentItem.objects.filter(shipment=shipment, sample_id=sample_id).delete()
        Sample.objects.filter(pk=sample_id, shipment=shipment).update(shipment=None)
        if removed:
            audit_record_many(
                actor=actor.label,
                items=[
                    AuditItem(
                        "shipment.remove_sample",
                        "shipment",
                        shipment.number,
                        {"sample": PUBLIC_NUMBER_OFFSET + sample_id},
                    )
                ],
            )


def shipment_dispatch(*, actor: Actor, shipment_id: int, channel: str = Channel.API) -> Shipment:
    """Closes the manifest and marks every sample in it as sent to the lab. Dispatching twice is harmless."""
    _require_writer(actor)
    with transaction.atomic():
        shipment = _lock_shipment(actor, shipment_id)
        if not actor.acts_for_establishment(shipment.establishment_id):
            raise PermissionDenied(_("Only the sending establishment may dispatch its shipment."))
        if shipment.state != Shipment.State.OPEN:
            return shipment
        samples = list(Sample.objects.select_for_update().filter(shipment_items__shipment=shipment))
        if not samples:
            raise ValidationFailed(_("An empty shipment cannot be dispatched."), field="samples")
        now = timezone.now()
        rec = _Recorder(actor, channel)
        members = list(Sample.objects.select_for_update().filter(pool__in=[s for s in samples if s.is_pool]))
        for sample in [*samples, *members]:
            if sample.state != S.REGISTERED:
                continue
            previous = _move(sample, S.DISPATCHED, now)
            sample.save(update_fields=["state", "state_changed_at", "updated_at"])
            rec.event(sample, EventKind.DISPATCHED, from_state=previous, data={"shipment": shipment.number})
        shipment.state = Shipment.State.DISPATCHED
        shipment.dispatched_at = now
        shipment.save(update_fields=["state", "dispatched_at"])
        rec.audit.append(AuditItem("shipment.dispatch", "shipment", shipment.number, {"samples": len(samples)}))
        rec.flush()
    return shipment


# --- laboratory: receipt, rejection, return, forwarding ----------------------------------------------------------


def _check_time(
    sample: Sample, given: datetime | None, now: datetime, *, field: str, future: str | Promise, early: str | Promise
) -> datetime:
    """`given` (or now): not in the future beyond the tolerance, not before the collection."""
    when = given or now
    if when > now + timedelta(minutes=settings.MUESTRA["FUTURE_TOLERANCE_MINUTES"]):
        raise ValidationFailed(future, field=field)
    if when < sample.collected_at:
        raise ValidationFailed(early, field=field)
    return when


def _check_receipt_time(sample: Sample, received_at: datetime | None, now: datetime) -> datetime:
    return _check_time(
        sample,
        received_at,
        now,
        field="received_at",
        future=_("The reception time cannot be in the future."),
        early=_("The reception time cannot be before the collection time."),
    )


def _mark_received(sample: Sample, when: datetime, now: datetime, rec: _Recorder, *, implicit: bool) -> None:
    """The sample is received at `when` (in memory, with its event); the caller writes the row."""
    previous = _move(sample, S.RECEIVED, now)
    sample.received_at = when
    rec.event(
        sample,
        EventKind.RECEIVED,
        from_state=previous,
        occurred_at=when,
        data={"implicit": True} if implicit else None,
    )


def _receive_locked(
    actor: Actor, sample: Sample, received_at: datetime | None, rec: _Recorder, *, implicit: bool = False
) -> bool:
    """Receives a locked sample. Returns False (and records nothing) when this lab had already received it."""
    _require_lab(actor, sample)
    _not_member(sample)
    if sample.received_at is not None and sample.state in {S.RECEIVED, S.RESULT}:
        return False  # a retried receipt: harmless
    ensure_allowed(sample, Step.RECEIVE)
    now = timezone.now()
    when = _check_receipt_time(sample, received_at, now)
    for target in [sample, *_members(sample)]:
        _mark_received(target, when, now, rec, implicit=implicit)
        target.save(update_fields=["state", "state_changed_at", "received_at", "updated_at"])
    if sample.shipment_id:
        # A tube recorded missing from its box that turns up later is received on the manifest too.
        ShipmentItem.objects.filter(
            shipment_id=sample.shipment_id,
            sample=sample,
            outcome__in=[ShipmentItem.Outcome.PENDING, ShipmentItem.Outcome.MISSING],
        ).update(outcome=ShipmentItem.Outcome.RECEIVED)
    return True


def sample_receive(
    *, actor: Actor, sample_id: int, received_at: datetime | None = None, channel: str = Channel.API
) -> tuple[Sample, bool]:
    """The lab receives a sample. Returns (sample, recorded); a repeated receipt returns recorded=False."""
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        rec = _Recorder(actor, channel)
        recorded = _receive_locked(actor, sample, received_at, rec)
        rec.flush()
    return sample, recorded


def samples_receive(
    *, actor: Actor, sample_ids: Sequence[int], received_at: datetime | None = None, channel: str = Channel.API
) -> list[ItemOutcome]:
    """Receives many samples, each in its own savepoint: one bad tube never blocks the box."""
    outcomes = []
    for i, sample_id in enumerate(sample_ids):
        outcome = ItemOutcome(index=i)
        try:
            outcome.sample, outcome.created = sample_receive(
                actor=actor, sample_id=sample_id, received_at=received_at, channel=channel
            )
        except DomainError as exc:
            outcome.error = exc
            outcome.errors = exc.errors or [FieldError(exc.field or "", exc.code, exc.message)]
        outcomes.append(outcome)
    return outcomes


@dataclass
class ShipmentReceipt:
    shipment: Shipment
    received: list[int]
    already_received: list[int]
    damaged: list[int]
    missing: list[int]
    unexpected: list[int]


def shipment_receive(
    *,
    actor: Actor,
    shipment_id: int,
    received_sample_ids: Sequence[int],
    damaged_sample_ids: Sequence[int] = (),
    damage_reason: str = "",
    damage_reasons: Mapping[int, str] | None = None,
    received_at: datetime | None = None,
    channel: str = Channel.API,
) -> ShipmentReceipt:
    """The lab receives a whole box: scanned tubes are received, damaged ones rejected as spilled/damaged,
    tubes on the manifest but not scanned are recorded missing (they stay in transit for a later scan).

    `damage_reasons` gives a damaged tube its own description (by sample id); others get `damage_reason`."""
    with transaction.atomic():
        shipment = _lock_shipment(actor, shipment_id)
        if not actor.acts_for_laboratory(shipment.laboratory_id):
            raise PermissionDenied(_("This shipment is addressed to another laboratory."), code="wrong_laboratory")
        if shipment.state == Shipment.State.OPEN:
            raise IllegalTransition(_("The shipment has not been dispatched yet."), field="shipment")
        # Lock the tubes before their manifest lines, in a fixed order: a single-tube receipt locks its sample and
        # then its line, so the opposite order here would deadlock with a bench scanning tubes of this box.
        samples = {
            sample.pk: sample
            for sample in Sample.objects.select_for_update(of=("self",))
            .filter(shipment_items__shipment=shipment)
            .order_by("pk")
        }
        items = {item.sample_id: item for item in ShipmentItem.objects.select_for_update().filter(shipment=shipment)}
        received_ids = set(received_sample_ids)
        damaged_ids = set(damaged_sample_ids)
        receipt = ShipmentReceipt(shipment, [], [], [], [], sorted((received_ids | damaged_ids) - set(items)))
        rec = _Recorder(actor, channel)
        damaged_reason = lookups.rejection_reason(REJECTION_DAMAGED)
        for sample_id, item in items.items():
            sample = samples[sample_id]
            if sample_id in damaged_ids:
                reason = (damage_reasons or {}).get(sample_id) or damage_reason
                if sample.state != S.REJECTED:
                    ensure_allowed(sample, Step.REJECT)  # e.g. not a tube that already has its result
                    _reject_locked(actor, sample, damaged_reason, reason or "damaged on arrival", rec)
                    rec.event(sample, EventKind.DAMAGED, from_state=sample.state, reason=reason)
                item.outcome = ShipmentItem.Outcome.DAMAGED
                item.note = reason[:250]
                receipt.damaged.append(sample_id)
            elif sample_id in received_ids:
                if _receive_locked(actor, sample, received_at, rec):
                    receipt.received.append(sample_id)
                else:
                    receipt.already_received.append(sample_id)
                item.outcome = ShipmentItem.Outcome.RECEIVED
            elif item.outcome == ShipmentItem.Outcome.PENDING:
                item.outcome = ShipmentItem.Outcome.MISSING
                rec.event(sample, EventKind.MISSING, from_state=sample.state, data={"shipment": shipment.number})
                receipt.missing.append(sample_id)
            item.save(update_fields=["outcome", "note"])
        shipment.state = Shipment.State.RECEIVED
        shipment.received_at = shipment.received_at or timezone.now()
        shipment.save(update_fields=["state", "received_at"])
        rec.audit.append(
            AuditItem(
                "shipment.receive",
                "shipment",
                shipment.number,
                {"received": len(receipt.received), "missing": len(receipt.missing), "damaged": len(receipt.damaged)},
            )
        )
        rec.flush()
    return receipt


def _reject_locked(actor: Actor, sample: Sample, reason: Any, note: str, rec: _Recorder) -> None:
    for target in [sample, *_members(sample)]:
        previous = _move(target, S.REJECTED, timezone.now())
        target.rejection_reason = reason
        target.save(update_fields=["state", "state_changed_at", "rejection_reason", "updated_at"])
        rec.event(
            target,
            EventKind.REJECTED,
            from_state=previous,
            reason=note,
            data={"reason": reason.code if reason else ""},
            audit_data={"reason": reason.code if reason else ""},
        )


def sample_reject(*, actor: Actor, sample_id: int, reason: str, note: str = "", channel: str = Channel.API) -> Sample:
    """The lab rejects a sample with one of the official reasons. Rejecting again with the same reason is a no-op."""
    reason_obj = lookups.rejection_reason(reason)
    if reason_obj is None:
        raise ValidationFailed(_("Unknown rejection reason %(value)r.") % {"value": reason}, field="reason")
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        _require_lab(actor, sample)
        _not_member(sample)
        if sample.state == S.REJECTED and sample.rejection_reason_id == reason_obj.pk:
            return sample
        ensure_allowed(sample, Step.REJECT)
        rec = _Recorder(actor, channel)
        _reject_locked(actor, sample, reason_obj, note, rec)
        rec.flush()
    return sample


def sample_return(*, actor: Actor, sample_id: int, reason: str = "", channel: str = Channel.API) -> Sample:
    """The lab sends a sample back to its establishment (e.g. no capacity). Returning twice is a no-op."""
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        _not_member(sample)
        if sample.state == S.RETURNED:
            if not actor.acts_for_laboratory(sample.laboratory_id):
                raise PermissionDenied(
                    _("Sample %(number)s is assigned to another laboratory.") % {"number": sample.number},
                    code="wrong_laboratory",
                )
            return sample
        _require_lab(actor, sample)
        ensure_allowed(sample, Step.RETURN)
        rec = _Recorder(actor, channel)
        for target in [sample, *_members(sample)]:
            previous = _move(target, S.RETURNED, timezone.now())
            target.save(update_fields=["state", "state_changed_at", "updated_at"])
            rec.event(target, EventKind.RETURNED, from_state=previous, reason=reason)
        rec.flush()
    return sample


def _forwarded_by(actor: Actor, sample_id: int, target_lab: Laboratory) -> Sample | None:
    """The sample, when its latest step was the actor's own lab forwarding it to `target_lab` (a retry)."""
    if not actor.laboratory_ids:
        return None
    sample = Sample.objects.filter(pk=sample_id, laboratory=target_lab, state=S.DISPATCHED).first()
    if sample is None:
        return None
    last_forward = sample.events.filter(kind=EventKind.FORWARDED).order_by("-id").first()
    if last_forward is not None and last_forward.laboratory_id in actor.laboratory_ids:
        return sample
    return None


def sample_forward(
    *, actor: Actor, sample_id: int, new_laboratory: int | str, reason: str = "", channel: str = Channel.API
) -> Sample:
    """Re-assigns a sample to another lab, which must then receive it (national `cambioLaboratorio`)."""
    target_lab = lookups.laboratory(new_laboratory)
    if target_lab is None:
        raise ValidationFailed(_("Unknown laboratory %(value)r.") % {"value": new_laboratory}, field="new_laboratory")
    with transaction.atomic():
        retried = _forwarded_by(actor, sample_id, target_lab)
        if retried is not None:
            # The lab that forwarded the sample no longer sees it, but its retry must still be harmless.
            return retried
        sample = _lock_sample(actor, sample_id)
        _not_member(sample)
        if sample.laboratory_id == target_lab.pk and sample.state == S.DISPATCHED:
            # Already forwarded there (a retry by the lab that forwarded it), or the caller is the new lab
            # confirming: nothing to do. Anyone else is refused as for any other lab step.
            last_forward = sample.events.filter(kind=EventKind.FORWARDED).order_by("-id").first()
            if last_forward is None or not actor.acts_for_laboratory(last_forward.laboratory_id):
                _require_lab(actor, sample)
            return sample
        current_lab = _require_lab(actor, sample)
        ensure_allowed(sample, Step.FORWARD)
        if sample.disease_id not in lookups.lab_disease_ids(target_lab.pk):
            raise ValidationFailed(
                _("Laboratory %(lab)s is not authorised for this disease.") % {"lab": target_lab.platform_id},
                field="new_laboratory",
            )
        rec = _Recorder(actor, channel)
        for target in [sample, *_members(sample)]:
            previous = _move(target, S.DISPATCHED, timezone.now())
            target.laboratory = target_lab
            target.received_at = None
            target.save(update_fields=["state", "state_changed_at", "laboratory", "received_at", "updated_at"])
            rec.event(
                target,
                EventKind.FORWARDED,
                from_state=previous,
                reason=reason,
                laboratory_id=current_lab.pk,
                data={"from_laboratory": current_lab.platform_id, "to_laboratory": target_lab.platform_id},
                audit_data={"to_laboratory": target_lab.platform_id},
            )
        rec.flush()
    return sample


# --- results ---------------------------------------------------------------------------------------------------


@dataclass
class ReportFile:
    content: bytes
    content_type: str = "application/pdf"
    name: str = "report.pdf"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _resolve_result_value(sample: Sample, value: str) -> ResultValue:
    result_value = lookups.result_value(value)
    if result_value is None or result_value.interpretation == Interpretation.RETEST:
        raise ValidationFailed(_("Unknown result %(value)r.") % {"value": value}, field="result")
    # From the look-up cache (not `sample.test`: a query per sample in a batch). A retired test is not checked.
    test = lookups.by_pk(Test, sample.test_id)
    if test is not None and test.active and not lookups.test_accepts(test, result_value_id=result_value.pk):
        raise ValidationFailed(
            _("Result %(value)s is not valid for test %(test)s.")
            % {"value": result_value.display_name, "test": test.display_name},
            field="result",
        )
    return result_value


def _check_report(result_value: ResultValue, report: ReportFile | None) -> None:
    if report is None:
        if result_value.report_required:
            raise ValidationFailed(_("The signed report file is required with this result."), field="report")
        return
    if len(report.content) > settings.MUESTRA["MAX_REPORT_BYTES"]:
        raise ValidationFailed(_("The report file is too large."), field="report")
    if not report.content:
        raise ValidationFailed(_("The report file is empty."), field="report")


def _check_result_time(sample: Sample, reported_at: datetime | None) -> datetime:
    return _check_time(
        sample,
        reported_at,
        timezone.now(),
        field="reported_at",
        future=_("The result time cannot be in the future."),
        early=_("The result time cannot be before the collection time."),
    )


def _new_result(
    sample: Sample,
    *,
    version: int,
    value: ResultValue,
    reported_at: datetime,
    actor: Actor,
    reason: str = "",
    authorization: CorrectionAuthorization | None = None,
    from_pool_result: Result | None = None,
) -> Result:
    result = new_instance(
        Result,
        {
            "version": version,
            "value_id": value.pk,
            "reported_at": reported_at,
            "entered_at": timezone.now(),
            "laboratory_id": sample.laboratory_id,
            "actor": actor.label,
            "reason": reason[:250],
        },
    )
    result._state.fields_cache["value"] = value
    # Through the descriptors: a row saved only after this result was built gives its id when the result is.
    result.sample = sample
    if authorization is not None:
        result.authorization = authorization
    if from_pool_result is not None:
        result.from_pool_result = from_pool_result
    return result


def _attach_report(result: Result, report: ReportFile) -> None:
    """Stores the report file and points the (unsaved) result at it."""
    result.report_sha256 = report.sha256
    result.report_content_type = report.content_type[:80]
    result.report.save("report.pdf", ContentFile(report.content), save=False)


def _store_result(
    sample: Sample,
    *,
    version: int,
    value: ResultValue,
    reported_at: datetime,
    actor: Actor,
    report: ReportFile | None,
    reason: str = "",
    authorization: CorrectionAuthorization | None = None,
    from_pool_result: Result | None = None,
) -> Result:
    result = _new_result(
        sample,
        version=version,
        value=value,
        reported_at=reported_at,
        actor=actor,
        reason=reason,
        authorization=authorization,
        from_pool_result=from_pool_result,
    )
    if report is not None:
        _attach_report(result, report)
    result.save()
    sample.result_value = value
    sample.result_at = reported_at
    return result


def _fan_out_pool(pool: Sample, pool_result: Result, actor: Actor, rec: _Recorder, *, kind: str) -> None:
    """A negative pool makes every member negative; anything else marks every member for re-testing."""
    retest_value = next(
        (v for v in ResultValue.objects.filter(interpretation=Interpretation.RETEST, active=True)), None
    )
    negative = pool_result.value.interpretation == Interpretation.NEGATIVE
    member_value = pool_result.value if negative else retest_value
    if member_value is None:
        raise DomainError(_("The catalogue has no re-test result value; ask an administrator."))
    for member in _members(pool):
        previous = member.state
        version = member.results.count() + 1
        _store_result(
            member,
            version=version,
            value=member_value,
            reported_at=pool_result.reported_at,
            actor=actor,
            report=None,
            reason=pool_result.reason,
            from_pool_result=pool_result,
        )
        member.retest_needed = not negative
        _move(member, S.RESULT, timezone.now())
        member.save(
            update_fields=["state", "state_changed_at", "result_value", "result_at", "retest_needed", "updated_at"]
        )
        rec.event(
            member,
            kind,
            from_state=previous,
            data={"result": member_value.code, "pool": pool.number},
            audit_data={"result": member_value.code},
        )


def result_deliver(
    *,
    actor: Actor,
    sample_id: int,
    value: str,
    reported_at: datetime | None = None,
    report: ReportFile | None = None,
    channel: str = Channel.API,
) -> tuple[Result, bool]:
    """The lab delivers the result with its signed report. Returns (result, recorded).

    The assigned lab may deliver to a sample it has not yet marked received: the receipt is recorded implicitly
    first (a result proves the lab holds the tube). The same result again is harmless (recorded=False); a
    different one is a Conflict, since changes go through `result_correct`.
    """
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        _require_lab(actor, sample)
        _not_member(sample)
        result_value = _resolve_result_value(sample, value)
        if sample.state == S.RESULT:
            if sample.result_value_id == result_value.pk:
                return sample.results.order_by("-version").first(), False  # type: ignore[return-value]
            raise Conflict(
                _("Sample %(number)s already has a different result; send a correction instead.")
                % {"number": sample.number},
                field="result",
            )
        ensure_allowed(sample, Step.DELIVER_RESULT)
        _check_report(result_value, report)
        when = _check_result_time(sample, reported_at)
        rec = _Recorder(actor, channel)
        if sample.state != S.RECEIVED:
            _receive_locked(actor, sample, min(when, timezone.now()), rec, implicit=True)
        result = _store_result(sample, version=1, value=result_value, reported_at=when, actor=actor, report=report)
        previous = _move(sample, S.RESULT, timezone.now())
        sample.save(update_fields=["state", "state_changed_at", "result_value", "result_at", "updated_at"])
        rec.event(
            sample,
            EventKind.RESULT_DELIVERED,
            from_state=previous,
            data={"result": result_value.code, "report_sha256": result.report_sha256},
            audit_data={"result": result_value.code},
        )
        if sample.is_pool:
            _fan_out_pool(sample, result, actor, rec, kind=EventKind.RESULT_DELIVERED)
        rec.flush()
    return result, True


@dataclass
class ResultItem:
    """One result of a batch: the sample, its result value code, and what the lab's system said about it."""

    sample_id: int
    value: str
    reported_at: datetime | None = None
    # The lab's own receipt time, for a sample it had not yet marked received (otherwise the receipt is implicit).
    received_at: datetime | None = None
    report: ReportFile | None = None
    # Ask-on-order-entry answers that came with the result; merged into the sample's answers when it is recorded.
    answers: Mapping[str, str] | None = None


@dataclass
class ResultOutcome:
    """The fate of one item of `result_deliver_batch`."""

    index: int
    result: Result | None = None
    recorded: bool = False
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_DELIVERY_FIELDS = ["state", "state_changed_at", "received_at", "result_value", "result_at", "answers", "updated_at"]


def result_deliver_batch(
    *, actor: Actor, items: Sequence[ResultItem], channel: str = Channel.API
) -> list[ResultOutcome]:
    """Delivers many results in one transaction, each with its own outcome: one refused item never blocks the
    others. Per item the rules and answers are exactly those of `result_deliver` (the same result again is
    recorded=False, a different one a Conflict; an unreceived sample is received first, at `received_at` when the
    lab gave it).

    This is the path of lab systems that send results by the thousand (files, HL7 batches, FHIR Bundles): the
    samples are locked in one statement (in id order, so two batches never deadlock), every item is checked in
    memory, and results, sample changes, events and audit entries are written in bulk. Pooled tubes, rare and
    fanning out to their members, take `result_deliver` one by one inside the same transaction.
    """
    outcomes = [ResultOutcome(index=i) for i in range(len(items))]
    if not items:
        return outcomes
    _require_writer(actor)
    with transaction.atomic():
        wanted = sorted({item.sample_id for item in items})
        locked = {
            s.pk: s
            for s in loaded_rows(
                scoped(actor, Sample.objects.select_for_update().order_by("pk")).filter(pk__in_array=wanted)
            )
        }
        rec = _Recorder(actor, channel)
        new_results: dict[int, Result] = {}  # sample id -> the result recorded by this batch
        changed: dict[int, Sample] = {}
        received_from_boxes: list[int] = []
        unchanged: dict[int, int] = {}  # outcome index -> sample id whose stored result answers it
        for i, item in enumerate(items):
            sample = locked.get(item.sample_id)
            if sample is None:
                outcomes[i].error = NotFound(_("Sample not found."), field="sample")
                continue
            try:
                if sample.is_pool:
                    outcomes[i].result, outcomes[i].recorded = _deliver_pool_item(actor, sample, item, channel)
                    continue
                _require_lab(actor, sample)
                _not_member(sample)
                result_value = _resolve_result_value(sample, item.value)
                if sample.state == S.RESULT:
                    if sample.result_value_id != result_value.pk:
                        raise Conflict(
                            _("Sample %(number)s already has a different result; send a correction instead.")
                            % {"number": sample.number},
                            field="result",
                        )
                    if sample.pk in new_results:
                        outcomes[i].result = new_results[sample.pk]
                    else:
                        unchanged[i] = sample.pk
                    continue
                ensure_allowed(sample, Step.DELIVER_RESULT)
                _check_report(result_value, item.report)
                when = _check_result_time(sample, item.reported_at)
                now = timezone.now()
                receive = sample.state != S.RECEIVED
                if receive:
                    if item.received_at is not None:
                        received_at, implicit = _check_receipt_time(sample, item.received_at, now), False
                    else:
                        received_at, implicit = min(when, now), True
                # Every check has passed: from here the item only changes memory, written in bulk below.
                if receive:
                    _mark_received(sample, received_at, now, rec, implicit=implicit)
                    if sample.shipment_id:
                        received_from_boxes.append(sample.pk)
                result = _new_result(sample, version=1, value=result_value, reported_at=when, actor=actor)
                if item.report is not None:
                    _attach_report(result, item.report)
                sample.result_value, sample.result_at = result_value, when
                if item.answers:
                    sample.answers = {**(sample.answers or {}), **item.answers}
                previous = _move(sample, S.RESULT, now)
                sample.updated_at = now
                rec.event(
                    sample,
                    EventKind.RESULT_DELIVERED,
                    from_state=previous,
                    data={"result": result_value.code, "report_sha256": result.report_sha256},
                    audit_data={"result": result_value.code},
                )
                new_results[sample.pk] = result
                changed[sample.pk] = sample
                outcomes[i].result, outcomes[i].recorded = result, True
            except DomainError as exc:
                outcomes[i].error = exc
        if new_results:
            bulk_insert_rows(Result, list(new_results.values()))
            bulk_update_rows(Sample, list(changed.values()), _DELIVERY_FIELDS)
        if received_from_boxes:
            # A tube recorded missing from its box that turns up with its result is received on the manifest too.
            ShipmentItem.objects.filter(
                sample_id__in=received_from_boxes,
                outcome__in=[ShipmentItem.Outcome.PENDING, ShipmentItem.Outcome.MISSING],
            ).update(outcome=ShipmentItem.Outcome.RECEIVED)
        if unchanged:
            latest: dict[int, Result] = {}
            for stored in Result.objects.filter(sample_id__in=set(unchanged.values())).order_by("sample_id", "version"):
                latest[stored.sample_id] = stored
            for i, sample_id in unchanged.items():
                outcomes[i].result = latest.get(sample_id)
        rec.flush()
    return outcomes


def _deliver_pool_item(actor: Actor, pool: Sample, item: ResultItem, channel: str) -> tuple[Result, bool]:
    """A pooled tube's result, through the one-by-one services (its own savepoint: a refusal undoes only it)."""
    with transaction.atomic():
        if item.received_at is not None and pool.state in (S.REGISTERED, S.DISPATCHED):
            sample_receive(actor=actor, sample_id=pool.pk, received_at=item.received_at, channel=channel)
        result, recorded = result_deliver(
            actor=actor,
            sample_id=pool.pk,
            value=item.value,
            reported_at=item.reported_at,
            report=item.report,
            channel=channel,
        )
    pool.refresh_from_db()
    return result, recorded


def sample_answers_record(
    *, actor: Actor, sample_id: int, answers: Mapping[str, str], channel: str = Channel.API
) -> tuple[Sample, bool]:
    """Stores ask-on-order-entry answers a lab's system sent about a sample (merged with those already stored).
    Returns (sample, recorded); the same answers again record nothing."""
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        if not actor.acts_for_laboratory(sample.laboratory_id):
            _require_establishment_side(actor, sample)
        merged = {**(sample.answers or {}), **{str(k)[:120]: str(v)[:500] for k, v in answers.items()}}
        if merged == (sample.answers or {}):
            return sample, False
        changed_keys = sorted(k for k in merged if (sample.answers or {}).get(k) != merged[k])
        sample.answers = merged
        sample.save(update_fields=["answers", "updated_at"])
        rec = _Recorder(actor, channel)
        rec.event(sample, EventKind.EDITED, from_state=sample.state, data={"answers": changed_keys})
        rec.flush()
    return sample, True


def correction_needs_authorisation(history: Sequence[Result], now: datetime | None = None) -> bool:
    """Whether correcting a result with these versions (first delivery first) needs an administrator's
    authorisation: it was corrected already, or the first delivery is older than the correction window."""
    if not history:
        return False
    window = timedelta(days=settings.MUESTRA["CORRECTION_WINDOW_DAYS"])
    return len(history) > 1 or (now or timezone.now()) - history[0].entered_at > window


def result_correct(
    *,
    actor: Actor,
    sample_id: int,
    value: str,
    reason: str,
    reported_at: datetime | None = None,
    report: ReportFile | None = None,
    channel: str = Channel.API,
) -> Result:
    """Corrects a delivered result: once within the correction window, later only with an administrator's
    authorisation (each authorisation allows one correction)."""
    if not reason or not reason.strip():
        raise ValidationFailed(_("A reason is required to correct a result."), field="reason")
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        if sample.laboratory_id is None:
            # A point-of-care result (antigen) was entered at the establishment, which corrects it too.
            _require_writer(actor)
            _require_establishment_side(actor, sample)
        else:
            _require_lab(actor, sample)
        _not_member(sample)
        ensure_allowed(sample, Step.CORRECT_RESULT)
        result_value = _resolve_result_value(sample, value)
        history = list(sample.results.order_by("version"))
        if (
            history
            and history[-1].value_id == result_value.pk
            and (report is None or history[-1].report_sha256 == report.sha256)
        ):
            raise ValidationFailed(_("The correction is identical to the current result."), field="result")
        _check_report(result_value, report)
        when = _check_result_time(sample, reported_at)
        window = timedelta(days=settings.MUESTRA["CORRECTION_WINDOW_DAYS"])
        authorization = None
        if correction_needs_authorisation(history):
            authorization = (
                CorrectionAuthorization.objects.select_for_update()
                .filter(sample=sample, used_at__isnull=True)
                .order_by("authorised_at")
                .first()
            )
            if authorization is None:
                raise PermissionDenied(
                    _(
                        "A result may be corrected once within %(days)d days; this correction needs a national "
                        "administrator's authorisation."
                    )
                    % {"days": window.days},
                    code="authorisation_required",
                    field="result",
                )
            authorization.used_at = timezone.now()
            authorization.save(update_fields=["used_at"])
        result = _store_result(
            sample,
            version=len(history) + 1,
            value=result_value,
            reported_at=when,
            actor=actor,
            # A corrected result is signed anew: the previous report states the old value, so it is never reused.
            report=report,
            reason=reason,
            authorization=authorization,
        )
        sample.save(update_fields=["result_value", "result_at", "updated_at"])
        rec = _Recorder(actor, channel)
        rec.event(
            sample,
            EventKind.RESULT_CORRECTED,
            from_state=S.RESULT,
            reason=reason,
            data={"result": result_value.code, "previous": history[-1].value.code, "version": result.version},
            audit_data={"result": result_value.code, "version": result.version},
        )
        if sample.is_pool:
            _fan_out_pool(sample, result, actor, rec, kind=EventKind.RESULT_CORRECTED)
        rec.flush()
    return result


def correction_authorise(
    *, actor: Actor, sample_id: int, reason: str, channel: str = Channel.WEB
) -> CorrectionAuthorization:
    """A national administrator allows one more correction of a sample's result."""
    if not actor.is_admin or actor.user is None:
        raise PermissionDenied(_("Only a national administrator may authorise a late correction."))
    if not reason or not reason.strip():
        raise ValidationFailed(_("A reason is required."), field="reason")
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        if sample.state != S.RESULT:
            raise IllegalTransition(_("Only a sample with a result can have its result corrected."), field="sample")
        pending = CorrectionAuthorization.objects.filter(sample=sample, used_at__isnull=True).first()
        if pending is not None:
            return pending
        authorization = CorrectionAuthorization.objects.create(
            sample=sample, reason=reason[:250], authorised_by=actor.user, authorised_at=timezone.now()
        )
        rec = _Recorder(actor, channel)
        rec.event(sample, EventKind.CORRECTION_AUTHORISED, from_state=sample.state, reason=reason)
        rec.flush()
    return authorization


# --- late-correction requests --------------------------------------------------------------------------------


def correction_request_create(
    *, actor: Actor, sample_id: int, proposed_value: str, reason: str, channel: str = Channel.WEB
) -> tuple[CorrectionRequest, bool]:
    """The sample's lab asks a national administrator to allow one more correction of its result.

    Only when a direct correction is no longer allowed (window passed, or already corrected once) and no
    authorisation is waiting to be used. Returns (request, created); the same request again while it is pending
    is harmless, a different one is a Conflict.
    """
    errors = ErrorCollector()
    if not reason or not reason.strip():
        errors.add("reason", "required", _("A reason is required."))
    elif len(reason) > 250:
        errors.add("reason", "too_long", _("The reason may have at most 250 characters."))
    errors.raise_if_any()
    with transaction.atomic():
        sample = _lock_sample(actor, sample_id)
        lab = _require_lab(actor, sample)
        _not_member(sample)
        if actor.user is None:
            raise PermissionDenied(_("A correction request must be made by a person."))
        ensure_allowed(sample, Step.CORRECT_RESULT)
        result_value = _resolve_result_value(sample, proposed_value)
        pending = CorrectionRequest.objects.select_for_update().filter(sample=sample, state="pending").first()
        if pending is not None:
            if pending.proposed_value_id == result_value.pk and pending.reason == reason.strip():
                return pending, False
            raise Conflict(
                _("Sample %(number)s already has a correction request waiting for a decision.")
                % {"number": sample.number},
                field="sample",
            )
        history = list(sample.results.order_by("version"))
        if not correction_needs_authorisation(history):
            raise ValidationFailed(
                _("This result may still be corrected directly; no authorisation is needed."), field="sample"
            )
        if CorrectionAuthorization.objects.filter(sample=sample, used_at__isnull=True).exists():
            raise ValidationFailed(
                _("A correction of this result is already authorised; correct it now."), field="sample"
            )
        if history and history[-1].value_id == result_value.pk:
            raise ValidationFailed(_("The proposed result is the current result."), field="proposed_value")
        request = CorrectionRequest.objects.create(
            sample=sample,
            laboratory=lab,
            requested_by=actor.user,
            requested_at=timezone.now(),
            reason=reason.strip(),
            proposed_value=result_value,
        )
        audit_record_many(
            actor=actor.label,
            items=[
                AuditItem(
                    "sample.correction_requested",
                    "sample",
                    sample.number,
                    {"request": request.pk, "proposed": result_value.code, "channel": channel},
                )
            ],
        )
    return request, True


def correction_request_decide(
    *, actor: Actor, request_id: int, authorise: bool, note: str = "", channel: str = Channel.WEB
) -> CorrectionRequest:
    """A national administrator authorises (one correction, through `correction_authorise`) or declines a
    lab's correction request. Deciding the same way again is harmless; the opposite decision is a Conflict."""
    if not actor.is_admin or actor.user is None:
        raise PermissionDenied(_("Only a national administrator may decide a correction request."))
    note = (note or "").strip()
    if len(note) > 250:
        raise ValidationFailed(_("The note may have at most 250 characters."), field="note")
    if not authorise and not note:
        raise ValidationFailed(_("Say why the request is declined."), field="note")
    target = CorrectionRequest.State.AUTHORISED if authorise else CorrectionRequest.State.DECLINED
    with transaction.atomic():
        request = (
            scoped(actor, CorrectionRequest.objects.select_for_update()).filter(pk=request_id).first()
            if request_id
            else None
        )
        if request is None:
            raise NotFound(_("Correction request not found."), field="request")
        if request.state != CorrectionRequest.State.PENDING:
            if request.state == target:
                return request
            raise Conflict(_("This request was already decided."), field="request")
        if authorise:
            request.authorization = correction_authorise(
                actor=actor, sample_id=request.sample_id, reason=note or request.reason, channel=channel
            )
        request.state = target
        request.decided_by = actor.user
        request.decided_at = timezone.now()
        request.decision_note = note
        request.save(update_fields=["state", "decided_by", "decided_at", "decision_note", "authorization"])
        audit_record_many(
            actor=actor.label,
            items=[
                AuditItem(
                    "sample.correction_request_decided",
                    "sample",
                    PUBLIC_NUMBER_OFFSET + request.sample_id,
                    {"request": request.pk, "decision": target.value, "channel": channel},
                )
            ],
        )
    return request
