"""The Bundle envelope (everything but the entries' resources) is validated once per distinct entry envelope:
the errors must be those fhir.resources gives for the whole envelope at once, each at its own entry."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from muestra.integrations.fhir.ingest import BundleInvalid, _pydantic_issues, _validated_envelope
from muestra.integrations.fhir.outcomes import Issue
from muestra.integrations.fhir.tests.conftest import issues, load_bundle
from muestra.samples.models import Result

REQUESTS = [
    {"method": "POST", "url": "Observation"},
    {"method": "PUT", "url": "Specimen/1"},
    {"method": "GET POST", "url": "Observation"},  # a code may not hold a space
    {"method": "POST"},  # url is required
    {"url": "Observation"},  # method is required
    {"method": "POST", "url": "Observation", "colour": "red"},  # unknown element
    {"method": 7, "url": "Observation"},
]
FULL_URLS = ["urn:uuid:00000000-0000-4000-8000-000000000001", "http://lis.example/Observation/9", "", 42, None]

envelopes = st.builds(
    lambda request, full_url, extra: {
        **({"request": request} if request is not None else {}),
        **({"fullUrl": full_url} if full_url is not None else {}),
        **({"search": {"mode": "nonsense"}} if extra else {}),
    },
    st.one_of(st.none(), st.sampled_from(REQUESTS)),
    st.sampled_from(FULL_URLS),
    st.booleans(),
)


def _issues_of_the_whole_envelope(data: dict[str, Any]) -> list[tuple[str, ...]]:
    """What validating the whole envelope in one `Bundle.model_validate` answers (how it was done before)."""
    shell = {**data, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in data["entry"]]}
    try:
        Bundle.model_validate(shell)
    except ValidationError as exc:
        return sorted(_described(_pydantic_issues(exc.errors(), "Bundle")))
    return []


def _described(found: list[Issue]) -> list[tuple[str, ...]]:
    return [(*issue.expression, issue.severity, issue.code, str(issue.diagnostics)) for issue in found]


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(envelopes, max_size=12),
    kind=st.sampled_from(["batch", "transaction", "nonsense", None]),
    timestamp=st.sampled_from([None, "2026-12-07T10:00:00-03:00", "yesterday"]),
)
def test_envelope_errors_are_those_of_validating_the_whole_envelope_at_once(entries, kind, timestamp):
    data: dict[str, Any] = {"resourceType": "Bundle", "entry": entries}
    if kind is not None:
        data["type"] = kind
    if timestamp is not None:
        data["timestamp"] = timestamp
    expected = _issues_of_the_whole_envelope(data)
    try:
        found = _validated_envelope(data, entries)
    except BundleInvalid as exc:
        # Every error the whole envelope gives, and possibly more: pydantic skips a model's own checks (a missing
        # Bundle.type) once one of its fields failed (an entry), and here the entries are validated apart.
        assert expected and set(expected) <= set(_described(exc.issues))
    else:
        assert expected == [] and found == kind


def test_one_bad_envelope_among_many_identical_ones_is_named_and_nothing_is_recorded(world, fhir, received):
    sample = received()
    bundle = load_bundle("batch_two_results", NUMBER=sample.number, NUMBER_2="1999999999")
    for entry in bundle["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    bundle["entry"][4]["request"] = {"url": "Observation"}  # the method is required
    bundle["entry"][2]["fullUrl"] = 42
    response = fhir("key_lab_x").post(bundle, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    found = issues(response.json())
    assert [issue["expression"] for issue in found] == [["Bundle.entry[2].fullUrl"], ["Bundle.entry[4].request.method"]]
    assert all(issue["severity"] == "error" for issue in found)
    sample.refresh_from_db()
    assert sample.state == "received" and not Result.objects.filter(sample=sample).exists()


@pytest.mark.parametrize("language", ["es", "en"])
def test_envelope_errors_are_in_the_callers_language(world, fhir, language):
    bundle = load_bundle("batch_two_results", NUMBER="1000000001", NUMBER_2="1999999999")
    bundle["entry"][0]["request"] = {"url": "Observation"}
    response = fhir("key_lab_x").post(bundle, headers={"Accept-Language": language})
    assert response.status_code == 400
    (issue,) = issues(response.json())
    assert issue["expression"] == ["Bundle.entry[0].request.method"] and issue["code"] == "required"
    assert (issue["diagnostics"] == "This field is required.") == (language == "en")
