"""What arrives from other systems, and what became of each item of it.

An `Intake` is one unit received from a lab system or a person: an uploaded file, an HL7 message or batch, a FHIR
Bundle, a legacy API call. Its `IntakeItem`s are the rows, messages or entries inside it, each with its own outcome
(accepted, rejected with the reasons, held for a person to match, or a repeat that changed nothing). Nothing that
arrives is silent: the supervision page and API read these two tables.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from muestra.accounts.models import ApiKey
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

    channel = models.CharField(_("channel"), max_length=8, choices=IntakeChannel.choices)
    #: The format inside the channel: a file template, an HL7 message type, a Bundle type, a legacy operation.
    kind = models.CharField(_("kind"), max_length=60)
    laboratory = models.ForeignKey(Laboratory, on_delete=models.PROTECT, null=True, blank=True, related_name="intakes")
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, null=True, blank=True, related_name="intakes"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
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
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.kind} #{self.pk}"

    @property
    def processed(self) -> int:
        return self.accepted + self.rejected + self.held


class IntakeItem(models.Model):
    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        UNCHANGED = "unchanged", _("Already recorded")
        REJECTED = "rejected", _("Rejected")
        HELD = "held", _("Held to match")

    intake = models.ForeignKey(Intake, on_delete=models.CASCADE, related_name="items")
    #: Row number of a file (1 = first data row), message index in a batch, entry index in a Bundle.
    position = models.PositiveIntegerField(_("position"))
    #: The identifiers as the sender wrote them (sample number, specimen id, order id...), for people to search.
    reference = models.CharField(_("reference"), max_length=120, blank=True, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    sample = models.ForeignKey(
        "samples.Sample", on_delete=models.SET_NULL, null=True, blank=True, related_name="intake_items"
    )
    #: [{"field": ..., "code": ..., "message": ...}], messages in the intake's language.
    errors = models.JSONField(default=list, blank=True)
    #: The item as parsed (field name -> value as text), so a person can correct it and process it again.
    data = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField()
    #: Set when a person fixed this item and it was processed again (the new outcome is a new item).
    superseded_by = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("received item")
        verbose_name_plural = _("received items")
        ordering = ["intake_id", "position", "pk"]
        indexes = [models.Index(fields=["intake", "outcome"], name="intake_item_outcome")]

    def __str__(self) -> str:
        return f"{self.intake_id}:{self.position} {self.outcome}"
