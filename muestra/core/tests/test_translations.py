"""The message catalogues (muestra/locale): service messages come out in Spanish and Vietnamese, the .po files are
complete and well-formed, the committed .mo files match them, and the REST API answers in the caller's language.

The .po files are read with a small parser of our own (stdlib only), so these tests need no gettext tools.
"""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.utils import timezone, translation

from muestra.catalog import models as catalog
from muestra.core.errors import ErrorCollector, IllegalTransition
from muestra.samples.inputs import check_collected_at
from muestra.samples.models import SampleState
from muestra.samples.states import Step, ensure_allowed

LOCALE_DIR = Path(settings.LOCALE_PATHS[0])
PROJECT_DIR = LOCALE_DIR.parent  # muestra/
LANGUAGES = ("es", "vi")


# --- a minimal .po reader ----------------------------------------------------------------------------------------


@dataclass
class PoEntry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False
    line: int = 0


def _unquote(text: str) -> str:
    """A C-style quoted .po string ("a \\"b\\"\\n") -> its value."""
    text = text.strip()
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"not a quoted string: {text!r}")
    return ast.literal_eval(text)


def parse_po(path: Path) -> list[PoEntry]:
    entries: list[PoEntry] = []
    entry = PoEntry()
    target: tuple[str, int] | None = None  # which field continuation lines append to

    def flush() -> None:
        nonlocal entry, target
        if entry.msgstr or entry.msgid or entry.obsolete:
            entries.append(entry)
        entry, target = PoEntry(), None

    keyword = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")$")
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
            continue
        if line.startswith("#"):
            continue
        match = keyword.match(line)
        if match:
            name, index, value = match.group(1), match.group(2), _unquote(match.group(3))
            if name == "msgid" and (entry.msgid or entry.msgstr):
                flush()  # an entry without a blank line before it
            entry.line = entry.line or number
            if name == "msgctxt":
                entry.msgctxt, target = value, ("msgctxt", 0)
            elif name == "msgid":
                entry.msgid, target = value, ("msgid", 0)
            elif name == "msgid_plural":
                entry.msgid_plural, target = value, ("msgid_plural", 0)
            else:
                slot = int(index) if index is not None else 0
                entry.msgstr[slot], target = value, ("msgstr", slot)
            continue
        if line.startswith('"') and target is not None:
            name, slot = target
            value = _unquote(line)
            if name == "msgstr":
                entry.msgstr[slot] += value
            else:
                setattr(entry, name, (getattr(entry, name) or "") + value)
            continue
        raise AssertionError(f"{path}:{number}: unexpected line {raw!r}")
    flush()
    return entries


def catalogue(language: str) -> tuple[PoEntry, list[PoEntry]]:
    """(header, messages) of one language's django.po."""
    entries = parse_po(LOCALE_DIR / language / "LC_MESSAGES" / "django.po")
    header = next(e for e in entries if e.msgid == "" and not e.obsolete)
    return header, [e for e in entries if e.msgid != "" and not e.obsolete]


def header_field(header: PoEntry, name: str) -> str:
    for line in header.msgstr[0].splitlines():
        key, _sep, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    raise AssertionError(f"header has no {name}")


