"""/laboratories and /establishments: the places the caller may see (scoped like every record)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from muestra.api import schemas as s
from muestra.api import serializers
from muestra.api.auth import actor_of
from muestra.api.common import ERRORS
from muestra.samples import selectors

router = Router(tags=["facilities"])


@router.get("/laboratories", response={200: list[s.LaboratoryOut], **ERRORS}, summary="Laboratories visible to you")
def laboratory_list(request: HttpRequest) -> list[s.LaboratoryOut]:
    return [serializers.laboratory_out(lab) for lab in selectors.laboratories(actor_of(request))]


@router.get(
    "/establishments",
    response={200: list[s.EstablishmentOut], **ERRORS},
    summary="Establishments visible to you, with the labs each may send to",
)
def establishment_list(request: HttpRequest) -> list[s.EstablishmentOut]:
    return [serializers.establishment_out(est) for est in selectors.establishments(actor_of(request))]
