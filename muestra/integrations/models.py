"""What arrives from other systems, and what became of each item of it.

An `Intake` is one unit received from a lab system or a person: an uploaded file, an HL7 message or batch, a FHIR
Bundle, a legacy API call. Its `IntakeItem`s are the rows, messages or entries inside it, each with its own outcome
(accepted, rejected with the reasons, held for a person to match, or a repeat that changed nothing). Nothing that
arrives is silent: the supervision page and API read these two tables.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import ApiKey
from muestra.core.fields import BulkJSONField
from muestra.facilities.models import Establishment, Laboratory


class IntakeChannel(models.TextChoices):
    FILE = "file", _("Bulk file")
    HL7 = "hl7", _("HL7 v2")
    FHIR = "fhir", _("FHIR")
    PNTM = "pntm", _("National legacy API")


class Intake(models.Model):
    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSING = "processing", _("Processing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Could not be read")

    # A unit is written per HL7 message and per national API call: only the indexes a read uses exist (Meta). The
    # lab is the first column of `intake_lab_recent`; the sender is only matched together with the content.
    channel = models.CharField(_("channel"), max_length=8, choices=IntakeChannel.choices)
    #: The format inside the channel: a file template, an HL7 message type, a Bundle type, a legacy operation.
    kind = models.CharField(_("kind"), max_length=60)
    laboratory = models.ForeignKey(
        Laboratory, on_delete=models.PROTECT, null=True, blank=True, related_name="intakes", db_index=False
    )
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, null=True, blank=True, related_name="intakes", db_index=False
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    #: The submitter's interface language when it arrived: reasons are written in it.
    language = models.CharField(max_length=8, blank=True)
    received_at = models.DateTimeField(_("received at"), db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    #: SHA-256 of the bytes received: the same content from the same sender is recognised as a repeat.
    content_sha256 = models.CharField(max_length=64)
    #: The bytes as received, kept so a failed item can be fixed and processed again.
    payload = models.FileField(upload_to="intake/%Y/%m/%d/", blank=True)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.RECEIVED)
    total = models.PositiveIntegerField(_("items"), default=0)
    accepted = models.PositiveIntegerField(_("accepted"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    held = models.PositiveIntegerField(_("held to match"), default=0)
    #: Why the whole unit could not be read (not a row's problem: those are on the items).
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("received unit")
        verbose_name_plural = _("received units")
        indexes = [
            models.Index(fields=["laboratory", "-received_at"], name="intake_lab_recent"),
            models.Index(fields=["channel", "kind", "content_sha256"], name="intake_content"),
            # What an establishment sent (its visibility rule); most units come from labs.
            models.Index(
                fields=["establishment"],
                condition=models.Q(establishment__isnull=False),
                name="intake_establishment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.kind} #{self.pk}"

    @property
    def kind_label(self) -> str:
        """What a person calls this kind of unit: a file template's name, else the operation or message type."""
        if self.channel == IntakeChannel.FILE:
            from muestra.integrations.bulk.templates import KINDS  # the templates import models: import on use

            kind = KINDS.get(self.kind)
            if kind is not None:
                return str(kind.label)
        return self.kind

    @property
    def processed(self) -> int:
        return self.accepted + self.rejected + self.held