#: %(name)s-style placeholders (with any flags/width) and bare %s/%d/%r ones; "%%" is a literal percent.
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]+)\))?[#0 +-]*\d*(?:\.\d+)?(?P<conv>[diouxXeEfFgGcrsa%])")


def placeholders(text: str) -> list[str]:
    found = []
    for match in PLACEHOLDER.finditer(text):
        if match.group("conv") == "%":
            continue
        found.append(f"%({match.group('name')}){match.group('conv')}" if match.group("name") else match.group(0))
    return sorted(found)


# --- service messages in Spanish and Vietnamese ------------------------------------------------------------------

FUTURE_COLLECTION = {
    "es": "La fecha y hora de toma de muestra no puede ser futura.",
    "vi": "Thời gian lấy mẫu không được ở tương lai.",
    "en": "The collection time cannot be in the future.",
}


@pytest.mark.parametrize("language", ["es", "vi", "en"])
def test_collection_time_error_follows_the_active_language(language):
    errors = ErrorCollector()
    check_collected_at(timezone.now() + timedelta(days=1), errors)
    assert [(e.field, e.code) for e in errors.errors] == [("collected_at", "future")]
    with translation.override(language):
        assert str(errors.errors[0].message) == FUTURE_COLLECTION[language]
        assert errors.errors[0].as_dict()["message"] == FUTURE_COLLECTION[language]


def test_message_with_a_number_keeps_its_placeholder_filled():
    errors = ErrorCollector()
    days = settings.MUESTRA["MAX_COLLECTION_AGE_DAYS"]
    with translation.override("es"):
        check_collected_at(timezone.now() - timedelta(days=days + 5), errors)
    assert (
        str(errors.errors[0].message) == f"La fecha y hora de toma de muestra tiene más de {days} días de antigüedad."
    )
    errors = ErrorCollector()
    with translation.override("vi"):
        check_collected_at(timezone.now() - timedelta(days=days + 5), errors)
    assert str(errors.errors[0].message) == f"Thời gian lấy mẫu đã quá {days} ngày."


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("es", "No se puede editar la muestra 1000000042: está anulada."),
        ("vi", "Không thể chỉnh sửa mẫu 1000000042: mẫu đang ở trạng thái “đã hủy”."),
    ],
)
def test_illegal_transition_message_is_composed_in_one_language(language, expected):
    sample = SimpleNamespace(state=SampleState.CANCELLED, number=1000000042)
    with translation.override(language), pytest.raises(IllegalTransition) as caught:
        ensure_allowed(sample, Step.EDIT)  # type: ignore[arg-type]
    assert str(caught.value.message) == expected
    assert caught.value.as_dict()["errors"][0]["message"] == expected


@pytest.mark.parametrize(
    ("language", "received", "retest", "method"),
    [
        ("es", "Recepcionada por el laboratorio", "Requiere nuevo examen", "Antígeno rápido"),
        ("vi", "Phòng xét nghiệm đã tiếp nhận", "Cần xét nghiệm lại", "Test nhanh kháng nguyên"),
        ("en", "Received by laboratory", "Re-test needed", "Rapid antigen"),
    ],
)
def test_choice_labels(language, received, retest, method):
    with translation.override(language):
        assert str(SampleState.RECEIVED.label) == received
        assert str(catalog.Interpretation.RETEST.label) == retest
        assert str(catalog.TestMethod.ANTIGEN.label) == method


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "test_name", "verbose_name", "mismatch"),
    [
        (
            "es",
            "RT-PCR SARS-CoV-2",
            "tipo de muestra",
            "El tipo de muestra Esputo no es válido para el examen Test rápido de antígeno SARS-CoV-2.",
        ),
        (
            "vi",
            "Xét nghiệm RT-PCR SARS-CoV-2",
            "loại bệnh phẩm",
            "Loại bệnh phẩm Đờm không phù hợp với xét nghiệm Xét nghiệm nhanh kháng nguyên SARS-CoV-2.",
        ),
    ],
)
def test_catalogue_names_and_messages_built_from_them(language, test_name, verbose_name, mismatch):
    """Catalogue rows carry their own names per language; the messages around them come from the .po."""
    from muestra.catalog.models import SampleType, Test
    from muestra.samples.inputs import SampleInput, resolve_sample

    with translation.override(language):
        assert Test.objects.get(code="covid19-pcr").display_name == test_name
        assert str(SampleType._meta.verbose_name) == verbose_name
        errors = ErrorCollector()
        data = SampleInput(
            establishment="", test="covid19-antigen", sample_type="sputum", collected_at=timezone.now(), patient=None
        )
        resolve_sample(data, errors)
        messages = {(e.field, e.code): str(e.message) for e in errors.errors}
    assert messages[("sample_type", "not_allowed")] == mismatch


