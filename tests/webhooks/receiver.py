"""A real webhook receiver for the tests: a threaded http.server on 127.0.0.1 that verifies every delivery.

Each request is checked with the `standardwebhooks` library against the
secrets the test gives (any one must verify); `verified` holds the payloads
that did, `refused` the requests that did not. `statuses` are the answers
to give, in order (then 200).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    def __init__(self, *, secrets: list[str] | None = None, port: int | None = None, statuses: list[int] | None = None):
        self.secrets = list(secrets or [])
        self.port = port or free_port()
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict, bytes]] = []
        self.verified: list[dict] = []
        self.verified_with: list[set[str]] = []
        self.refused: list[tuple[dict, bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.requests.append((headers, body))
        good = set()
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            good.add(secret)
        if good:
            self.verified.append(json.loads(body))
            self.verified_with.append(good)
        else:
            self.refused.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        handler.send_response(status)
        handler.send_header("content-type", "text/plain")
        handler.end_headers()
        handler.wfile.write(b"ok" if status < 300 else b"not now")

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, event_type: str) -> list[dict]:
        return [payload for payload in self.verified if payload["type"] == event_type]


def wait_until(condition: Callable[[], bool], *, timeout: float = 60, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
