"""OperationOutcome and the HTTP answers of /fhir/: JSON as `application/fhir+json`, errors as OperationOutcome
with issue severity, code, diagnostics (in the caller's language) and expression (the FHIRPath of the element)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse
from django.utils.functional import Promise

from muestra.core.errors import Conflict, DomainError, IllegalTransition, NotFound, PermissionDenied, ValidationFailed

FHIR_JSON = "application/fhir+json; charset=utf-8"

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}


@dataclass
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # FHIR IssueType: invalid, required, value, not-found, conflict, forbidden, business-rule...
    diagnostics: str | Promise
    expression: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": str(self.diagnostics)}
        if self.expression:
            issue["expression"] = self.expression
        return issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_dict() for i in issues]}


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, '')}".strip()


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status, content_type=FHIR_JSON
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(status: int, issues: Sequence[Issue], headers: dict[str, str] | None = None) -> HttpResponse:
    return fhir_response(operation_outcome(issues), status, headers)


def issue_code(exc: DomainError) -> str:
    if isinstance(exc, NotFound):
        return "not-found"
    if isinstance(exc, PermissionDenied):
        return "forbidden"
    if isinstance(exc, Conflict):
        return "conflict"
    if isinstance(exc, IllegalTransition):
        return "business-rule"
    if isinstance(exc, ValidationFailed):
        return "invalid"
    return "processing"


def issues_from_domain_error(exc: DomainError, expressions: dict[str, str], prefix: str = "") -> list[Issue]:
    """One issue per field error of `exc`; `expressions` maps the services' field names to FHIRPath."""
    code = issue_code(exc)
    if not exc.errors:
        return [Issue("error", code, exc.message, [prefix.rstrip(".")] if prefix else [])]
    issues = []
    for error in exc.errors:
        path = expressions.get(error.field.split(".")[0].split("[")[0], "")
        expression = [f"{prefix}{path}".rstrip(".")] if (prefix or path) else []
        issues.append(Issue("error", code, error.message, expression))
    return issues
