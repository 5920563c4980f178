"""The fix forms of a failed item: a file row's fields, or the raw HL7 message / FHIR Bundle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

#: Longest value accepted in one field of a fixed row (a file cell).
MAX_CELL = 1000
#: Largest corrected message or Bundle pasted in the page.
MAX_CONTENT = 2 * 1024 * 1024


class RowFixForm(forms.Form):
    """One field per column of the stored row, named as in the file; the fields with errors first."""

    def __init__(self, *args: Any, row: dict[str, Any], error_fields: Iterable[str], **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "row")
        super().__init__(*args, **kwargs)
        wrong = [name for name in error_fields if name in row]
        self.error_fields = set(wrong)
        for name in [*dict.fromkeys(wrong), *(n for n in row if n not in self.error_fields)]:
            self.fields[name] = forms.CharField(
                label=name, required=False, max_length=MAX_CELL, initial=str(row.get(name) or "")
            )

    def wrong_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name in self.error_fields]

    def other_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in self.error_fields]


class ContentFixForm(forms.Form):
    content = forms.CharField(
        label=_("Corrected content"),
        max_length=MAX_CONTENT,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "autocapitalize": "off", "class": "raw"}),
    )
