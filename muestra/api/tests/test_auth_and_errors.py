"""Authentication (API key in two headers, session with CSRF), the one error shape, translated validation
messages, unknown routes, and the OpenAPI document."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from django.test import Client
from django.utils import timezone

from conftest import login_with_second_factor
from muestra.accounts.models import ApiKey
from muestra.accounts.scoping import SYSTEM
from muestra.accounts.services import api_key_issue, api_key_revoke
from muestra.api.tests.support import API, error_of, fields_of, sample_body, to_json
from muestra.samples.models import Sample

pytestmark = pytest.mark.django_db


# --- authentication ---------------------------------------------------------------------------------------------


def test_no_credentials_is_401_in_the_error_shape(world):
    response = Client().get(f"{API}/samples")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_anonymous_write_is_401_not_a_csrf_error(world):
    response = Client().post(f"{API}/samples", "{}", content_type="application/json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_api_key_in_either_header(world, header):
    key = world.keys["lab_x"]
    value = f"Bearer {key}" if header == "Authorization" else key
    response = Client().get(f"{API}/samples", headers={header: value})
    assert response.status_code == 200


@pytest.mark.parametrize("value", ["Bearer mst_nope_nope", "Bearer not-a-key", "Basic dXNlcjpwYXNz"])
def test_wrong_key_is_401(world, value):
    response = Client().get(f"{API}/samples", headers={"Authorization": value})
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_revoked_key_is_401(world):
    key = ApiKey.objects.get(name="LIS X")
    api_key_revoke(actor=SYSTEM, api_key_id=key.pk)
    response = Client().get(f"{API}/samples", headers={"Authorization": f"Bearer {world.keys['lab_x']}"})
    assert response.status_code == 401


def test_keys_whose_secret_contains_underscores_authenticate(world):
    # The secret is token_urlsafe, whose alphabet includes "_": about half of all keys contain one.
    for _attempt in range(30):
        _key, secret = api_key_issue(actor=SYSTEM, name="LIS", laboratory=world.lab_x)
        if secret.count("_") > 2:
            break
    else:  # pragma: no cover - astronomically unlikely
        pytest.skip("no key with an underscore in its secret was drawn")
    response = Client().get(f"{API}/samples", headers={"X-API-Key": secret})
    assert response.status_code == 200


def test_session_auth_enforces_csrf_on_writes(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["taker_a"])
    assert client.get(f"{API}/samples").status_code == 200  # safe methods need no token
    body = to_json(sample_body())
    response = client.post(f"{API}/samples", body, content_type="application/json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "csrf_failed"
    assert not Sample.objects.exists()
    client.get("/admin/login/")  # any page that sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(f"{API}/samples", body, content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code == 201, response.content


def test_api_key_needs_no_csrf_even_with_a_browser_session(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["taker_a"])
    response = client.post(
        f"{API}/samples",
        to_json(sample_body()),
        content_type="application/json",
        headers={"Authorization": f"Bearer {world.keys['est_a']}"},
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("persona", ["lab_x", "viewer_rm", "admin"])
def test_a_session_without_the_required_second_factor_reaches_no_data(world, persona):
    # Signed in with the password only: the staff pages send such a session to the authenticator first, and the
    # API must not serve it either (reads included: they are the personal data the second factor protects).
    client = Client()
    client.force_login(world.users[persona])
    response = client.get(f"{API}/samples")
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert "segundo factor" in error_of(response)["message"]  # Spanish, the default language
    verified = login_with_second_factor(Client(), world.users[persona])
    assert verified.get(f"{API}/samples").status_code == 200


def test_roles_without_a_second_factor_use_their_session_as_before(world):
    client = Client()
    client.force_login(world.users["taker_a"])  # sample takers sign in with a password only
    assert client.get(f"{API}/samples").status_code == 200


def test_inactive_user_session_is_401(world):
    user = world.users["taker_a"]
    client = Client()
    client.force_login(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get(f"{API}/samples").status_code == 401


@pytest.mark.parametrize("persona", ["viewer_rm", "citizen"])
def test_read_only_roles_get_403_on_every_write_before_any_lookup(api, persona):
    client = api(persona)
    for method, path in [
        ("post", "/samples"),
        ("post", "/samples/batch"),
        ("post", "/samples/9999999999/receive"),  # a number that does not exist: still 403, not 404
        ("patch", "/samples/9999999999"),
        ("delete", "/shipments/9999999999/samples/9999999998"),
        ("post", "/shipments"),
    ]:
        if method == "post":
            response = client.post(path, {})
        elif method == "patch":
            response = client.patch(path, {})
        else:
            response = client.delete(path)
        assert response.status_code == 403, (path, response.content)
        assert error_of(response)["code"] == "forbidden"


def test_citizen_sees_nothing(api, make_sample):
    sample = make_sample("result")
    client = api("citizen")
    page = client.get("/samples").json()
    assert page == {"items": [], "next_cursor": None}
    assert client.get(f"/samples/{sample.number}").status_code == 404
    assert client.get("/laboratories").json() == []
    assert client.get("/establishments").json() == []
    assert client.get("/shipments").json() == {"items": [], "next_cursor": None}
    assert client.get("/catalog/diseases").status_code == 200  # reference data is for every authenticated caller


# --- the error shape ------------------------------------------------------------------------------------------


def test_missing_field_names_it(api):
    body = sample_body()
    del body["test"]
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert fields_of(response) == {"test": "required"}


def test_missing_nested_field_is_named_by_its_path(api):
    body = sample_body()
    del body["patient"]["birth_date"]
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 422
    assert fields_of(response) == {"patient.birth_date": "required"}


def test_every_problem_of_an_item_at_once(api):
    body = sample_body(test="no-such-test", establishment="000000")
    del body["patient"]["given_names"]
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 422
    fields = fields_of(response)
    assert fields["test"] == "unknown_code"
    assert fields["establishment"] == "unknown_code"
    assert fields["patient.given_names"] == "required"
    assert not Sample.objects.exists()


def test_malformed_dates(api):
    body = sample_body(collected_at="yesterday")
    body["patient"]["birth_date"] = "1985-13-45"
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 422
    assert fields_of(response) == {"collected_at": "invalid_datetime", "patient.birth_date": "invalid_date"}


def test_wrong_types(api):
    body = sample_body(laboratory="lab-x", patient="Ana", pool_members="many", active_case_finding="perhaps")
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 422
    assert fields_of(response) == {
        "laboratory": "invalid_integer",
        "patient": "invalid_type",
        "pool_members": "invalid_type",
        "active_case_finding": "invalid_boolean",
    }


def test_text_longer_than_its_column_is_named(api):
    body = sample_body(tube_code="T" * 61)
    body["patient"]["given_names"] = "A" * 121
    response = api("taker_a").post("/samples", body, headers={"Accept-Language": "en"})
    assert response.status_code == 422
    assert fields_of(response) == {"tube_code": "too_long", "patient.given_names": "too_long"}
    messages = {e["field"]: e["message"] for e in error_of(response)["errors"]}
    assert "120" in messages["patient.given_names"]


def test_unknown_field_is_refused(api):
    body = sample_body()
    body["patient"]["birthdate"] = "1985-01-01"
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 422
    assert fields_of(response) == {"patient.birthdate": "unknown_field"}


def test_numbers_are_accepted_for_codes(api):
    body = sample_body(establishment=113100, laboratory="1000000001")
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 201, response.content


def test_invalid_json(api):
    client = api("taker_a")
    response = client.client.post(f"{API}/samples", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_wrong_query_parameter_types(api):
    response = api("taker_a").get("/samples", {"limit": "many", "collected_from": "last week", "state": "lost"})
    assert response.status_code == 422
    assert fields_of(response) == {
        "limit": "invalid_integer",
        "collected_from": "invalid_datetime",
        "state": "invalid_choice",
    }


@pytest.mark.parametrize(
    ("language", "message"),
    [("es", "Este campo es obligatorio."), ("en", "This field is required."), ("vi", None)],
)
def test_validation_messages_follow_accept_language(api, language, message):
    body = sample_body()
    del body["sample_type"]
    response = api("taker_a").post("/samples", body, headers={"Accept-Language": language})
    error = error_of(response)
    text = error["errors"][0]["message"]
    if message is None:  # Vietnamese: Django's own catalogue translates it
        assert text not in {"This field is required.", "Este campo es obligatorio."}
    else:
        assert text == message


def test_spanish_is_the_default_language(api):
    body = sample_body()
    del body["sample_type"]
    response = api("taker_a").post("/samples", body)
    assert error_of(response)["errors"][0]["message"] == "Este campo es obligatorio."


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_route_is_404_in_the_error_shape(api, method):
    client = api("key_lab_x")
    response = getattr(client.client, method)(f"{API}/no/such/thing", headers=client.headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_wrong_method_on_a_known_path_is_405_in_the_error_shape(api):
    client = api("taker_a")
    response = client.client.put(f"{API}/samples", "{}", content_type="application/json")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_non_numeric_sample_number_is_an_unknown_route(api):
    response = api("taker_a").get("/samples/ABC")
    assert response.status_code == 404
    error_of(response)


def test_out_of_scope_is_exactly_like_missing(api, make_sample):
    sample = make_sample()
    client = api("taker_b")
    hidden = client.get(f"/samples/{sample.number}")
    missing = client.get("/samples/9999999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    # And for writes, where the service finds nothing in scope either:
    hidden = client.post(f"/samples/{sample.number}/cancel", {"reason": "x"})
    missing = client.post("/samples/9999999999/cancel", {"reason": "x"})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


# --- OpenAPI ----------------------------------------------------------------------------------------------------


def test_openapi_document_is_served_and_valid_json(world):
    response = Client().get(f"{API}/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in [
        "/api/v1/samples",
        "/api/v1/samples/batch",
        "/api/v1/samples/{number}",
        "/api/v1/samples/{number}/result",
        "/api/v1/shipments/{number}/receive",
        "/api/v1/catalog/tests",
        "/api/v1/establishments",
    ]:
        assert path in paths
    schemes = document["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} >= {"http", "apiKey"}
    result_body = paths["/api/v1/samples/{number}/result"]["post"]["requestBody"]["content"]
    assert set(result_body) == {"multipart/form-data", "application/json"}
    batch = document["components"]["schemas"]["SampleBatchIn"]
    assert batch["properties"]["items"]["items"] == {"$ref": "#/components/schemas/SampleIn"}


def test_interactive_docs_are_served(api):
    response = api("taker_a").client.get(f"{API}/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content


def test_timestamps_are_iso_8601_utc(api):
    response = api("taker_a").post("/samples", sample_body())
    created_at = response.json()["created_at"]
    assert created_at.endswith("Z")
    parsed = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    assert abs((timezone.now() - parsed).total_seconds()) < 60
