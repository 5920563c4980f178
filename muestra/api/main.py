"""The REST API, version 1: `api` (a NinjaAPI) and the URL patterns that mount it at /api/v1/.

OpenAPI document at /api/v1/openapi.json, interactive docs at /api/v1/docs. Every operation needs an API key or
a login session (see auth.py); every error, including an unknown path under /api/v1/, comes in one shape (see
errors.py); every write honours Idempotency-Key (see idempotency.py).
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path
from ninja import NinjaAPI

from muestra.api import catalog, facilities, hl7, samples, shipments, uploads
from muestra.api.auth import AUTHENTICATORS
from muestra.api.errors import install_error_handlers, shape_method_not_allowed, unknown_route

DESCRIPTION = """
Muestra's REST API for laboratory information systems, establishments' systems and integrators.

* **Authentication**: `Authorization: Bearer mst_...` or `X-API-Key: mst_...` (an API key bound to one lab or
  one establishment), or a browser login session (send `X-CSRFToken` on writes).
* **Identifiers**: samples and shipments by their public 10-digit `number`; labs by `platform_id`;
  establishments, tests, sample types, results... by their catalogue `code` (see `/catalog/...`).
* **Errors**: always `{"error": {"code", "message", "errors": [{"field", "code", "message"}]}}`; messages follow
  `Accept-Language` (es, en, vi). A record you may not see answers 404, exactly like a missing one.
* **Idempotency**: send `Idempotency-Key: <unique string>` on any POST/PATCH/DELETE; a retry with the same key and
  body replays the first answer (header `Idempotent-Replayed: true`) without writing twice.
* **Pagination**: lists return `{"items", "next_cursor"}`; pass `cursor=<next_cursor>` until it is null.
"""

api = NinjaAPI(
    title="Muestra API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=AUTHENTICATORS,
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install_error_handlers(api)

api.add_router("/samples", samples.router)
api.add_router("/shipments", shipments.router)
api.add_router("/catalog", catalog.router)
api.add_router("/uploads", uploads.router)
api.add_router("/hl7", hl7.router)
api.add_router("/supervision", "muestra.api.supervision.router")
api.add_router("/", facilities.router)

_patterns, _app_name, _namespace = api.urls
for _pattern in _patterns:
    if isinstance(_pattern, URLPattern):
        _pattern.callback = shape_method_not_allowed(_pattern.callback)

urlpatterns: list[URLPattern | URLResolver] = [
    path("", (_patterns, _app_name, _namespace)),
    # Last: anything else under /api/v1/ is an unknown route, answered in the API's error shape.
    re_path(r"^.*$", unknown_route, name="api-v1-unknown"),
]
