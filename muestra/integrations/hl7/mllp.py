"""MLLP (Minimal Lower Layer Protocol): each message or batch framed as 0x0B <bytes> 0x1C 0x0D over TCP, answered
with the ACK(s) framed the same way, by the same code as POST /api/v1/hl7 (`processing.receive`)."""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable

from django.db import close_old_connections
from django.utils import translation

from muestra.accounts.scoping import Actor
from muestra.integrations.hl7 import processing

logger = logging.getLogger(__name__)

START, END = b"\x0b", b"\x1c\x0d"
#: A frame larger than this is refused and the connection closed (a LIS batch of a few thousand results fits).
MAX_FRAME = 32 * 1024 * 1024


def frame(payload: bytes) -> bytes:
    return START + payload + END


def read_frames(buffer: bytearray) -> list[bytes]:
    """Takes every complete frame out of `buffer` (bytes before a start block are dropped)."""
    frames: list[bytes] = []
    while True:
        start = buffer.find(START)
        if start < 0:
            buffer.clear()
            return frames
        end = buffer.find(END, start + 1)
        if end < 0:
            del buffer[:start]
            return frames
        frames.append(bytes(buffer[start + 1 : end]))
        del buffer[: end + len(END)]


class _Handler(socketserver.BaseRequestHandler):
    server: MllpServer

    def handle(self) -> None:
        buffer = bytearray()
        self.request.settimeout(self.server.idle_timeout)
        try:
            while True:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                buffer.extend(chunk)
                if len(buffer) > MAX_FRAME:
                    logger.warning("MLLP frame over %s bytes from %s; closing", MAX_FRAME, self.client_address)
                    return
                for payload in read_frames(buffer):
                    self.request.sendall(frame(self.server.answer(payload).encode("utf-8")))
        except TimeoutError:
            return
        except OSError as exc:
            logger.info("MLLP connection from %s ended: %s", self.client_address, exc)
        finally:
            close_old_connections()


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        actor_source: Callable[[], Actor | None],
        *,
        language: str = "es",
        idle_timeout: float = 300,
    ) -> None:
        super().__init__(address, _Handler)
        self.actor_source = actor_source
        self.language = language
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()

    def answer(self, payload: bytes) -> str:
        """The ACK(s) for one frame. One message at a time: the services lock rows, and SQLite allows one writer."""
        with self._lock, translation.override(self.language):
            close_old_connections()
            actor = self.actor_source()
            if actor is None:
                return processing.refuse(translation.gettext("The listener's API key is not valid."), content=payload)
            try:
                return processing.receive(actor, payload).body
            except processing.NotLab:
                return processing.refuse(translation.gettext("Only laboratories send results."), content=payload)
            except Exception:
                logger.exception("MLLP frame could not be processed")
                return processing.refuse(translation.gettext("The message could not be processed."), content=payload)
