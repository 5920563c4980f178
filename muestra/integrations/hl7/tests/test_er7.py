# mypy: disable-error-code="union-attr"
from __future__ import annotations

from datetime import UTC, datetime

from muestra.integrations.hl7 import er7


def test_escapes_and_custom_delimiters_are_read():
    text = "MSH#$~!@#APP#FAC#####ORU$R01#42#P#2.5.1\rOBX#1#ST#94500-6$PCR$LN##No detectado !F! ok!.br!fin"
    (message,) = er7.parse(text).messages
    assert message.message_type == "ORU^R01" and message.control_id == "42"
    obx = message.first("OBX")
    assert obx.component(3, 1) == "94500-6" and obx.component(3, 3) == "LN"
    assert obx.value(5) == "No detectado # ok\nfin"
    assert er7.unescape(er7.escape("a|b^c&d~e\\f"), er7.Delimiters()) == "a|b^c&d~e\\f"


def test_timestamps_with_and_without_offset():
    assert er7.parse_ts("202603011230-0300") == datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    assert er7.parse_ts("20260301").date().isoformat() == "2026-03-01"
    assert er7.ts_precision("20260301") == 8
    assert er7.parse_ts("2026-03-01") is None and er7.parse_ts("") is None


def test_an_ack_answers_with_the_senders_delimiters_and_errors():
    (message,) = er7.parse("MSH|^~\\&|LIS|LAB|||20260101||ORU^R01|C1|P|2.5.1\r").messages
    ack = er7.build_ack(
        "AE", msh=message.msh, text="Bad | value", errors=[er7.AckError("OBX", 5, "103", "Unknown result 'x^y'.")]
    )
    (parsed,) = er7.parse(ack).messages
    assert parsed.msh.value(5) == "LIS" and parsed.msh.component(9, 2) == "R01"
    assert parsed.first("MSA").value(1) == "AE" and parsed.first("MSA").value(3) == "Bad | value"
    err = parsed.first("ERR")
    assert err.value(2) == "OBX^1^5" and err.value(8) == "Unknown result 'x^y'."
    assert ack.endswith("\r") and "\n" not in ack


def test_not_hl7_is_an_error():
    for text in ("", "hello", "PID|1"):
        try:
            er7.parse(text)
        except er7.Er7Error:
            continue
        raise AssertionError(text)
