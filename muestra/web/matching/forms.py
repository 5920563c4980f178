from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Sample number, tube barcode or patient's document"), max_length=60, required=False, strip=True
    )


class ConfirmForm(forms.Form):
    sample = forms.IntegerField(label=_("Sample number"), min_value=1, widget=forms.HiddenInput)
