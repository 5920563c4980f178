"""Samples, their chain of custody (events), shipments and results.

State lives on `Sample.state` for fast lists; history lives in `SampleEvent`, which is append-only and can replay
the whole chain of custody. A pooled tube is a Sample with `is_pool=True` and no patient; each person swabbed
into it is a member Sample pointing at the pool, so every person has their own sample, result and history.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from muestra.catalog.models import Disease, RejectionReason, ResultValue, SampleType, Strategy, Test
from muestra.core.fields import BulkJSONField
from muestra.facilities.models import Establishment, Laboratory
from muestra.patients.models import Patient

#: Public sample numbers are 10 digits, like the national platform's `id_muestra`.
PUBLIC_NUMBER_OFFSET = 1_000_000_000


class SampleState(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    DISPATCHED = "dispatched", _("Sent to laboratory")
    RECEIVED = "received", _("Received by laboratory")
    RESULT = "result", _("Result available")
    REJECTED = "rejected", _("Rejected")
    RETURNED = "returned", _("Returned to establishment")
    CANCELLED = "cancelled", _("Cancelled")


class Channel(models.TextChoices):
    WEB = "web", _("Web application")
    API = "api", _("REST API")
    PNTM = "pntm", _("National legacy API")
    IMPORT = "import", _("Bulk file")
    HL7 = "hl7", _("HL7 v2")
    FHIR = "fhir", _("FHIR")
    SYSTEM = "system", _("System")


class Shipment(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Being prepared")
        # "shipment" context: Spanish and other languages agree the word with "envío" (masculine), not "muestra".
        DISPATCHED = "dispatched", pgettext_lazy("shipment", "Dispatched")
        RECEIVED = "received", pgettext_lazy("shipment", "Received")

    establishment = models.ForeignKey(Establishment, on_delete=models.PROTECT, related_name="shipments")
    laboratory = models.ForeignKey(Laboratory, on_delete=models.PROTECT, related_name="shipments")
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(_("note"), max_length=250, blank=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        indexes = [models.Index(fields=["laboratory", "state"]), models.Index(fields=["establishment", "state"])]

    def __str__(self) -> str:
        return f"Shipment {self.number}"

    @property
    def number(self) -> int:
        return PUBLIC_NUMBER_OFFSET + self.pk


class Sample(models.Model):
    # Every index of this table is paid on each registration and, since a result changes indexed columns (no HOT
    # update), again on each result. So only the indexes a read uses exist (see Meta): no index of its own for
    # catalogue references (a handful of values, never looked up alone), for the establishment and lab (the
    # composite indexes lead with them), nor for the user. Partial indexes cover the columns that are mostly NULL.
    establishment = models.ForeignKey(Establishment, on_delete=models.PROTECT, related_name="samples", db_index=False)
    laboratory = models.ForeignKey(
        Laboratory, on_delete=models.PROTECT, null=True, blank=True, related_name="samples", db_index=False
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="samples")
    is_pool = models.BooleanField(_("pooled tube"), default=False)
    pool = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="members", db_index=False
    )
    disease = models.ForeignKey(Disease, on_delete=models.PROTECT, db_index=False)
    test = models.ForeignKey(Test, on_delete=models.PROTECT, db_index=False)
    sample_type = models.ForeignKey(SampleType, on_delete=models.PROTECT, db_index=False)
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    substrategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    active_case_finding = models.BooleanField(_("active case finding"), default=False)
    collected_at = models.DateTimeField(_("collection time"))

    # The LIS's own code (codigo_muestra_cliente), unique within the lab that issued it. `client_lab` is set exactly
    # when there is a code (a check constraint says so).
    client_code = models.CharField(_("laboratory's own code"), max_length=60, blank=True, default="")
    client_lab = models.ForeignKey(
        Laboratory, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # Tube barcode printed at the site (mass screening); unique when present (constraint in Meta). NULL, not "",
    # for none: the tubes without a barcode stay out of the unique index.
    tube_code = models.CharField(_("tube barcode"), max_length=60, null=True, blank=True)  # noqa: DJ001

    responsible_run = models.CharField(_("responsible professional RUN"), max_length=12, blank=True)
    ordering_physician_run = models.CharField(_("ordering physician RUN"), max_length=12, blank=True)
    without_medical_order = models.BooleanField(_("without medical order"), default=True)
    surveillance_number = models.CharField(_("surveillance notification number"), max_length=40, blank=True)
    answers = BulkJSONField(_("ask-on-order-entry answers"), default=dict, blank=True)

    state = models.CharField(_("state"), max_length=16, choices=SampleState.choices, default=SampleState.REGISTERED)
    state_changed_at = models.DateTimeField()
    shipment = models.ForeignKey(
        Shipment, on_delete=models.SET_NULL, null=True, blank=True, related_name="samples", db_index=False
    )
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)
    result_value = models.ForeignKey(
        ResultValue, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    result_at = models.DateTimeField(_("result time"), null=True, blank=True)
    retest_needed = models.BooleanField(_("re-test needed"), default=False)
    rejection_reason = models.ForeignKey(
        RejectionReason, on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )

    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.WEB)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sample")
        verbose_name_plural = _("samples")
        constraints = [
            # Partial on the lab, not on the code: the visibility rule (`client_lab_id IN (...)`, in an OR with the
            # current lab) and the batch look-up of hundreds of codes imply `client_lab_id IS NOT NULL`, so they
            # use this index, whereas PostgreSQL cannot prove `client_code <> ''` from a parameter or from a list
            # of more than 100 codes. With the check below, it is the same uniqueness as "per lab, when coded".
            models.UniqueConstraint(
                fields=["client_lab", "client_code"],
                condition=models.Q(client_lab__isnull=False),
                name="sample_client_code_unique_per_lab",
            ),
            models.CheckConstraint(
                condition=models.Q(client_lab__isnull=True) | ~models.Q(client_code=""),
                name="sample_client_lab_has_code",
            ),
            # A constraint rather than unique=True: no second (LIKE-pattern) index on PostgreSQL, and the tubes
            # without a barcode are left out of the index. `tube_code = %s` and `IN (...)` imply NOT NULL.
            models.UniqueConstraint(
                fields=["tube_code"], condition=models.Q(tube_code__isnull=False), name="sample_tube_code_unique"
            ),
        ]
        indexes = [
            # Worklists, lists, and the visibility rule of labs and establishments.
            models.Index(fields=["laboratory", "state", "collected_at"]),
            models.Index(fields=["establishment", "state", "collected_at"]),
            # Lists newest collection first, date filters, the admin's date hierarchy.
            models.Index(fields=["collected_at"]),
            # Pool members and shipment contents (and their PROTECT/SET_NULL checks); most samples have neither.
            models.Index(fields=["pool"], condition=models.Q(pool__isnull=False), name="sample_pool_member"),
            models.Index(fields=["shipment"], condition=models.Q(shipment__isnull=False), name="sample_in_shipment"),
        ]

    def __str__(self) -> str:
        return f"Sample {self.number}"

    @property
    def number(self) -> int:
        return PUBLIC_NUMBER_OFFSET + self.pk

    @staticmethod
    def pk_from_number(number: int | str) -> int | None:
        try:
            value = int(number)
        except (TypeError, ValueError):
            return None
        return value - PUBLIC_NUMBER_OFFSET if value > PUBLIC_NUMBER_OFFSET else None


class EventKind(models.TextChoices):
    REGISTERED = "registered", _("Registered")
    EDITED = "edited", _("Edited")
    CANCELLED = "cancelled", _("Cancelled")
    DISPATCHED = "dispatched", _("Dispatched")
    RECEIVED = "received", _("Received")
    REJECTED = "rejected", _("Rejected")
    RETURNED = "returned", _("Returned")
    FORWARDED = "forwarded", _("Forwarded to another laboratory")
    RESULT_DELIVERED = "result_delivered", _("Result delivered")
    RESULT_CORRECTED = "result_corrected", _("Result corrected")
    CORRECTION_AUTHORISED = "correction_authorised", _("Late correction authorised")
    MISSING = "missing", _("Missing from shipment")
    DAMAGED = "damaged", _("Damaged on arrival")


class AppendOnlyModel(models.Model):
    """Rows are written once. The ORM refuses updates and deletes; the audit trail catches anything else."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise RuntimeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{type(self).__name__} rows are append-only")


