"""A local HTTP server that answers like XNAT's REST API and records every request."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USER, PASSWORD = "alice", "s3cret-pass"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Recorded], tuple[int, Any]]


@dataclass
class FakeXnat:
    """Routes are (METHOD, path) -> handler(request) -> (status, body as JSON or str)."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> FakeXnat:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return

            def _serve(self) -> None:
                split = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                rec = Recorded(self.command, split.path, urllib.parse.parse_qs(split.query),
                               dict(self.headers.items()), self.rfile.read(length))
                fake.requests.append(rec)
                if self.headers.get("Authorization") != AUTH:
                    status, body = 401, "bad credentials"
                elif (self.command, split.path) in fake.routes:
                    status, body = fake.routes[(self.command, split.path)](rec)
                else:
                    status, body = 404, f"no route {self.command} {split.path}"
                data = body if isinstance(body, str) else json.dumps(body)
                encoded = data.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(
                    body, str) else "text/plain")
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def env(self) -> dict[str, str]:
        return {"XNAT_HOST": self.url, "XNAT_USER": USER, "XNAT_PASS": PASSWORD}
