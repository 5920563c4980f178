"""Shared pieces of the staff screens' forms: showing a service's refusal next to the fields it names."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms

from muestra.core.errors import DomainError


def add_domain_error(form: forms.Form, error: DomainError, field_map: Mapping[str, str] | None = None) -> None:
    """Puts a service's refusal on the form: each field error next to its field, the rest at the top.

    `field_map` translates the service's field names (``patient.document_number``) into the form's
    (``document_number``). A field error naming no field of the form is shown at the top, never dropped.
    """
    field_map = field_map or {}
    placed = False
    for item in error.errors:
        name = field_map.get(item.field, item.field)
        if name in form.fields:
            form.add_error(name, str(item.message))
        else:
            form.add_error(None, str(item.message))
        placed = True
    if not placed:
        form.add_error(None, str(error.message))
