"""Fake webhook receivers on localhost (``http.server`` in a thread): what lies outside the
system, so it is a real HTTP server, never a patched function.

``StandardReceiver`` checks each delivery the way a customer's receiver would, with the
Standard Webhooks library (``standardwebhooks.Webhook.verify``) and the secret it was given;
``ChatReceiver`` plays a Slack or Microsoft Teams incoming webhook and keeps the JSON it got.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: Any = None  # the payload Webhook.verify returned, or None
    error: str = ""  # why verification failed


@dataclass
class Receiver:
    """What the receiver got, and what it answers next (200 once ``statuses`` runs out)."""

    url: str = ""
    secret: str | None = None  # set: verify each request with the Standard Webhooks library
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    answer: bytes = b"ok"

    @property
    def payloads(self) -> list[Any]:
        return [json.loads(r.body) for r in self.requests]


@contextmanager
def running(state: Receiver, path: str = "/hooks/pilotplan") -> Iterator[Receiver]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got = Received(self.path, dict(self.headers), body)
            if state.secret is not None:
                try:
                    got.verified = Webhook(state.secret).verify(body, dict(self.headers))
                except WebhookVerificationError as exc:
                    got.error = str(exc)
            state.requests.append(got)
            status = state.statuses.pop(0) if state.statuses else 200
            if status in (301, 302, 307):
                self.send_response(status)
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()
                return
            if got.error:
                status = 401
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(state.answer if status < 300 else b"nope: " + got.error.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
