"""HL7 v2 ER7 (pipe-delimited) reading and writing: messages, FHS/BHS batches, ACKs.

Written by hand rather than with hl7apy: hl7apy validates against the full v2.5.1 message structures (a LIS that
puts one segment in an unexpected group fails the whole message) and costs ~1 ms per message, while this profile
reads a dozen fields. This module only splits and escapes; what the fields mean is `processing.py`'s business.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from itertools import count

from django.utils import timezone

_SEGMENT_END = re.compile(r"\r\n|\r|\n")


class Er7Error(ValueError):
    """The bytes are not an HL7 v2 message or batch."""


@dataclass(frozen=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding(self) -> str:
        return f"{self.component}{self.repetition}{self.escape}{self.subcomponent}"


@dataclass
class Segment:
    """One segment: `fields[0]` is the segment id; for MSH/FHS/BHS, field n is `fields[n]` as in the standard."""

    fields: list[str]
    delimiters: Delimiters
    #: Components of each field's repetitions, split on first use: a result message reads some thirty components
    #: from a handful of fields, and splitting the field again for each was a sixth of reading a message.
    _split: dict[tuple[int, int], list[str]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.fields[0]

    def raw(self, n: int) -> str:
        return self.fields[n] if 0 <= n < len(self.fields) else ""

    def repetitions(self, n: int) -> list[str]:
        return self.raw(n).split(self.delimiters.repetition)

    def component(self, n: int, c: int = 1, *, repetition: int = 0) -> str:
        """Field n, component c (1-based), unescaped; "" when absent."""
        parts = self._split.get((n, repetition))
        if parts is None:
            reps = self.repetitions(n)
            parts = reps[repetition].split(self.delimiters.component) if repetition < len(reps) else []
            self._split[(n, repetition)] = parts
        value = parts[c - 1] if 0 < c <= len(parts) else ""
        return unescape(value.split(self.delimiters.subcomponent)[0], self.delimiters).strip()

    def value(self, n: int) -> str:
        """Field n as text (first repetition, components kept), unescaped."""
        return unescape(self.repetitions(n)[0], self.delimiters).strip()


@dataclass
class Message:
    segments: list[Segment]
    text: str  # the message as received (segments joined with CR)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def delimiters(self) -> Delimiters:
        return self.msh.delimiters

    def all(self, segment_id: str) -> list[Segment]:
        return [s for s in self.segments if s.id == segment_id]

    def first(self, segment_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)

    @property
    def control_id(self) -> str:
        return self.msh.value(10)

    @property
    def message_type(self) -> str:
        return f"{self.msh.component(9, 1)}^{self.msh.component(9, 2)}".upper()


@dataclass
class Envelope:
    """What arrived: one message, or a batch (FHS/BHS header segments and the messages inside)."""

    messages: list[Message] = field(default_factory=list)
    batch_header: Segment | None = None  # BHS (or FHS when there is no BHS)
    file_header: Segment | None = None
    #: Messages that could not be split out (a segment before any MSH...): (position, reason).
    broken: list[tuple[int, str]] = field(default_factory=list)

    @property
    def is_batch(self) -> bool:
        return self.batch_header is not None or self.file_header is not None


def unescape(value: str, d: Delimiters) -> str:
    if d.escape not in value:
        return value
    e = d.escape
    table = {"F": d.field, "S": d.component, "R": d.repetition, "E": e, "T": d.subcomponent, ".br": "\n"}
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == e:
            end = value.find(e, i + 1)
            if end > i:
                code = value[i + 1 : end]
                if code in table:
                    out.append(table[code])
                elif code.startswith("X") and len(code) > 1:
                    with contextlib.suppress(ValueError):
                        out.append(bytes.fromhex(code[1:]).decode("latin-1"))
                i = end + 1
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def escape(value: str, d: Delimiters = Delimiters()) -> str:
    e = d.escape
    value = value.replace(e, f"{e}E{e}")
    for char, code in ((d.field, "F"), (d.component, "S"), (d.repetition, "R"), (d.subcomponent, "T")):
        value = value.replace(char, f"{e}{code}{e}")
    return value.replace("\r", " ").replace("\n", f"{e}.br{e}")


def _header_delimiters(line: str) -> Delimiters:
    if len(line) < 8:
        raise Er7Error("header segment too short")
    sep = line[3]
    enc = line[4:8]
    if sep.isalnum() or sep.isspace():
        raise Er7Error("invalid field separator")
    return Delimiters(sep, enc[0], enc[1], enc[2], enc[3] if len(enc) > 3 and enc[3] != sep else "&")


def _split_header(line: str, d: Delimiters) -> Segment:
    # MSH-1 is the field separator itself and MSH-2 the encoding characters: keep the standard's numbering.
    rest = line[4:].split(d.field)
    return Segment([line[:3], d.field, *rest], d)


def decode(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def parse(text: str) -> Envelope:
    """Splits a message or a batch into messages. Raises Er7Error when nothing in it looks like HL7 v2."""
    lines = [line.strip("\x0b\x1c\x00 \t") for line in _SEGMENT_END.split(text)]
    lines = [line for line in lines if line]
    if not lines or lines[0][:3] not in {"MSH", "FHS", "BHS"}:
        raise Er7Error("the content does not start with an MSH, FHS or BHS segment")
    envelope = Envelope()
    current: list[Segment] | None = None
    d = Delimiters()

    def close() -> None:
        if current:
            envelope.messages.append(Message(current, "\r".join(_raw(s) for s in current)))

    for line in lines:
        seg_id = line[:3]
        if seg_id in {"FHS", "BHS", "MSH"}:
            d = _header_delimiters(line)
            segment = _split_header(line, d)
            if seg_id == "FHS":
                envelope.file_header = segment
            elif seg_id == "BHS":
                envelope.batch_header = segment
            else:
                close()
                current = [segment]
            continue
        if seg_id in {"FTS", "BTS"}:
            close()
            current = None
            continue
        if current is None:
            envelope.broken.append(
                (len(envelope.messages) + len(envelope.broken) + 1, f"segment {seg_id} outside a message")
            )
            continue
        current.append(Segment(line.split(d.field), d))
    close()
    if not envelope.messages and not envelope.broken:
        raise Er7Error("no MSH segment")
    return envelope


def _raw(segment: Segment) -> str:
    if segment.id in {"MSH", "FHS", "BHS"}:
        return segment.id + segment.delimiters.field + segment.delimiters.field.join(segment.fields[2:])
    return segment.delimiters.field.join(segment.fields)


def parse_ts(value: str) -> datetime | None:
    """An HL7 TS/DTM (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]) as an aware datetime; None when empty or invalid.
    Without an offset the time is the server's local time (settings.TIME_ZONE)."""
    value = value.strip()
    if not value:
        return None
    match = re.fullmatch(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?", value)
    if match is None:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        naive = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        tz = dt_timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return naive.replace(tzinfo=tz)
    return timezone.make_aware(naive)


def ts_precision(value: str) -> int:
    """How many digits of YYYYMMDDHHMMSS the TS carries (8 = a date only)."""
    digits = re.match(r"\d*", value.strip())
    return len(digits.group(0)) if digits else 0


def format_ts(when: datetime | None = None) -> str:
    return timezone.localtime(when or timezone.now()).strftime("%Y%m%d%H%M%S%z")


_control_ids = count(1)


def new_control_id() -> str:
    return f"MST{timezone.now():%Y%m%d%H%M%S}{next(_control_ids) % 100000:05d}"


@dataclass
class AckError:
    """One ERR segment: where (segment, field), the HL7 table 0357 code, severity E/W/I, and the text."""

    segment: str
    field_no: int
    code: str
    text: str
    severity: str = "E"


def build_ack(
    code: str,
    *,
    msh: Segment | None,
    text: str = "",
    errors: list[AckError] | None = None,
    app: str = "MUESTRA",
    facility: str = "MUESTRA",
) -> str:
    """An ACK answering `msh` (or a bare one when the message could not be read): MSH, MSA, ERR*. Segments end
    with CR, as the standard says."""
    d = Delimiters() if msh is None else msh.delimiters
    sep = d.field
    sending_app = msh.value(3) if msh else ""
    sending_fac = msh.value(4) if msh else ""
    trigger = msh.component(9, 2) if msh else ""
    version = (msh.value(12) if msh else "") or "2.5.1"
    processing = (msh.value(11) if msh else "") or "P"
    control = msh.value(10) if msh else ""
    header = sep.join(
        [
            "MSH",
            d.encoding,
            app,
            facility,
            escape(sending_app, d),
            escape(sending_fac, d),
            format_ts(),
            "",
            f"ACK{d.component}{trigger}{d.component}ACK" if trigger else "ACK",
            new_control_id(),
            processing,
            version,
        ]
    )
    segments = [header, sep.join(["MSA", code, escape(control, d), escape(text[:80], d)])]
    for err in errors or []:
        location = f"{err.segment}{d.component}1{d.component}{err.field_no}" if err.segment else ""
        segments.append(
            sep.join(
                [
                    "ERR",
                    "",
                    location,
                    f"{err.code}{d.component}{escape(_table_0357.get(err.code, ''), d)}{d.component}HL70357",
                    err.severity,
                    "",
                    "",
                    "",
                    escape(err.text, d),
                ]
            )
        )
    return "\r".join(segments) + "\r"


_table_0357 = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "204": "Unknown key identifier",
    "207": "Application internal error",
}


def build_batch(acks: list[str], *, header: Segment | None, count_acks: int) -> str:
    """A batch of ACKs answering a batch: FHS/BHS ... BTS/FTS, with the reference to the received batch."""
    d = Delimiters() if header is None else header.delimiters
    sep = d.field
    ref = header.value(11) if header is not None else ""
    now = format_ts()
    body = "".join(acks)
    bhs = sep.join(["BHS", d.encoding, "MUESTRA", "MUESTRA", "", "", now, "", "", "", new_control_id(), escape(ref, d)])
    fhs = "F" + bhs[1:]
    return f"{fhs}\r{bhs}\r{body}BTS{sep}{count_acks}\rFTS{sep}1\r"
