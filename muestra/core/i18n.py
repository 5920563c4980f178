"""Translated names for reference data rows: Spanish in `name`, English and Vietnamese beside it."""

from __future__ import annotations

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class TranslatedNameMixin(models.Model):
    name = models.CharField(_("name"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    name_vi = models.CharField(_("name (Vietnamese)"), max_length=200, blank=True)

    class Meta:
        abstract = True

    @property
    def display_name(self) -> str:
        language = (get_language() or "es")[:2]
        translated = {"en": self.name_en, "vi": self.name_vi}.get(language)
        return translated or self.name

    def __str__(self) -> str:
        return self.display_name
