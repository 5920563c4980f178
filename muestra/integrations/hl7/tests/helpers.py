"""Realistic ORU^R01 messages (tests/messages/*.hl7, `$name` placeholders) filled in for the test's samples."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from pathlib import Path
from string import Template
from typing import Any

from django.utils import timezone

from muestra.integrations.hl7 import er7

MESSAGES = Path(__file__).parent / "messages"
_controls = count(1)


def ts(when: datetime) -> str:
    return er7.format_ts(when)


def message(name: str, *, eol: str = "\r", **values: Any) -> bytes:
    values.setdefault("now", ts(timezone.now()))
    values.setdefault("control", f"{next(_controls):06d}")
    values.setdefault("reported", ts(timezone.now()))
    values.setdefault("result_code", "260373001")
    values.setdefault("result_text", "Detected")
    values.setdefault("received", ts(timezone.now()))
    text = Template((MESSAGES / name).read_text(encoding="utf-8")).substitute({k: str(v) for k, v in values.items()})
    return eol.join(line for line in text.splitlines() if line).encode("utf-8") + eol.encode()


def for_sample(sample: Any, *, filler: str = "LIS-0001", **values: Any) -> dict[str, Any]:
    """The placeholders of a message about `sample`: our number as specimen and placer id."""
    base = {
        "specimen": str(sample.number),
        "placer": str(sample.number),
        "filler": filler,
        "document": "12345678-5",
        "collected": ts(sample.collected_at),
    }
    base.update(values)
    return base


def post(client: Any, body: bytes, key: str | None, content_type: str = "x-application/hl7-v2+er7") -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post("/api/v1/hl7", data=body, content_type=content_type, **headers)


def acks(response: Any) -> list[er7.Message]:
    return er7.parse(response.content.decode()).messages


def msa(message: er7.Message) -> tuple[str, str]:
    seg = message.first("MSA")
    assert seg is not None
    return seg.value(1), seg.value(3)
