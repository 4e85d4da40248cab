"""A tiny HTTP server where the suite publishes client JWKS documents it controls.

Used for clients registered by JWKS URL: the suite can rotate keys, break the
document or serve an attacker's set at another path, and it logs every fetch so
a check can tell whether the server under test fetched a URL it should not have.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class PublishedDocument:
    body: bytes
    status: int = 200
    content_type: str = "application/json"
    cache_control: str = "no-store"


@dataclass
class JwksHost:
    """Serves `/jwks/<name>` documents; thread-safe updates; remembers fetches."""

    host: str = "127.0.0.1"
    port: int = 0
    public_base: str | None = None
    documents: dict[str, PublishedDocument] = field(default_factory=dict)
    fetches: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.split("?")[0].removeprefix("/jwks/")
                with host._lock:
                    host.fetches.append(name)
                    document = host.documents.get(name)
                if document is None:
                    self.send_error(404)
                    return
                self.send_response(document.status)
                self.send_header("Content-Type", document.content_type)
                self.send_header("Cache-Control", document.cache_control)
                self.send_header("Content-Length", str(len(document.body)))
                self.end_headers()
                self.wfile.write(document.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="jwks-host", daemon=True
        )
        self._thread.start()

    def url(self, name: str) -> str:
        base = self.public_base or f"http://{self.host}:{self.port}"
        return f"{base.rstrip('/')}/jwks/{name}"

    def publish(self, name: str, jwks: dict[str, Any], *, cache_control: str = "no-store") -> str:
        with self._lock:
            self.documents[name] = PublishedDocument(json.dumps(jwks).encode(), cache_control=cache_control)
        return self.url(name)

    def break_document(self, name: str, status: int = 500) -> None:
        with self._lock:
            self.documents[name] = PublishedDocument(b"<html>down</html>", status=status, content_type="text/html")

    def fetch_count(self, name: str) -> int:
        with self._lock:
            return self.fetches.count(name)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