class IntakeItem(models.Model):
    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        UNCHANGED = "unchanged", _("Already recorded")
        REJECTED = "rejected", _("Rejected")
        HELD = "held", _("Held to match")

    # Items are written by the thousand and read per unit (`intake_item_outcome` leads with the intake) or by id:
    # the other indexes are partial, on the few items held or superseded.
    intake = models.ForeignKey(Intake, on_delete=models.CASCADE, related_name="items", db_index=False)
    #: Row number of a file (1 = first data row), message index in a batch, entry index in a Bundle.
    position = models.PositiveIntegerField(_("position"))
    #: The identifiers as the sender wrote them (sample number, specimen id, order id...), shown to people.
    reference = models.CharField(_("reference"), max_length=120, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    # Samples are never deleted (their events protect them), so SET_NULL never has to find these rows.
    sample = models.ForeignKey(
        "samples.Sample",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="intake_items",
        db_index=False,
    )
    #: [{"field": ..., "code": ..., "message": ...}], messages in the intake's language.
    errors = BulkJSONField(default=list, blank=True)
    #: The item as parsed (field name -> value as text), so a person can correct it and process it again.
    data = BulkJSONField(default=dict, blank=True)
    processed_at = models.DateTimeField()
    #: Set when a person fixed this item and it was processed again (the new outcome is a new item).
    superseded_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        verbose_name = _("received item")
        verbose_name_plural = _("received items")
        ordering = ["intake_id", "position", "pk"]
        indexes = [
            models.Index(fields=["intake", "outcome"], name="intake_item_outcome"),
            # The SET_NULL of a superseding item's deletion (with its unit); most items are never superseded.
            models.Index(
                fields=["superseded_by"],
                condition=models.Q(superseded_by__isnull=False),
                name="intake_item_superseded",
            ),
            # The matching queue reads the held items of its labs: without this it reads every item ever received.
            models.Index(fields=["intake"], condition=models.Q(outcome="held"), name="intake_item_held"),
        ]

    def __str__(self) -> str:
        return f"{self.intake_id}:{self.position} {self.outcome}"


class IntakePart(models.Model):
    """A range of a large file's rows, processed by one task so that several workers share one file.

    `done_through` is the last row committed with its outcome: each chunk locks its part's row, skips the rows
    already done and moves it forward in the same transaction as the rows' writes, so a part run twice (a retried
    task, a worker that died) never applies a row twice. The run that finishes the last part closes the unit.
    """

    intake = models.ForeignKey(Intake, on_delete=models.CASCADE, related_name="parts")
    first_row = models.PositiveIntegerField()
    last_row = models.PositiveIntegerField()
    done_through = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["intake_id", "first_row"]

    def __str__(self) -> str:
        return f"{self.intake_id}:{self.first_row}-{self.last_row}"


# --- outbound events ----------------------------------------------------------------------------------------------
# What leaves the platform: subscriptions of other systems (surveillance, contact tracing) to sample events, and one
# Delivery per (subscription, event) tracked until the receiver acknowledged it. See docs/outbound.md.

#: The sample events other systems may subscribe to (`SampleEvent.kind`) and their names on the wire.
OUTBOUND_EVENT_TYPES: dict[str, str] = {
    "registered": "sample.registered",
    "dispatched": "sample.dispatched",
    "received": "sample.received",
    "rejected": "sample.rejected",
    "returned": "sample.returned",
    "forwarded": "sample.forwarded",
    "cancelled": "sample.cancelled",
    "result_delivered": "sample.result_available",
    "result_corrected": "sample.result_corrected",
}

#: Offered in the subscription form, in this order.
OUTBOUND_EVENT_CHOICES = [
    ("registered", _("Sample registered")),
    ("dispatched", _("Sample sent to laboratory")),
    ("received", _("Sample received by laboratory")),
    ("rejected", _("Sample rejected")),
    ("returned", _("Sample returned to establishment")),
    ("forwarded", _("Sample forwarded to another laboratory")),
    ("cancelled", _("Sample cancelled")),
    ("result_delivered", _("Result available")),
    ("result_corrected", _("Result corrected")),
]


#: Hosts a receiver may be reached at over plain HTTP (a relay on the same machine; the test suite's receivers).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def validate_receiver_url(value: str) -> None:
    """Receivers are reached over HTTPS; plain HTTP only on this machine (or anywhere with DEBUG on)."""
    parsed = urlsplit(value)
    if parsed.scheme == "https":
        return
    if parsed.scheme == "http" and (parsed.hostname in LOOPBACK_HOSTS or settings.DEBUG):
        return
    raise ValidationError(_("The receiver URL must start with https://."), code="insecure_url")


class PayloadFormat(models.TextChoices):
    JSON = "json", _("Muestra JSON")
    FHIR = "fhir", _("FHIR R4B resource")


class Subscription(models.Model):
    """Another system that wants sample events: where to POST them, which ones, and the secret that signs them."""

    name = models.CharField(_("name"), max_length=120, help_text=_("Which system receives, e.g. “Epivigila”."))
    url = models.URLField(
        _("receiver URL"),
        max_length=500,
        validators=[validate_receiver_url],
        help_text=_("HTTPS address that receives each event as a POST."),
    )
    #: The signing secret. Kept (a signature needs it), shown once when created or rotated, never displayed again.
    secret = models.CharField(max_length=100, editable=False)
    event_kinds = models.JSONField(_("events"), default=list)
    territories = models.ManyToManyField(
        "territories.Territory",
        blank=True,
        related_name="+",
        verbose_name=_("territories"),
        help_text=_("Only samples taken at establishments inside one of these territories; none = everywhere."),
    )
    diseases = models.ManyToManyField(
        "catalog.Disease",
        blank=True,
        related_name="+",
        verbose_name=_("diseases"),
        help_text=_("Only samples for one of these diseases; none = every disease."),
    )
    format = models.CharField(_("payload format"), max_length=8, choices=PayloadFormat.choices, default="json")
    include_patient = models.BooleanField(
        _("include the patient's identity"),
        default=False,
        help_text=_("Document, names, birth date, sex and contact: only for systems entitled to personal data."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Sending state, written by the sender only.
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    #: The receiver looked down (no answer, 5xx, 429): nothing is sent to it before this time.
    suspended_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    #: A sender holds the subscription until then, so two workers never send its deliveries at the same time.
    lease_until = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_failure_at = models.DateTimeField(_("last failure"), null=True, blank=True)

    class Meta:
        verbose_name = _("event subscription")
        verbose_name_plural = _("event subscriptions")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def secret_hint(self) -> str:
        return f"{self.secret[:10]}…" if self.secret else ""


class SnapshotJSONField(BulkJSONField):
    """Kept under this name for migration 0002; see `core.fields.BulkJSONField`."""


class EventSnapshot(models.Model):
    """Our JSON of one sample event as it was when committed, written once and shared by all its deliveries.

    Kept apart from Delivery so the hot path writes each payload once, not once per subscription. The patient's
    identity is kept beside it and added only for subscriptions entitled to it.
    """

    # The event is append-only and was committed just before: no foreign-key check needed on the hot path.
    sample_event = models.OneToOneField(
        "samples.SampleEvent", on_delete=models.DO_NOTHING, primary_key=True, related_name="+", db_constraint=False
    )
    payload = SnapshotJSONField()
    patient = SnapshotJSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("event snapshot")
        verbose_name_plural = _("event snapshots")

    def __str__(self) -> str:
        return f"{self.payload.get('type')} {self.pk}"

    def for_subscription(self, include_patient: bool) -> dict[str, Any]:
        if include_patient and self.patient:
            return {**self.payload, "patient": self.patient}
        return dict(self.payload)


class Delivery(models.Model):
    """One event for one subscription, kept until the receiver acknowledged it (2xx) or it was given up (dead).

    Order per sample: a delivery is sent only when every earlier one (`sample_event_id` order) of the same
    (subscription, sample) was delivered. `event_uuid` stays the same across retries, so receivers can drop repeats.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        FAILING = "failing", _("Failing, will retry")
        DELIVERED = "delivered", _("Delivered")
        DEAD = "dead", _("Given up")

    # Indexes and constraints are kept to what the sender needs: each one is paid on every row of the hot path's
    # bulk insert. Events and samples are append-only / never deleted, so their foreign keys are not checked.
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="deliveries", db_index=False)
    #: The event sent; its id is also the sequence number of the sample's events (growing with time). Its JSON
    #: snapshot is the EventSnapshot with the same id.
    sample_event = models.ForeignKey(
        "samples.SampleEvent", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    sample = models.ForeignKey(
        "samples.Sample", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    event_uuid = models.UUIDField(_("event id"))
    kind = models.CharField(_("event"), max_length=24, choices=OUTBOUND_EVENT_CHOICES)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"))
    next_attempt_at = models.DateTimeField(_("next attempt"))
    last_status = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("event delivery")
        verbose_name_plural = _("event deliveries")
        constraints = [
            models.UniqueConstraint(fields=["subscription", "sample_event"], name="delivery_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["subscription", "state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["sample", "subscription", "sample_event"], name="delivery_sample_order"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription_id} ({self.state})"

    @property
    def sequence(self) -> int:
        return self.sample_event_id

    @property
    def payload(self) -> dict[str, Any]:
        """Our JSON as this subscription receives it (one query; the sender reads snapshots in bulk instead)."""
        snapshot = EventSnapshot.objects.get(pk=self.sample_event_id)
        return snapshot.for_subscription(self.subscription.include_patient)

    @property
    def event_type(self) -> str:
        return OUTBOUND_EVENT_TYPES.get(self.kind, self.kind)


class DeliveryAttempt(models.Model):
    """One POST of a delivery: what the receiver answered (or why nothing came back) and how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts_log")
    at = models.DateTimeField(_("at"))
    status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    ok = models.BooleanField(_("delivered"), default=False)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery_id", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status or self.error[:30]}"
