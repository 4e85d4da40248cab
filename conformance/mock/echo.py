"""A reference server that repeats what it received, as some error pages do (the `echo_requests` setting).

Every JSON object it answers gains an `echo` member with the request's target,
headers and body; other answers get the same appended as text. Whatever the
suite sends (secrets in any encoding, assertions, tokens, tampered tokens) then
comes back in a response, and the planted-secret test proves none of it reaches
a report.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.mock.settings import MockSettings


class EchoRequests:
    def __init__(self, app: ASGIApp, settings: MockSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.echo_requests:
            await self.app(scope, receive, send)
            return
        received = bytearray()

        async def recording() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received.extend(message.get("body", b""))
            return message

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def holding(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks)
                if start.get("status") not in (204, 304) and scope.get("method") != "HEAD":
                    body = _with_echo(body, start, scope, bytes(received))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, recording, holding)


def _with_echo(body: bytes, start: dict[str, Any], scope: Scope, received: bytes) -> bytes:
    query = scope.get("query_string", b"").decode("latin-1")
    echo = {
        "target": scope.get("path", "") + (f"?{query}" if query else ""),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
        "body": received.decode("latin-1"),
    }
    content_type = next((v for k, v in start.get("headers", []) if k.lower() == b"content-type"), b"")
    if b"json" in content_type:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict):
            document["echo"] = echo
            return json.dumps(document).encode()
    return body + b"\n<!-- you sent: " + json.dumps(echo).encode() + b" -->"
