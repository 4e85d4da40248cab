"""Settings of one reference-server instance, and what a system must tell the server to be served.

The reference server knows no system by name. Each profile (conformance.profiles)
hands it a `ServerSystem`: where its URLs live (`ServerLayout`), which routes it
serves, and what it installs into a new server's context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from conformance.mock.faults import FaultSet
from conformance.mock.variations import VariationSet

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from conformance.mock.context import MockContext

CARE_QUALITY_SHAPES = ("extension", "override-header", "carequality-token")


@dataclass(frozen=True)
class ServerLayout:
    """Where one system's reference server puts its endpoints, and what it needs to start."""

    fhir_path: str = "/fhir"
    token_path: str = "/token"
    register_path: str = "/register"
    separate_auth_server: bool = False
    """The authorization server listens on a port of its own (Cerner system accounts)."""
    publishes_udap_metadata: bool = False
    """Default for serving /.well-known/udap (a setting can change it)."""
    needs_udap: bool = False
    """The server signs UDAP metadata and verifies certificates: it needs UdapServerSettings."""
    registration_media_types: tuple[str, ...] = ("application/json",)
    """Content types UDAP dynamic registration accepts."""
    registration_udap_values: tuple[object, ...] = ("1",)
    """Values of the registration body's `udap` member that are accepted (Carequality on Cerner also takes 1)."""
    registration_needs_contact: bool = True
    """UDAP registration requires a mailto: contact (Carequality on Cerner does not)."""


class ServerSystem(Protocol):
    """What the reference server asks of the system it emulates (a profile provides it)."""

    @property
    def name(self) -> str: ...

    @property
    def layout(self) -> ServerLayout: ...

    def server_routes(self, settings: MockSettings) -> list[BaseRoute]: ...

    def install(self, ctx: MockContext) -> None: ...


@dataclass
class MockSettings:
    """What the server emulates and how it misbehaves."""

    system: ServerSystem
    faults: FaultSet = field(default_factory=FaultSet)
    variations: VariationSet = field(default_factory=VariationSet)
    """Compliant alternatives switched on (catalogues/variations.toml)."""
    token_lifetime: int = 300
    db_path: str = ":memory:"
    echo_requests: bool = False
    """Repeat every request in the response (conformance.mock.echo): a target whose error pages echo input."""
    clock_offset: float = 0.0
    """Seconds added to the server's clock (to emulate skew)."""
    latency_ms: float = 0.0
    """Milliseconds every request waits before it is handled (conformance.mock.latency): a WAN, on loopback."""
    public_url: str = "http://127.0.0.1"
    """Origin the server is reachable at; set once the port is known."""
    clock_skew_leeway: int = 30
    udap: Any = None
    """UdapServerSettings, for systems whose layout needs_udap."""
    carequality_shape: str = "extension"
    """How Carequality on Cerner advertises its endpoints: one of CARE_QUALITY_SHAPES."""
    publish_udap_metadata: bool | None = None
    """Serve /.well-known/udap (default: the layout's publishes_udap_metadata)."""
    auth_url: str = ""
    """Origin of a separate authorization server; set once its port is known."""
    access_denied: bool = False
    """Answer every token request 403 'Access denied' (an expired or revoked registration)."""

    def __post_init__(self) -> None:
        if self.carequality_shape not in CARE_QUALITY_SHAPES:
            raise ValueError(f"carequality_shape must be one of {', '.join(CARE_QUALITY_SHAPES)}")
        if self.publish_udap_metadata is None:
            self.publish_udap_metadata = self.layout.publishes_udap_metadata

    @property
    def profile(self) -> str:
        return self.system.name

    @property
    def layout(self) -> ServerLayout:
        return self.system.layout

    @property
    def separate_auth_server(self) -> bool:
        return self.layout.separate_auth_server

    @property
    def fhir_path(self) -> str:
        return self.layout.fhir_path

    @property
    def fhir_base(self) -> str:
        return self.public_url + self.fhir_path

    @property
    def token_path(self) -> str:
        return self.layout.token_path

    @property
    def register_path(self) -> str:
        return self.layout.register_path

    @property
    def token_url(self) -> str:
        return self.public_url + self.token_path

    @property
    def register_url(self) -> str:
        return self.public_url + self.register_path
