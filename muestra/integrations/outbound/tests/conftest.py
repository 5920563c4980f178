"""Fixtures of the outbound tests: a real HTTP receiver on 127.0.0.1, subscriptions, quick retries."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from muestra.integrations.models import Subscription
from muestra.integrations.outbound import receivers
from muestra.integrations.outbound.services import subscriptions_cache_clear
from muestra.integrations.outbound.signing import secret_generate


@pytest.fixture(autouse=True)
def _outbound_settings(settings: Any) -> Iterator[None]:
    settings.MUESTRA_OUTBOUND = {
        "TIMEOUT_SECONDS": 5,
        "RETRY_BASE_SECONDS": 10,
        "RETRY_CAP_SECONDS": 60,
        "MAX_ATTEMPTS": 30,
        "BATCH_SIZE": 50,
        "SWEEP_SECONDS": 30,
        "SUBSCRIPTION_CACHE_SECONDS": 30,
    }
    # Enqueued "send now" tasks are kept in memory, not run: each test sends explicitly.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    subscriptions_cache_clear()
    receivers.kick_reset()
    yield
    subscriptions_cache_clear()


class Receiver:
    """An HTTP server in a thread that records every POST and answers with the planned statuses (200 after)."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.plan: list[int] = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.plan.pop(0) if receiver.plan else receiver.status
                    receiver.received.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[dict[str, Any]]:
        """The JSON bodies the receiver acknowledged (2xx), in arrival order."""
        return [json.loads(r["body"]) for r in self.received if 200 <= r["status"] < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def free_port() -> int:
    """A port nothing listens on (connection refused), free to be listened on later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_subscription(url: str, kinds: list[str], **fields: Any) -> Subscription:
    territories = fields.pop("territories", [])
    diseases = fields.pop("diseases", [])
    sub = Subscription.objects.create(
        name=fields.pop("name", "Vigilancia"), url=url, secret=secret_generate(), event_kinds=kinds, **fields
    )
    sub.territories.set(territories)
    sub.diseases.set(diseases)
    return sub
