"""Typed readers for settings taken from environment variables.

Each helper fails loudly (ImproperlyConfigured) on a malformed value instead of silently falling back,
so a typo in production configuration stops the process at start-up rather than weakening it.
"""

from __future__ import annotations

import os
from typing import TypedDict

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"The environment variable {name} is required.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


class DomainRules(TypedDict):
    """The typed shape of settings.MUESTRA (domain rules that an operator may tune)."""

    MAX_COLLECTION_AGE_DAYS: int
    FUTURE_TOLERANCE_MINUTES: int
    CORRECTION_WINDOW_DAYS: int
    MAX_REPORT_BYTES: int
    LAB_TARGET_HOURS: int
    MAX_BATCH_ITEMS: int
    UPLOAD_PARTS: int
    UPLOAD_PART_MIN_ROWS: int
    DEFAULT_COUNTRY: str


class OutboundRules(TypedDict):
    """The typed shape of settings.MUESTRA_OUTBOUND (delivery of sample events to other systems)."""

    TIMEOUT_SECONDS: int
    RETRY_BASE_SECONDS: int
    RETRY_CAP_SECONDS: int
    MAX_ATTEMPTS: int
    BATCH_SIZE: int
    SWEEP_SECONDS: int
    SUBSCRIPTION_CACHE_SECONDS: int
