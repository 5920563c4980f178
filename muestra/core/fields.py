"""Model fields shared by several apps."""

from __future__ import annotations

from typing import Any

from django.db import models


class BulkJSONField(models.JSONField):  # type: ignore[type-arg]
    """A JSONField that PostgreSQL bulk inserts as plain VALUES rows instead of UNNEST arrays.

    Django 5.2 bulk-inserts on PostgreSQL by sending one array per column (`INSERT … SELECT * FROM UNNEST(…)`).
    Inside an array every JSON text is escaped once more by the driver, character by character: for the tables
    written by the thousand (events, intake items, outbound snapshots) that escaping cost more than the insert
    itself. A field with its own placeholder makes Django fall back to a multi-row VALUES insert.
    """

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        return "%s"
