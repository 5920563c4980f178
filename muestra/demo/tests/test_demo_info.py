"""`demo_info`: the demo logins and places, for people (tables) and scripts (--json)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from muestra.demo.world import (
    DEMO_PASSWORD,
    DEMO_PERSONAS,
    ESTABLISHMENT_A,
    ESTABLISHMENT_B,
    ESTABLISHMENT_C,
    ESTABLISHMENT_VN,
    LAB_VN,
    LAB_X,
    LAB_Y,
    PERSONAS,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded() -> None:
    call_command("seed_demo", stdout=StringIO())


def test_json(seeded: None) -> None:
    out, err = StringIO(), StringIO()
    call_command("demo_info", "--json", stdout=out, stderr=err)
    info = json.loads(out.getvalue())
    assert set(info) == {"users", "establishments", "labs"}
    users = {u["username"]: u for u in info["users"]}
    for spec in [*PERSONAS, *DEMO_PERSONAS]:
        user = users[spec.username]
        assert set(user) == {"username", "password", "role", "national_id"}
        assert user["role"] == (spec.role or "citizen")
        assert user["national_id"] == spec.national_id
        assert user["password"] == DEMO_PASSWORD
    assert users["citizen"]["role"] == "citizen"
    assert info["labs"] == [
        {"id": LAB_X[0], "name": LAB_X[1]},
        {"id": LAB_Y[0], "name": LAB_Y[1]},
        {"id": LAB_VN[0], "name": LAB_VN[1]},
    ]
    establishments = {e["code"]: e for e in info["establishments"]}
    assert establishments[ESTABLISHMENT_A[0]] == {"code": "113100", "name": ESTABLISHMENT_A[1], "labs": [LAB_X[0]]}
    assert establishments[ESTABLISHMENT_B[0]]["labs"] == [LAB_X[0], LAB_Y[0]]
    assert establishments[ESTABLISHMENT_C[0]]["labs"] == [LAB_X[0]]
    assert establishments[ESTABLISHMENT_VN[0]]["labs"] == [LAB_VN[0]]
    assert "DEMO ONLY" in err.getvalue()  # said, but kept off stdout so scripts can parse it


def test_tables(seeded: None) -> None:
    out = StringIO()
    call_command("demo_info", stdout=out)
    text = out.getvalue()
    assert "DEMO ONLY" in text
    for spec in [*PERSONAS, *DEMO_PERSONAS]:
        assert spec.username in text
        assert spec.national_id in text
    assert DEMO_PASSWORD in text
    assert ESTABLISHMENT_VN[1] in text
    assert str(LAB_Y[0]) in text


def test_without_demo_data() -> None:
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("demo_info", stdout=StringIO())
