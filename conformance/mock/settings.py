"""Settings of one reference-server instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.mock.faults import FaultSet

MOCK_PROFILES = ("smart-backend", "udap", "cerner-carequality", "cerner-system-account", "ccde")
CARE_QUALITY_SHAPES = ("extension", "override-header", "carequality-token")
CERNER_TENANT = "0b8a0111-e8e6-4c26-a91c-5069cbc6b1ca"


@dataclass
class MockSettings:
    """What the server emulates and how it misbehaves."""

    profile: str = "smart-backend"
    faults: FaultSet = field(default_factory=FaultSet)
    token_lifetime: int = 300
    db_path: str = ":memory:"
    clock_offset: float = 0.0
    """Seconds added to the server's clock (to emulate skew)."""
    public_url: str = "http://127.0.0.1"
    """Origin the server is reachable at; set once the port is known."""
    clock_skew_leeway: int = 30
    udap: Any = None
    """UdapServerSettings for the udap and cerner-carequality profiles."""
    carequality_shape: str = "extension"
    """How cerner-carequality advertises its endpoints: one of CARE_QUALITY_SHAPES."""
    publish_udap_metadata: bool | None = None
    """Serve /.well-known/udap (default: yes for udap, no for cerner-carequality)."""
    auth_url: str = ""
    """cerner-system-account: origin of the separate authorization server; set once its port is known."""
    access_denied: bool = False
    """cerner-system-account: answer every token request 403 'Access denied' (expired or revoked registration)."""

    def __post_init__(self) -> None:
        if self.carequality_shape not in CARE_QUALITY_SHAPES:
            raise ValueError(f"carequality_shape must be one of {', '.join(CARE_QUALITY_SHAPES)}")
        if self.publish_udap_metadata is None:
            self.publish_udap_metadata = self.profile == "udap"

    @property
    def separate_auth_server(self) -> bool:
        return self.profile == "cerner-system-account"

    @property
    def fhir_path(self) -> str:
        if self.profile == "cerner-carequality":
            return f"/beta/{CERNER_TENANT}"
        if self.profile == "cerner-system-account":
            from conformance.mock.cerner_system import TENANT_A

            return f"/r4/{TENANT_A}"
        return "/fhir"

    @property
    def fhir_base(self) -> str:
        return self.public_url + self.fhir_path

    @property
    def token_path(self) -> str:
        if self.profile == "ccde":
            return "/auth/token"
        return f"{self.fhir_path}/Authorization/token" if self.profile == "cerner-carequality" else "/token"

    @property
    def register_path(self) -> str:
        return f"{self.fhir_path}/Authorization/register" if self.profile == "cerner-carequality" else "/register"

    @property
    def token_url(self) -> str:
        return self.public_url + self.token_path

    @property
    def register_url(self) -> str:
        return self.public_url + self.register_path
