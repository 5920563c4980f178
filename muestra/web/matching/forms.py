from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from muestra.integrations.matching import MAX_REASON


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Sample number, tube barcode or patient's document"), max_length=60, required=False, strip=True
    )


class ConfirmForm(forms.Form):
    sample = forms.IntegerField(label=_("Sample number"), min_value=1, widget=forms.HiddenInput)


class DismissForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is this result not yours?"),
        help_text=_("For example: a duplicate of a result already recorded, or a sample of another laboratory."),
        max_length=MAX_REASON,
        strip=True,
    )