class SampleEvent(AppendOnlyModel):
    # Read by sample (the timeline) and by time (outbound catch-up); the other references are only shown, so they
    # have no index of their own (each one is paid on every event written).
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    at = models.DateTimeField(db_index=True)
    # When it happened according to the caller (e.g. the lab's reception time), if it differs from `at`.
    occurred_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=120)  # "user:12" / "apikey:3" / "system"
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    laboratory = models.ForeignKey(Laboratory, on_delete=models.PROTECT, null=True, related_name="+", db_index=False)
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=250, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    data = BulkJSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("sample event")
        verbose_name_plural = _("sample events")


class ShipmentItem(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "pending", _("In transit")
        RECEIVED = "received", pgettext_lazy("tube", "Received")
        MISSING = "missing", _("Missing")
        DAMAGED = "damaged", _("Damaged")

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="shipment_items")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    note = models.CharField(max_length=250, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shipment", "sample"], name="shipment_item_unique")]


def report_upload_path(instance: Result, filename: str) -> str:
    # Never the patient's name in a path: only the sample number and the content hash.
    digest = instance.report_sha256[:16]
    return f"reports/{instance.sample_id % 1000:03d}/{instance.sample_id}-{instance.version}-{digest}.pdf"


class Result(AppendOnlyModel):
    """Every version of a sample's result, first delivery and corrections alike."""

    # Results are read by sample only: the unique (sample, version) index serves that, so no other index but the
    # partial ones on the rarely set references (their PROTECT checks).
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="results", db_index=False)
    version = models.PositiveSmallIntegerField()
    value = models.ForeignKey(ResultValue, on_delete=models.PROTECT, db_index=False)
    reported_at = models.DateTimeField(_("result time"))
    entered_at = models.DateTimeField()
    laboratory = models.ForeignKey(
        Laboratory, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    actor = models.CharField(max_length=120)
    report = models.FileField(upload_to=report_upload_path, blank=True)
    report_sha256 = models.CharField(max_length=64, blank=True)
    report_content_type = models.CharField(max_length=80, blank=True)
    reason = models.CharField(_("correction reason"), max_length=250, blank=True)
    authorization = models.ForeignKey(
        "CorrectionAuthorization", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # Results fanned out from a pooled tube point at the pool's result.
    from_pool_result = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["sample", "version"]
        constraints = [models.UniqueConstraint(fields=["sample", "version"], name="result_version_unique")]
        indexes = [
            models.Index(
                fields=["authorization"],
                condition=models.Q(authorization__isnull=False),
                name="result_authorization",
            ),
            models.Index(
                fields=["from_pool_result"],
                condition=models.Q(from_pool_result__isnull=False),
                name="result_from_pool_result",
            ),
        ]
        verbose_name = _("result")
        verbose_name_plural = _("results")


class CorrectionAuthorization(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="correction_authorizations")
    reason = models.CharField(_("reason"), max_length=250)
    authorised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    authorised_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("late correction authorisation")
        verbose_name_plural = _("late correction authorisations")


class CorrectionRequest(models.Model):
    """A lab's request to correct a result after the correction window; a national administrator decides it.

    Authorising it creates a `CorrectionAuthorization`, which the lab then uses for exactly one correction.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        AUTHORISED = "authorised", _("Authorised")
        DECLINED = "declined", _("Declined")

    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="correction_requests")
    laboratory = models.ForeignKey(Laboratory, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    reason = models.CharField(_("reason"), max_length=250)
    proposed_value = models.ForeignKey(
        ResultValue, on_delete=models.PROTECT, related_name="+", verbose_name=_("proposed result")
    )
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(_("decision note"), max_length=250, blank=True)
    authorization = models.ForeignKey(
        CorrectionAuthorization, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("correction request")
        verbose_name_plural = _("correction requests")
        constraints = [
            models.UniqueConstraint(
                fields=["sample"],
                condition=models.Q(state="pending"),
                name="correction_request_one_pending_per_sample",
            ),
        ]
        indexes = [models.Index(fields=["state", "requested_at"])]

    def __str__(self) -> str:
        return f"Correction request {self.pk} ({self.state})"
