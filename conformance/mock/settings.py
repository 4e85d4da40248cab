"""Settings of one reference-server instance."""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.mock.faults import FaultSet

MOCK_PROFILES = ("smart-backend", "udap", "cerner-carequality", "cerner-system-account", "ccde")


@dataclass
class MockSettings:
    """What the server emulates and how it misbehaves."""

    profile: str = "smart-backend"
    faults: FaultSet = field(default_factory=FaultSet)
    token_lifetime: int = 300
    db_path: str = ":memory:"
    clock_offset: float = 0.0
    """Seconds added to the server's clock (to emulate skew)."""
    fhir_path: str = "/fhir"
    public_url: str = "http://127.0.0.1"
    """Origin the server is reachable at; set once the port is known."""
    clock_skew_leeway: int = 30

    @property
    def fhir_base(self) -> str:
        return self.public_url + self.fhir_path

    @property
    def token_url(self) -> str:
        return self.public_url + "/token"