# --- the catalogues themselves -----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_po_header(language):
    header, _messages = catalogue(language)
    assert "fuzzy" not in header.flags
    assert header_field(header, "Language") == language
    assert "charset=UTF-8" in header_field(header, "Content-Type")
    plural_forms = header_field(header, "Plural-Forms")
    if language == "vi":
        assert plural_forms.startswith("nplurals=1;")
    else:
        assert plural_forms.startswith("nplurals=3;")  # the same rule as Django's own Spanish catalogue


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_and_not_fuzzy(language):
    header, messages = catalogue(language)
    nplurals = int(re.search(r"nplurals=(\d+)", header_field(header, "Plural-Forms")).group(1))  # type: ignore[union-attr]
    assert len(messages) > 100
    problems = []
    for entry in messages:
        where = f"{language}:{entry.line} {entry.msgid!r}"
        if "fuzzy" in entry.flags:
            problems.append(f"{where}: fuzzy")
        expected_forms = set(range(nplurals)) if entry.msgid_plural is not None else {0}
        if set(entry.msgstr) != expected_forms:
            problems.append(f"{where}: msgstr forms {sorted(entry.msgstr)}, expected {sorted(expected_forms)}")
        if any(not text.strip() for text in entry.msgstr.values()):
            problems.append(f"{where}: untranslated")
    obsolete = [e.msgid for e in parse_po(LOCALE_DIR / language / "LC_MESSAGES" / "django.po") if e.obsolete]
    assert not obsolete, f"obsolete entries left (run makemessages with --no-obsolete): {obsolete}"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_are_kept(language):
    """Every %(name)s of the msgid is in each msgstr with the same conversion, and nothing else is asked for."""
    _header, messages = catalogue(language)
    problems = []
    for entry in messages:
        # Each form of a plural entry is used for several numbers, so each keeps every placeholder.
        wanted = placeholders(entry.msgid_plural if entry.msgid_plural is not None else entry.msgid)
        for slot, text in sorted(entry.msgstr.items()):
            got = placeholders(text)
            if sorted(set(got)) != sorted(set(wanted)) or (len(got) < len(wanted)):
                problems.append(f"{language}: {entry.msgid!r}[{slot}]: msgstr has {got}, msgid has {wanted}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_mo_matches_the_po(language):
    """The committed .mo is what Django reads: it must say exactly what the .po says (run compilemessages)."""
    mo_path = LOCALE_DIR / language / "LC_MESSAGES" / "django.mo"
    assert mo_path.exists(), f"{mo_path} is missing: run `manage.py compilemessages --ignore=.venv`"
    with mo_path.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    _header, messages = catalogue(language)
    stale = []
    for entry in messages:
        if entry.msgid_plural is not None:
            key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
            for slot, text in entry.msgstr.items():
                if compiled._catalog.get((key, slot)) != text:  # type: ignore[attr-defined]
                    stale.append(entry.msgid)
        elif entry.msgctxt:
            if compiled.pgettext(entry.msgctxt, entry.msgid) != entry.msgstr[0]:
                stale.append(entry.msgid)
        elif compiled.gettext(entry.msgid) != entry.msgstr[0]:
            stale.append(entry.msgid)
    assert not stale, f"{mo_path} is stale; run `manage.py compilemessages --ignore=.venv`: {stale[:5]}"


_MARKERS = {
    "_",
    "gettext",
    "gettext_lazy",
    "gettext_noop",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
}


def marked_strings() -> dict[str, str]:
    """Every msgid marked in the application code (not tests, not migrations) -> where it is."""
    found: dict[str, str] = {}
    for path in sorted(PROJECT_DIR.rglob("*.py")):
        relative = path.relative_to(PROJECT_DIR.parent)
        if {"tests", "migrations", "locale"} & set(relative.parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name not in _MARKERS:
                continue
            position = 1 if name.startswith(("pgettext", "npgettext")) else 0
            if len(node.args) > position:
                arg = node.args[position]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, f"{relative}:{node.lineno}")
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_has_a_translation(language):
    """A string marked in the code but missing from the catalogue would silently come out in English."""
    _header, messages = catalogue(language)
    known = {e.msgid for e in messages}
    missing = {msgid: where for msgid, where in marked_strings().items() if msgid not in known}
    assert not missing, (
        "Strings missing from the catalogue; see muestra/locale/README.md (makemessages, translate, "
        f"compilemessages): {missing}"
    )


# --- the REST API ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "message"),
    [("vi", "Không tìm thấy mẫu."), ("es", "Muestra no encontrada."), ("en", "Sample not found.")],
)
def test_api_error_message_follows_accept_language(client, world, accept_language, message):
    client.force_login(world.users["taker_a"])
    response = client.get("/api/v1/samples/9999999999", HTTP_ACCEPT_LANGUAGE=accept_language)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["message"] == message
    assert [e["message"] for e in error["errors"]] == [message]


def test_api_defaults_to_spanish(client, world):
    client.force_login(world.users["taker_a"])
    response = client.get("/api/v1/samples/9999999999")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Muestra no encontrada."
