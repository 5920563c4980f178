"""Identity documents: normalisation and validation per document rule.

Chile's RUN uses python-stdnum (modulo 11); Vietnam's CCCD has no check digit, so only its structure is checked
(3-digit province code, a century/sex digit, 2-digit birth year, 6 digits).
"""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from stdnum.cl import rut as cl_rut

from muestra.catalog.models import DocumentValidator

RUN_PATTERN = re.compile(r"^\d{1,8}-[0-9K]$")
_PASSPORT_PATTERN = re.compile(r"^[A-Z0-9]{4,20}$")


class DocumentInvalid(ValueError):
    def __init__(self, message: str | Promise) -> None:
        super().__init__(str(message))
        self.message = message


def run_check_digit(number: int | str) -> str:
    """The modulo-11 check digit of a RUN body ("12345678" -> "5")."""
    return cl_rut.calc_check_digit(str(int(number)))


def normalise_run(raw: str) -> str:
    """ "12.345.678-5", "123456785", "12345678-k" -> "12345678-5" / "...-K". Raises DocumentInvalid."""
    compact = cl_rut.compact(str(raw or ""))
    if not compact or len(compact) < 2 or not compact[:-1].isdigit():
        raise DocumentInvalid(_("A RUN has 1 to 8 digits and a check digit (0-9 or K)."))
    body = str(int(compact[:-1]))  # systems that pad to 9 digits write leading zeros
    if body == "0" or len(body) > 8:
        raise DocumentInvalid(_("A RUN has 1 to 8 digits and a check digit (0-9 or K)."))
    # Checked here rather than with cl_rut.validate, which refuses bodies under 1,000,000 (old but valid RUNs)
    # and would then report them as a wrong check digit.
    if compact[-1] not in "0123456789K" or run_check_digit(body) != compact[-1]:
        raise DocumentInvalid(_("The RUN check digit is wrong."))
    return f"{body}-{compact[-1]}"


def validate_cccd(raw: str) -> str:
    digits = re.sub(r"\s", "", str(raw or ""))
    if not re.fullmatch(r"\d{12}", digits):
        raise DocumentInvalid(_("A citizen identity card (CCCD) number has exactly 12 digits."))
    province = int(digits[:3])
    century_sex = int(digits[3])
    # Province codes are 001..096; the 4th digit encodes century and sex (0-9: 20th..24th century, M/F).
    if province == 0 or province > 96:
        raise DocumentInvalid(_("The first three digits of a CCCD must be a province code (001-096)."))
    if century_sex > 9:
        raise DocumentInvalid(_("The CCCD's fourth digit must encode century and sex."))
    return digits


def validate_cmnd(raw: str) -> str:
    digits = re.sub(r"\s", "", str(raw or ""))
    if not re.fullmatch(r"\d{9}", digits):
        raise DocumentInvalid(_("An identity card (CMND) number has exactly 9 digits."))
    return digits


def normalise_document(rule: str, raw: str | None) -> str:
    """The stored form of a document number under `rule`; "" for rules that carry no number."""
    value = (raw or "").strip()
    if rule == DocumentValidator.CL_RUN:
        return normalise_run(value)
    if rule == DocumentValidator.VN_CCCD:
        return validate_cccd(value)
    if rule == DocumentValidator.VN_CMND:
        return validate_cmnd(value)
    if rule == DocumentValidator.PASSPORT:
        compact = re.sub(r"[\s-]", "", value).upper()
        if not _PASSPORT_PATTERN.fullmatch(compact):
            raise DocumentInvalid(_("A passport number has 4 to 20 letters or digits."))
        return compact
    if rule == DocumentValidator.FREE_TEXT:
        if not value or value == ".":
            raise DocumentInvalid(_("The document number is required."))
        return value.upper()[:40]
    # No document / newborn: identity rests on the data itself (and the guardian for a newborn).
    return ""
