"""The one error vocabulary shared by services, the REST API, the legacy adapter and (later) the screens.

Services raise these; the outer layers only translate them into their wire shape. A message is a lazy
translation so it renders in the language of whoever reads it (Spanish by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise


@dataclass
class FieldError:
    field: str
    code: str
    message: str | Promise

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": str(self.message)}


class DomainError(Exception):
    """A request the rules refuse. Nothing was stored when one of these escapes a service."""

    status = 400
    code = "invalid"

    def __init__(
        self,
        message: str | Promise,
        *,
        code: str | None = None,
        field: str | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(str(message))
        self.message = message
        if code:
            self.code = code
        self.field = field
        self.errors: list[FieldError] = list(errors or [])
        if field and not self.errors:
            self.errors.append(FieldError(field=field, code=self.code, message=message))

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self.message), "errors": [e.as_dict() for e in self.errors]}


class ValidationFailed(DomainError):
    """One or more fields are missing or malformed."""

    status = 422
    code = "validation_error"


class NotFound(DomainError):
    """Missing, or out of the caller's scope: the two are deliberately indistinguishable."""

    status = 404
    code = "not_found"


class PermissionDenied(DomainError):
    """The caller sees the record but their role may not do this to it."""

    status = 403
    code = "forbidden"


class IllegalTransition(DomainError):
    """The sample's current state does not allow this step."""

    status = 409
    code = "illegal_transition"


class Conflict(DomainError):
    """A retry that differs from what is already stored (e.g. a different result)."""

    status = 409
    code = "conflict"


@dataclass
class ErrorCollector:
    """Gathers every field error of one input so the caller gets them all at once, not one per attempt."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, field_name: str, code: str, message: str | Promise) -> None:
        self.errors.append(FieldError(field=field_name, code=code, message=message))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self, message: str | Promise | None = None) -> None:
        if self.errors:
            first = self.errors[0]
            raise ValidationFailed(message or first.message, errors=self.errors, field=None)
