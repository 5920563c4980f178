# mypy: disable-error-code="union-attr,arg-type"
from __future__ import annotations

import socket
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from muestra.accounts.scoping import actor_for_api_key
from muestra.accounts.services import api_key_authenticate
from muestra.demo.builders import sample_in_state
from muestra.integrations.hl7 import er7
from muestra.integrations.hl7.mllp import END, START, MllpServer, frame, read_frames
from muestra.integrations.hl7.tests.helpers import for_sample, message
from muestra.samples.models import SampleState


def test_frames_are_split_across_reads():
    buffer = bytearray(b"noise" + frame(b"MSH|one") + START + b"MSH|tw")
    assert read_frames(buffer) == [b"MSH|one"]
    buffer.extend(b"o" + END)
    assert read_frames(buffer) == [b"MSH|two"]
    assert buffer == bytearray()


def _exchange(port: int, payloads: list[bytes]) -> list[bytes]:
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        for payload in payloads:
            conn.sendall(frame(payload))
            data = bytearray()
            while not data.endswith(END):
                chunk = conn.recv(65536)
                assert chunk, "connection closed before the ACK"
                data.extend(chunk)
            (answer,) = read_frames(data)
            answers.append(answer)
    return answers


def test_the_listener_answers_acks_over_a_real_socket(transactional_db, world):
    sample = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    raw = world.keys["lab_x"]
    server = MllpServer(("127.0.0.1", 0), lambda: actor_for_api_key(api_key_authenticate(raw)), language="en")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        good = message("oru_covid_several_obx.hl7", eol="\r", **for_sample(sample))
        answers = _exchange(port, [good, b"garbage", good])
    finally:
        server.shutdown()
        server.server_close()
    codes = [er7.parse(a.decode()).messages[0].first("MSA").value(1) for a in answers]
    assert codes == ["AA", "AR", "AA"]
    sample.refresh_from_db()
    assert sample.state == SampleState.RESULT and sample.results.count() == 1


def test_the_command_refuses_a_missing_or_invalid_key(db, monkeypatch):
    monkeypatch.delenv("HL7_TEST_KEY", raising=False)
    with pytest.raises(CommandError):
        call_command("hl7_listen", "--port", "0", "--api-key-env", "HL7_TEST_KEY")
    monkeypatch.setenv("HL7_TEST_KEY", "mst_nothing_valid")
    with pytest.raises(CommandError):
        call_command("hl7_listen", "--port", "0", "--api-key-env", "HL7_TEST_KEY")
