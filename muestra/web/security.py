"""Security headers on every response: Content-Security-Policy, Permissions-Policy, Cross-Origin-Opener-Policy.

Our pages load scripts and styles only from our own origin (no inline `<script>`, no `style=` attributes, no
`on*=` handlers), so the policy can forbid everything inline, which is what makes an injected script inert.

The Django admin (`/admin/` only) needs one relaxation: `style-src 'unsafe-inline'`. Its templates write `style`
attributes (e.g. the hidden "select all" counter of the change list, the calendar and clock pop-ups' positions,
the dark-mode toggle's icons) and select2 (autocomplete fields) inserts inline styles. Inline *styles* cannot run
code; scripts stay `'self'` only, since the admin's JavaScript comes from static files. `img-src data:` is already
allowed everywhere (icons drawn as data URIs).

The rest of the headers (HSTS, nosniff, Referrer-Policy, X-Frame-Options) come from Django's settings.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
ADMIN_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

#: The camera is used by our own pages (scanning tube barcodes); the sensitive features below are never needed.
#: Autoplay is left alone: the scan confirmation beep uses WebAudio, which the autoplay policy governs.
PERMISSIONS_POLICY = ", ".join(
    [
        "camera=(self)",
        *(
            f"{feature}=()"
            for feature in (
                "accelerometer",
                "display-capture",
                "geolocation",
                "gyroscope",
                "hid",
                "magnetometer",
                "microphone",
                "midi",
                "payment",
                "publickey-credentials-get",
                "screen-wake-lock",
                "serial",
                "usb",
                "xr-spatial-tracking",
            )
        ),
    ]
)


def _admin_prefix() -> str:
    return "/" + str(getattr(settings, "MUESTRA_ADMIN_PATH", "admin/")).strip("/") + "/"


class SecurityHeadersMiddleware:
    """Adds the headers unless a view set its own (a view may need a narrower or different policy)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.admin_prefix = _admin_prefix()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = (
            ADMIN_CONTENT_SECURITY_POLICY if request.path.startswith(self.admin_prefix) else CONTENT_SECURITY_POLICY
        )
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response
