"""What a profile declares: everything that differs between the systems the suite validates and emulates.

One `Profile` object per system. The rest of the package asks the registry
(conformance.profiles) instead of comparing profile names: the configuration
loader for the options a profile needs, the embedded run for how to start and
prepare its reference server, the reference server for its URL layout and
routes, `conformance mock` for how to serve it, the diagnosis for how to probe
its token endpoint, and the fault matrix for its faults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.core.config import ProtectedRead, TargetConfig
from conformance.flows.target import Target, make_http, make_redactor
from conformance.mock.faults import FAULTS, Fault, FaultSet
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.variations import VARIATIONS, Variation, VariationSet

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from conformance.core.recording import Exchange
    from conformance.mock.context import MockContext
    from conformance.mock.store import Client


class ProfileSetupError(Exception):
    """A profile could not prepare what it needs (e.g. an unreadable test PKI); shown on one line."""


@dataclass(frozen=True)
class ConfigNeeds:
    """What a configured (non-embedded) target must supply for this profile's checks to run."""

    client_id: bool = False
    private_key: bool = False
    client_secret: bool = False
    udap: bool = False
    """The [udap] section: the client's certificate in the trust community."""
    udap_trust_anchors: bool = False
    """udap.trust_anchors, to validate the server's signed metadata."""


@dataclass(frozen=True)
class EmbeddedRun:
    """How the embedded run was asked to start the reference server."""

    faults: tuple[str, ...] = ()
    variations: tuple[str, ...] = ()
    keys_dir: Path | None = None
    """Where key material is kept between runs (the fault matrix reuses it)."""
    template: TargetConfig | None = None
    """The user's configuration: its HTTP limits apply to the embedded run too."""
    mock_settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServeOptions:
    """What `conformance mock` passes to a profile when it serves the reference server in the foreground."""

    pki: Path
    """The test community directory (UDAP profiles)."""


def default_banner(server: MockServer, options: ServeOptions, registered: list[str]) -> list[str]:
    """The lines `conformance mock` prints for a profile whose clients are registered up front."""
    return [
        f"  token endpoint: {server.settings.token_url}",
        f"  clients: {', '.join(registered) or 'none (use --clients or --register-client)'}",
    ]


MADE_HERE = ".made-by-fhir-b2b-conformance"
"""Marks a keys directory whose keys this tool generated (the machine's key cache, a test session's keys): its RSA
keys load without the consistency check (~30 ms a key). Keys anywhere else are checked like any key file."""


def made_here(directory: Path) -> bool:
    return (directory / MADE_HERE).is_file()


def mark_made_here(directory: Path) -> None:
    (directory / MADE_HERE).touch()


@dataclass(frozen=True)
class KeyMaterial:
    """Keys an embedded run needs, made once per machine and kept (conformance.runner.key_cache) in the keys
    directory the run is then given."""

    make: Callable[[Path], object]
    """Write the material into a keys directory (what it returns is not used)."""
    fresh: Callable[[Path], bool]
    """Whether a keys directory holds all of it, usable for a while yet (certificates expire)."""


@dataclass(frozen=True)
class Profile:
    """One system: its names, its reference server, its embedded run, its configuration needs and checks."""

    name: str
    title: str
    layout: ServerLayout
    routes: Callable[[MockSettings], list[BaseRoute]]
    """The reference server's routes for this system."""
    embedded: Callable[[Profile, EmbeddedRun], Target]
    """Start the reference server, prepare keys, clients, PKI or tenants, and return the run's Target."""
    suites: tuple[str, ...]
    """Folders below suites/ whose checks apply to this profile."""
    client_auth: str
    """How the suite's client authenticates: private_key_jwt, client_secret_basic, udap or ccde."""
    needs: ConfigNeeds = ConfigNeeds()
    order: int = 100
    """Where the profile is listed (help texts, `conformance variations`); the lowest is the default."""
    aliases: tuple[str, ...] = ()
    """Other names accepted for it (the reference server's system name, for instance)."""
    on_app: Callable[[MockContext], None] | None = None
    """Extra wiring of a new reference-server context (CCDE: tokens end with their authorization)."""
    probe_token: Callable[[Target, str], Exchange | None] | None = None
    """The diagnosis' token request with the configured credentials; None: this profile is not probed."""
    preflight: Callable[[Target], str | None] | None = None
    """Before the checks of a configured target: one line saying why the credentials cannot be used, or None."""
    serve_prepare: Callable[[ServeOptions], Callable[[MockSettings], None]] | None = None
    """`conformance mock`: what to do once the server's URLs are known (issue a certificate, say)."""
    serve_banner: Callable[[MockServer, ServeOptions, list[str]], list[str]] = default_banner
    secret_client: Callable[[str, str, list[str]], Client] | None = None
    """`conformance mock --client-secret-env`: a client that authenticates with a secret; None: unsupported."""
    key_material: KeyMaterial | None = None
    """The keys its embedded run loads from the keys directory (made once per machine); None: it needs none."""

    # The reference server's view of the profile (conformance.mock.settings.ServerSystem).
    def server_routes(self, settings: MockSettings) -> list[BaseRoute]:
        return self.routes(settings)

    def install(self, ctx: MockContext) -> None:
        if self.on_app is not None:
            self.on_app(ctx)

    def server_settings(
        self, faults: Iterable[str] = (), variations: Iterable[str] = (), **overrides: Any
    ) -> MockSettings:
        """Reference-server settings for this system, with the named faults and variations on.

        A variation that is a setting (an advertisement shape, say) brings its setting along;
        explicit overrides win.
        """
        chosen = VariationSet(variations)
        implied = {k: v for name in sorted(chosen.names) for k, v in VARIATIONS[name].settings}
        return MockSettings(system=self, faults=FaultSet(faults), variations=chosen, **{**implied, **overrides})

    def start_embedded(self, run: EmbeddedRun) -> Target:
        return self.embedded(self, run)

    @property
    def faults(self) -> list[Fault]:
        """The faults of the fault table that apply to this profile."""
        return [fault for fault in FAULTS.values() if self.name in fault.profiles]

    @property
    def variations(self) -> list[Variation]:
        """The compliant variations of the variation table that apply to this profile."""
        return [variation for variation in VARIATIONS.values() if self.name in variation.profiles]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def embedded_config(run: EmbeddedRun, server: MockServer, profile: Profile, **values: Any) -> TargetConfig:
    """The TargetConfig of an embedded run: the server's base URL plus the user's HTTP limits."""
    base = run.template
    if values.get("patient_id") and "reads" not in values:
        values["reads"] = [ProtectedRead(f"Patient/{values['patient_id']}")]
    return TargetConfig(
        base_url=server.fhir_base,
        profile=profile.name,
        timeout=base.timeout if base else TargetConfig.timeout,
        max_body_bytes=base.max_body_bytes if base else TargetConfig.max_body_bytes,
        source="embedded reference server",
        **values,
    )


def target_for(server: MockServer, config: TargetConfig) -> Target:
    """The run's Target for an embedded server: its HTTP client, redactor, and who stops the server."""
    redactor = make_redactor(config)
    target = Target(config=config, http=make_http(config, redactor), redactor=redactor)
    target.closers.append(server.stop)
    return target
