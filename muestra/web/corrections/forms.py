"""The national administrator's decision on a late-correction request."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class DecisionForm(forms.Form):
    note = forms.CharField(
        label=_("Note (required to decline)"),
        max_length=250,
        required=False,
        widget=forms.Textarea({"rows": 3}),
    )
