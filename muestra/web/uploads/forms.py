from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from muestra.integrations.bulk.templates import Kind


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of file"), widget=forms.RadioSelect)
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV (separated by ; , or tabs) or Excel (XLSX), with the template's header row."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,.xlsx"}),
    )

    def __init__(self, *args: Any, kinds: list[Kind], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["kind"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(k.code, k.label) for k in kinds]
        if len(kinds) == 1:
            field.initial = kinds[0].code
