"""A fixed delay before every answer (the `latency_ms` setting): a WAN between the suite and a staging server,
reproducible on loopback, for measuring what concurrency buys."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from conformance.mock.settings import MockSettings


class Latency:
    def __init__(self, app: ASGIApp, settings: MockSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.settings.latency_ms > 0:
            await asyncio.sleep(self.settings.latency_ms / 1000)  # other requests go on meanwhile
        await self.app(scope, receive, send)
