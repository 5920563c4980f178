"""Schema operations that migrations share (imported by them, so keep their behaviour stable)."""

from __future__ import annotations

import copy
from typing import Any

from django.db import migrations


class AlterFieldIndexes(migrations.AlterField):
    """An AlterField that only adds or drops the field's own indexes.

    On PostgreSQL, Django's AlterField of a foreign key also drops the key's constraint and adds it back, which
    re-checks every row of the table under a lock that blocks writes. The constraint does not change here, so it is
    left alone; elsewhere (SQLite rebuilds the table anyway) this is the plain AlterField.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        to_model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, to_model):
            return
        from_model = from_state.apps.get_model(app_label, self.model_name)
        schema_editor.alter_field(
            from_model,
            _constraint_untouched(from_model._meta.get_field(self.name)),
            _constraint_untouched(to_model._meta.get_field(self.name)),
        )


def _constraint_untouched(field: Any) -> Any:
    """The field as the schema editor sees it: a key without constraint has no constraint to drop or add."""
    if field.remote_field is None:
        return field
    clone = copy.copy(field)
    clone.db_constraint = False
    return clone
