"""`field__in_array=[...]`: `IN`, sent on PostgreSQL as one array parameter (`= ANY(%s)`).

Django writes `field__in=[...]` as `IN (%s, %s, …)`, one placeholder per value. For the batch paths, which look up
hundreds of samples at once, that statement is different for every list length, so it is never prepared, and
psycopg scans its text for placeholders on every call (a tenth of an HL7 batch's time went there). With one array
parameter the statement text is the same for any number of values. Elsewhere it is Django's own `IN`.

Only for columns whose values are plain numbers or text, and not where a partial index's condition must be read off
the values (PostgreSQL proves `col IS NOT NULL` from `= ANY`, nothing else).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject
from django.db.models.lookups import In


class InArray(In):
    lookup_name = "in_array"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if connection.vendor != "postgresql" or not self.rhs_is_direct_value():
            sql, params = super().as_sql(compiler, connection)
            return sql, list(params)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        # NULL is never equal to anything, as with IN.
        prepared = dict.fromkeys(v for v in self.rhs if v is not None)
        values = [field.get_db_prep_value(v, connection, prepared=True) for v in prepared]
        if not values:
            raise EmptyResultSet
        return f"{lhs} = ANY(%s)", [*lhs_params, values]


Field.register_lookup(InArray)
# Relations keep their own look-up table (Django does not inherit Field's there): `lab_id__in_array` needs this too.
ForeignObject.register_lookup(InArray)
