"""Per-instance state shared by the reference server's handlers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.mock import data
from conformance.mock.client_keys import JwksCache
from conformance.mock.settings import MockSettings
from conformance.mock.store import AccessToken, Store


@dataclass
class MockContext:
    settings: MockSettings
    store: Store
    jwks_cache: JwksCache
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=data.resources)
    token_still_valid: Callable[[AccessToken], bool] | None = None
    """A profile's extra say on whether an unexpired token still works (CCDE: authorization and consent)."""
    crash: Callable[[], None] = lambda: None
    """Stop the whole server at once (the server that runs the app sets it; faults that emulate a crash call it)."""

    def fault(self, name: str) -> bool:
        return name in self.settings.faults

    def variation(self, name: str) -> bool:
        """A compliant alternative is switched on (the server then answers differently, but still correctly)."""
        return name in self.settings.variations

    def now(self) -> float:
        """The server's clock, which a setting can skew."""
        return time.time() + self.settings.clock_offset

    def has_ended(self, end: float) -> bool:
        """Whether a token or authorization ending at `end` (server time) has ended. Variation expiry-leeway keeps
        time in whole seconds and allows one second of leeway (RFC 7519 §4.1.4), so up to two seconds late."""
        now = self.now()
        if self.variation("expiry-leeway"):
            return int(now) > int(end) + 1
        return end <= now
