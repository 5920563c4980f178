"""Receiving an upload: who may send which kind of file, storing it in the intake log (a repeat of the same bytes
returns the earlier upload and changes nothing), and handing it to the task worker."""

from __future__ import annotations

from django.utils.translation import gettext as _

from muestra.accounts.scoping import Actor
from muestra.core.errors import ValidationFailed
from muestra.integrations import services as intake_services
from muestra.integrations.bulk.templates import KINDS, Kind
from muestra.integrations.models import Intake, IntakeChannel

#: The largest file accepted (a 100,000-row "Muestras y resultados" CSV is about 35 MB).
MAX_UPLOAD_BYTES = 60 * 1024 * 1024


def may_upload(actor: Actor) -> bool:
    return bool(actor.laboratory_ids or actor.establishment_ids)


def kinds_for(actor: Actor) -> list[Kind]:
    """Labs deliver results and register samples; establishments register samples (with point-of-care results)."""
    if actor.laboratory_ids:
        return list(KINDS.values())
    if actor.establishment_ids:
        return [k for k in KINDS.values() if not k.results]
    return []


def upload_submit(*, actor: Actor, kind: str, filename: str, content: bytes) -> tuple[Intake, bool]:
    """Stores the file and queues its processing. Returns (intake, created); created=False for a repeat."""
    allowed = {k.code for k in kinds_for(actor)}
    if kind not in allowed:
        raise ValidationFailed(_("Choose one of the kinds of file you may send."), code="invalid_choice", field="kind")
    if not content:
        raise ValidationFailed(_("The file is empty."), code="empty", field="file")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ValidationFailed(
            _("The file is too large (at most %(mb)d MB).") % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)},
            code="too_large",
            field="file",
        )
    results = KINDS[kind].results
    laboratory_id = min(actor.laboratory_ids) if actor.laboratory_ids else None
    establishment_id = min(actor.establishment_ids) if actor.establishment_ids and not laboratory_id else None
    if not results and not actor.laboratory_ids:
        laboratory_id = None
    intake, created = intake_services.intake_open(
        actor=actor,
        channel=IntakeChannel.FILE,
        kind=kind,
        content=content,
        filename=filename,
        laboratory_id=laboratory_id,
        establishment_id=establishment_id,
    )
    if created:
        from muestra.integrations.bulk.tasks import process_upload

        process_upload.enqueue(intake.pk)
    return intake, created
