"""`POST /api/v1/hl7`: HL7 v2.5.1 ORU^R01 results (one message or an FHS/BHS batch), answered with ACKs.

The answer is always an HL7 body, never the API's JSON error shape: a LIS reads MSA-1 (AA/AE/AR). Authentication is
done here rather than by the router (same authenticators) so that a missing or wrong key is answered with an AR
(HTTP 401) a LIS can read. See docs/hl7.md.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Router
from ninja.errors import HttpError

from muestra.api.auth import authenticate
from muestra.core.errors import DomainError
from muestra.integrations.hl7 import processing

router = Router(tags=["HL7 v2"])


def _hl7(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body.encode("utf-8"), status=status, content_type=processing.CONTENT_TYPE)


@router.post(
    "",
    auth=None,
    summary="Send HL7 v2.5.1 ORU^R01 results",
    description=(
        "Body: one ORU^R01 message or an FHS/BHS batch (segments ending in CR, LF or CRLF), as "
        "`x-application/hl7-v2+er7` or `text/plain`; authenticated with a laboratory's API key. The answer is an "
        "ACK per message (a batch of ACKs for a batch): AA accepted, AE error (ERR and MSA-3 say why), AR refused."
    ),
    response={200: str, 401: str, 403: str},
    openapi_extra={
        "requestBody": {"content": {"x-application/hl7-v2+er7": {"schema": {"type": "string"}}}, "required": True}
    },
)
def post_hl7(request: HttpRequest) -> HttpResponse:
    content = request.body
    try:
        actor = authenticate(request)
    except (DomainError, HttpError) as exc:
        return _hl7(processing.refuse(str(getattr(exc, "message", exc)), content=content), 403)
    if actor is None:
        return _hl7(processing.refuse(_("Authentication required: send a laboratory's API key."), content=content), 401)
    try:
        answer = processing.receive(actor, content)
    except processing.NotLab:
        return _hl7(processing.refuse(_("Only laboratories send results."), content=content), 403)
    return _hl7(answer.body)
