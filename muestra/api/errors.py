"""The one error shape of /api/v1, for every failure the API can produce:

    {"error": {"code": "...", "message": "...", "errors": [{"field": "...", "code": "...", "message": "..."}]}}

Domain errors keep their own status, code and field errors (`muestra.core.errors`). Ninja's request validation
(pydantic) is rewritten into the same shape: field paths as the services name them (`patient.birth_date`,
`items[3].collected_at`), stable codes (`required`, `invalid_date`...) and messages in the caller's language.
Pydantic's own messages are English only, so each error type maps to a translated message; where Django already
ships the sentence ("This field is required.") the same msgid is reused, which brings its Spanish and Vietnamese
translations along.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.renderers import JSONRenderer

from muestra.core.errors import DomainError, FieldError

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger(__name__)

_renderer = JSONRenderer()
JSON_CONTENT_TYPE = f"{_renderer.media_type}; charset={_renderer.charset}"

#: Ninja's parameter sources: the first item of a pydantic error location, not part of the field path.
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}
#: Names the API gives to whole-body parameters; they wrap the payload and are not part of the field path.
BODY_PARAM_NAMES = {"payload", "filters"}


def render_json(request: HttpRequest | None, data: Any, status: int) -> HttpResponse:
    """Serialises `data` exactly as ninja does for its own responses (same encoder, same content type)."""
    content = _renderer.render(request, data, response_status=status)  # type: ignore[arg-type]
    return HttpResponse(content, status=status, content_type=JSON_CONTENT_TYPE)


def error_body(code: str, message: str | Promise, errors: Iterable[FieldError] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": str(message), "errors": [e.as_dict() for e in errors]}}


def error_response(
    request: HttpRequest | None,
    status: int,
    code: str,
    message: str | Promise,
    errors: Iterable[FieldError] = (),
) -> HttpResponse:
    return render_json(request, error_body(code, message, errors), status)


def domain_error_response(request: HttpRequest | None, exc: DomainError) -> HttpResponse:
    return render_json(request, {"error": exc.as_dict()}, exc.status)


# --- pydantic / ninja validation errors -----------------------------------------------------------------------


def field_path(loc: Sequence[str | int], *, strip_source: bool = True) -> str:
    """("body", "payload", "items", 3, "patient", "birth_date") -> "items[3].patient.birth_date"."""
    parts = list(loc)
    if strip_source and parts and parts[0] in _SOURCES:
        parts = parts[1:]
    if parts and parts[0] in BODY_PARAM_NAMES:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith("function-") or str(part).startswith("union["):
            continue  # pydantic's internal validator names inside a location are not fields
        else:
            path += f".{part}" if path else str(part)
    return path


def _ctx(error: Mapping[str, Any], name: str, default: Any = "") -> Any:
    return (error.get("ctx") or {}).get(name, default)


def translate_pydantic_error(error: Mapping[str, Any]) -> tuple[str, str | Promise]:
    """(code, message in the active language) for one pydantic error."""
    kind = str(error.get("type", ""))
    if kind == "missing" or kind.endswith(".missing"):  # fhir.resources: `model_field_validation.missing`
        return "required", _("This field is required.")
    if kind.startswith("date") and not kind.startswith("datetime"):
        return "invalid_date", _("Enter a valid date.")
    if kind.startswith("datetime") or kind in {"timezone_aware", "timezone_naive"}:
        return "invalid_datetime", _("Enter a valid date/time.")
    if kind.startswith("int_"):
        return "invalid_integer", _("Enter a whole number.")
    if kind.startswith(("float_", "decimal_")):
        return "invalid_number", _("Enter a number.")
    # Ninja drops the offending input from its errors; Django's sentences that quote it are used only when it is
    # there (errors of bodies parsed by hand), shorter ones otherwise.
    has_input = "input" in error
    if kind.startswith("bool_"):
        if has_input:
            return "invalid_boolean", _("“%(value)s” value must be either True or False.") % {
                "value": str(error["input"])[:40]
            }
        return "invalid_boolean", _("Enter true or false.")
    if kind in {"string_too_long", "string_too_short"}:
        code, name = ("too_long", "max_length") if kind == "string_too_long" else ("too_short", "min_length")
        limit = int(_ctx(error, name, 0))
        if not has_input:
            message = (
                _("Ensure this value has at most %(limit_value)d characters.")
                if code == "too_long"
                else _("Ensure this value has at least %(limit_value)d characters.")
            )
            return code, message % {"limit_value": limit}
        values = {"limit_value": limit, "show_value": len(str(error["input"]))}
        if code == "too_long":
            return code, ngettext(
                "Ensure this value has at most %(limit_value)d character (it has %(show_value)d).",
                "Ensure this value has at most %(limit_value)d characters (it has %(show_value)d).",
                limit,
            ) % values
        return code, ngettext(
            "Ensure this value has at least %(limit_value)d character (it has %(show_value)d).",
            "Ensure this value has at least %(limit_value)d characters (it has %(show_value)d).",
            limit,
        ) % values
    if kind == "too_long":
        return "too_many_items", _("At most %(max)s items are allowed.") % {"max": _ctx(error, "max_length")}
    if kind == "too_short":
        return "too_few_items", _("At least %(min)s items are required.") % {"min": _ctx(error, "min_length")}
    if kind in {"greater_than_equal", "greater_than"}:
        limit = _ctx(error, "ge", _ctx(error, "gt"))
        return "out_of_range", _("Ensure this value is greater than or equal to %(limit_value)s.") % {
            "limit_value": limit
        }
    if kind in {"less_than_equal", "less_than"}:
        limit = _ctx(error, "le", _ctx(error, "lt"))
        return "out_of_range", _("Ensure this value is less than or equal to %(limit_value)s.") % {"limit_value": limit}
    if kind in {"literal_error", "enum"}:
        if has_input:
            return "invalid_choice", _("Select a valid choice. %(value)s is not one of the available choices.") % {
                "value": str(error["input"])[:60]
            }
        return "invalid_choice", _("Select one of: %(choices)s.") % {"choices": _ctx(error, "expected")}
    if kind == "list_type":
        return "invalid_type", _("Enter a list of values.")
    if kind in {"json_invalid", "json_type"}:
        return "invalid_json", _("Enter a valid JSON.")
    if kind == "extra_forbidden":
        return "unknown_field", _("This field is not part of the request; check its spelling.")
    if kind in {"string_type", "dict_type", "model_type", "model_attributes_type", "dataclass_type"}:
        return "invalid_type", _("Enter a valid value.")
    if kind == "value_error" or kind.startswith("muestra_"):
        # Our own validators raise PydanticCustomError("muestra_<code>", <translated message>).
        return kind.removeprefix("muestra_") if kind != "value_error" else "invalid", str(error.get("msg", ""))
    return "invalid", _("Enter a valid value.")


def field_errors_from_pydantic(errors: Iterable[Mapping[str, Any]], *, strip_source: bool = True) -> list[FieldError]:
    result = []
    for error in errors:
        code, message = translate_pydantic_error(error)
        result.append(FieldError(field_path(error.get("loc", ()), strip_source=strip_source), code, message))
    return result


def validation_failed_response(request: HttpRequest | None, errors: list[FieldError]) -> HttpResponse:
    return error_response(
        request,
        422,
        "validation_error",
        errors[0].message if len(errors) == 1 else _("Some fields are invalid."),
        errors,
    )


# --- handlers -------------------------------------------------------------------------------------------------


def _on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return domain_error_response(request, exc)


def _on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return validation_failed_response(request, field_errors_from_pydantic(exc.errors))


def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    status = exc.status_code
    if isinstance(exc, AuthenticationError) or status == 401:
        response = error_response(
            request,
            401,
            "not_authenticated",
            _("Authentication required: send an API key (Authorization: Bearer mst_... or X-API-Key) or log in."),
        )
        response["WWW-Authenticate"] = 'Bearer realm="muestra"'
        return response
    if status == 403 and "csrf" in str(exc).casefold():
        return error_response(
            request, 403, "csrf_failed", _("CSRF check failed: send the X-CSRFToken header with session auth.")
        )
    if isinstance(exc, Throttled):
        return error_response(request, 429, "throttled", _("Too many requests; try again later."))
    if status == 400 and str(exc).startswith("Cannot parse request body"):
        return error_response(request, 400, "invalid_json", _("Enter a valid JSON."))
    if status == 404:
        return not_found_response(request)
    return error_response(request, status, "http_error", str(exc))


def not_found_response(request: HttpRequest | None) -> HttpResponse:
    return error_response(request, 404, "not_found", _("Not found."))


def _on_http404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return not_found_response(request)


def _on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Logged with its traceback (never the request body: it carries personal data); the caller gets the shape.
    logger.exception("Unhandled error in %s %s", request.method, request.path)
    if settings.DEBUG:
        raise exc
    return error_response(request, 500, "server_error", _("Internal error; it has been logged."))


def install_error_handlers(api: NinjaAPI) -> None:
    # Through the decorator form: add_exception_handler's annotations do not accept a handler typed for one class.
    api.exception_handler(DomainError)(_on_domain_error)
    api.exception_handler(ValidationError)(_on_validation_error)
    api.exception_handler(HttpError)(_on_http_error)
    api.exception_handler(Http404)(_on_http404)
    api.exception_handler(Exception)(_on_unexpected)


def shape_method_not_allowed(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Wraps a URL pattern's view so ninja's plain-text 405 (known path, wrong method) comes in the error shape."""

    @functools.wraps(view)  # keeps ninja's csrf_exempt marker
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            shaped = error_response(
                request,
                405,
                "method_not_allowed",
                _("Method %(method)s is not allowed here.") % {"method": request.method},
            )
            shaped["Allow"] = response["Allow"]
            return shaped
        return response

    return wrapped


@csrf_exempt  # an unknown path answers 404 to every method; Django's CSRF 403 page would hide that
def unknown_route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Catch-all view mounted after the API's routes: unknown paths under /api/v1/ answer in the error shape."""
    return not_found_response(request)
