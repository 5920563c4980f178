"""Helpers for the REST API tests: an HTTP client per persona, JSON bodies built from the demo builders, samples
driven to any state through the real services, and checks of the error shape. The fixtures are exported to the
tests by conftest.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import pytest
from django.test import Client

from conftest import login_with_second_factor
from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples.inputs import SampleInput
from muestra.samples.models import Sample

API = "/api/v1"

#: Personas logged in with a session; the others authenticate with an API key.
SESSION_PERSONAS = {"taker_a", "taker_b", "manager_a", "lab_x", "lab_y", "viewer_rm", "admin", "citizen"}
KEY_PERSONAS = {"key_lab_x": "lab_x", "key_lab_y": "lab_y", "key_est_a": "est_a"}


class ApiClient:
    """A django test Client bound to one caller, speaking JSON."""

    def __init__(self, client: Client, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers or {}

    def _h(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**self.headers, **(extra or {})}

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(API + path, params or {}, headers=self._h(headers))

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        data = json.dumps(body, default=_json_default) if body is not None else ""
        return self.client.post(API + path, data, content_type="application/json", headers=self._h(headers))

    def post_multipart(self, path: str, data: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post(API + path, data, headers=self._h(headers))

    def patch(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        data = json.dumps(body, default=_json_default)
        return self.client.patch(API + path, data, content_type="application/json", headers=self._h(headers))

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.delete(API + path, headers=self._h(headers))


def to_json(body: Any) -> str:
    return json.dumps(body, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value))


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    # The root conftest asks for a fast hasher after the settings were imported; without this every `world` build
    # hashes eight passwords with Argon2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api(world: Any) -> Callable[[str], ApiClient]:
    """api("taker_a") -> a client logged in as that persona; api("key_lab_x") -> one using lab X's API key."""

    def make(persona: str) -> ApiClient:
        if persona in KEY_PERSONAS:
            return ApiClient(Client(), {"Authorization": f"Bearer {world.keys[KEY_PERSONAS[persona]]}"})
        # As a person signs in to the web application: with the second factor when the role requires one.
        return ApiClient(login_with_second_factor(Client(), world.users[persona]))

    return make


def sample_body(data: SampleInput | None = None, **overrides: Any) -> dict[str, Any]:
    """The JSON body of POST /samples for a valid demo sample (`overrides` replace top-level keys)."""
    data = data or sample_input()
    body = asdict(data)
    body = {k: v for k, v in body.items() if v not in (None, "") or k in {"laboratory"}}
    body.pop("answers", None)
    if body.get("patient"):
        body["patient"] = {k: v for k, v in body["patient"].items() if v not in (None, "")}
    body.update(overrides)
    return body


@pytest.fixture
def make_sample(world: Any) -> Callable[..., Sample]:
    """make_sample("received") -> a sample of establishment A for lab X in that state, through the services."""

    def make(state: str = "registered", *, taker: str = "taker_a", lab: str = "lab_x", **kwargs: Any) -> Sample:
        return sample_in_state(state, taker=world.actors[taker], lab=world.actors[lab], **kwargs)

    return make


def error_of(response: Any) -> dict[str, Any]:
    """The `error` object of an error response, checking the one shape on the way."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "errors"}, body
    for item in body["error"]["errors"]:
        assert set(item) == {"field", "code", "message"}, item
    return body["error"]  # type: ignore[no-any-return]


def fields_of(response: Any) -> dict[str, str]:
    """{field: code} of an error response."""
    return {e["field"]: e["code"] for e in error_of(response)["errors"]}
