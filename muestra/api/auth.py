"""Who is calling: an API key (a lab's LIS or an establishment's system) or a logged-in person (session).

Each authenticator returns the request's `Actor` (and attaches it as `request.actor`); ninja tries them in order
and answers 401 in the API's error shape when none succeeds. API keys come first: a LIS sends no cookie, and a
browser tab that also holds a key (the interactive docs) should act as the key.

Session auth is ninja's SessionAuth made explicit: CSRF is enforced for unsafe methods (a session cookie is sent
by the browser on its own, an API key is not), and only for callers that are actually logged in, so an anonymous
POST gets 401 rather than a confusing CSRF 403.

A session counts only once the second factor its role requires is verified, as on the staff pages.

Roles that may only read (an authority viewer, or a person with no staff role at all, like a citizen) are refused
every unsafe method with 403 here, before any record is looked up: the answer then never depends on whether the
record exists, and the services' own role checks stay the last line of defence.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, APIKeyHeader, HttpBearer
from ninja.utils import check_csrf

from muestra.accounts.models import API_KEY_PREFIX, User
from muestra.accounts.scoping import ANONYMOUS, Actor, actor_for_api_key, actor_for_user
from muestra.accounts.services import api_key_authenticate, two_factor_required_for
from muestra.core.errors import PermissionDenied
from muestra.samples.services import may_write

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _attach(request: HttpRequest, actor: Actor) -> Actor:
    if request.method not in SAFE_METHODS and not may_write(actor):
        raise PermissionDenied(_("Your role may read but not change samples."))
    request.actor = actor  # type: ignore[attr-defined]
    return actor


def _actor_for_key(request: HttpRequest, raw_key: str | None) -> Actor | None:
    if not raw_key or not raw_key.strip().startswith(f"{API_KEY_PREFIX}_"):
        return None
    key = api_key_authenticate(raw_key)
    if key is None:
        return None
    return _attach(request, actor_for_api_key(key))


class BearerApiKey(HttpBearer):
    """`Authorization: Bearer mst_...`"""

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        return _actor_for_key(request, token)


class HeaderApiKey(APIKeyHeader):
    """`X-API-Key: mst_...` for clients that cannot set Authorization."""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> Actor | None:
        return _actor_for_key(request, key)


class SessionActor(APIKeyCookie):
    """Django's login session, with CSRF for unsafe methods as ninja's SessionAuth does."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest) -> Actor | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, "CSRF check failed")
        return self.authenticate(request, request.COOKIES.get(self.param_name))

    def authenticate(self, request: HttpRequest, key: str | None) -> Actor | None:
        user = cast(User, request.user)
        actor = actor_for_user(user)
        if actor is ANONYMOUS:  # an inactive user keeps a session cookie until it expires
            return None
        # The same gate as the staff pages (web/access.py): a session that has passed the password but not yet
        # the second factor its role requires must not reach the data through the API instead.
        is_verified = getattr(user, "is_verified", None)  # set by django-otp's middleware
        if two_factor_required_for(actor) and not (callable(is_verified) and is_verified()):
            raise PermissionDenied(
                _("Your role requires a second factor: verify it in the web application before using this session.")
            )
        return _attach(request, actor)


#: In the order they are tried.
AUTHENTICATORS: list[Any] = [BearerApiKey(), HeaderApiKey(), SessionActor()]


def authenticate(request: HttpRequest) -> Actor | None:
    """The caller by the same authenticators as the REST API, for endpoints that answer a missing or wrong
    credential in their own format (HL7 ACKs, FHIR OperationOutcomes) instead of ninja's: None when nobody is
    signed in. Raises what the authenticators raise (a read-only role posting, a session without its CSRF token)."""
    for authenticator in AUTHENTICATORS:
        actor = authenticator(request)
        if isinstance(actor, Actor):
            return actor
    return None


def actor_of(request: HttpRequest) -> Actor:
    """The caller of an authenticated endpoint (set by the authenticators above)."""
    actor = getattr(request, "actor", None)
    if not isinstance(actor, Actor):  # only reachable from an endpoint declared with auth=None
        raise PermissionDenied(_("Authentication required."))
    return actor
