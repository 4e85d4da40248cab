"""The target configuration model: what a run knows about the server under test and the client it plays.

Loading and validating it from TOML, environment and flags is the runner's job
(conformance.runner.configuration), because which options a profile needs is
the profile registry's knowledge.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from conformance.crypto.jose import ClientKey
from conformance.crypto.pki import CertifiedKey

DEFAULT_SECRET_ENV = "CONFORMANCE_CLIENT_SECRET"


class ConfigError(Exception):
    """A usage or configuration mistake; the CLI prints it on one line and exits 2."""


SMALL_FILE_LIMIT = 10 * 1024 * 1024
"""Waivers, baselines and other inputs a person writes or a run produced: far below this."""


def read_small_file(path: Path, what: str, limit: int = SMALL_FILE_LIMIT) -> str:
    """A UTF-8 text file of bounded size, every failure a ConfigError naming it (`what`: "waivers file")."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory; name a file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(f"{what} {path} is larger than {limit // (1024 * 1024)} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


UDAP_VERSIONS = ("STU1.0", "STU1.1", "STU2")
UDAP_FIXTURES = ("other", "lifecycle", "expired", "untrusted")


@dataclass
class UdapConfig:
    """The client's place in a UDAP trust community, and the IG version the checks follow."""

    client: CertifiedKey
    anchors: list[x509.Certificate]
    client_uri: str
    version: str = "STU2"
    community: str | None = None
    organization_id: str = "https://conformance.example.org/organization"
    organization_name: str = "fhir-b2b-conformance"
    purpose_of_use: list[str] = field(default_factory=lambda: ["urn:oid:2.16.840.1.113883.5.8#TREAT"])
    scopes: list[str] = field(default_factory=lambda: ["system/Patient.read", "system/Observation.read"])
    registration_content_type: str = "application/json"
    registration: str = "either"
    """'new' when the client's iss was never registered (a 201 is then required), else 'either' (200 or 201)."""
    fixtures: dict[str, CertifiedKey] = field(default_factory=dict)
    """Optional certificates for negative checks: other (trusted, another SAN), lifecycle, expired, untrusted."""

    @property
    def stu2(self) -> bool:
        return self.version == "STU2"


@dataclass(frozen=True)
class ProtectedRead:
    """A request the client is allowed to make at the FHIR API, with the headers it needs."""

    path: str
    """Relative to the FHIR base, e.g. Patient/123 or Group/abc/$export."""
    headers: tuple[tuple[str, str], ...] = (("Accept", "application/fhir+json"),)

    @property
    def resource_type(self) -> str | None:
        """The FHIR type the request reaches (Patient for Patient/123 or Patient?name=x), None for a system-level
        operation such as $export: scope checks need it to ask for a token that does or does not cover it."""
        head = re.split(r"[/?]", self.path, maxsplit=1)[0]
        return head if re.fullmatch(r"[A-Z][A-Za-z]+", head) else None

    @property
    def instance_id(self) -> str | None:
        """The id of a plain instance read (Type/id), None for searches and operations."""
        match = re.fullmatch(r"[A-Z][A-Za-z]+/([A-Za-z0-9\-.]{1,64})", self.path)
        return match.group(1) if match else None


@dataclass(frozen=True)
class JwksHostConfig:
    """Where the suite serves a client's JWKS so it can rotate keys during the run."""

    listen_host: str
    listen_port: int
    public_url: str
    client_id: str


@dataclass
class TargetConfig:
    """Everything a run needs to know about the server under test and the client it plays."""

    base_url: str | None
    profile: str
    """The profile's canonical name (conformance.profiles)."""
    patient_id: str | None = None
    client_id: str | None = None
    keys: list[ClientKey] = field(default_factory=list)
    jwks_url: str | None = None
    other_client_id: str | None = None
    other_client_key: ClientKey | None = None
    expiry_client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    special_client_id: str | None = None
    """client-secret profile: a client whose secret needs form-urlencoding (':', '+', '%', non-ASCII)."""
    special_client_secret: str | None = field(default=None, repr=False)
    other_tenant_base_url: str | None = None
    """A FHIR base of another tenant, which this client's tokens must not read."""
    token_url: str | None = None
    """The token URL the client was given (diagnosis compares it with what discovery advertises)."""
    udap: UdapConfig | None = None
    scopes: list[str] = field(default_factory=lambda: ["system/Patient.read"])
    reads: list[ProtectedRead] = field(default_factory=list)
    """Protected requests the bearer and scope checks use (default: Patient/{patient_id})."""
    v2_scopes: list[str] = field(default_factory=list)
    """SMART v2 scopes the client is authorized for (the v2 check asks for the first; none: not applicable)."""
    unauthorized_scope: str = "system/Practitioner.read"
    timeout: float = 10.0
    verify_tls: bool = True
    ca_bundle: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)
    secret_headers: list[str] = field(default_factory=list)
    max_body_bytes: int = 2 * 1024 * 1024
    proxy: str | None = None
    """http.proxy: a proxy URL, or "none"; unset, HTTPS_PROXY / HTTP_PROXY / NO_PROXY decide."""
    retry_attempts: int = 2
    """Retries of one request the target answered 429 (or 503 with Retry-After)."""
    retry_budget: float = 60.0
    """Seconds a whole run may spend waiting for a rate-limiting target."""
    max_rps: float | None = None
    """At most this many requests per second (None: no pacing)."""
    concurrency: int = 8
    """At most this many independent requests in flight at once (1: one after another)."""
    expiry_wait: float = 0.0
    jwks_host: JwksHostConfig | None = None
    source: str = "defaults"

    @property
    def embedded(self) -> bool:
        """No target URL: the run certifies the bundled reference server."""
        return self.base_url is None

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    def key_for(self, alg: str) -> ClientKey | None:
        return next((k for k in self.keys if k.alg == alg), None)

    @property
    def verify(self) -> bool | str:
        if not self.verify_tls:
            return False
        return str(self.ca_bundle) if self.ca_bundle else True


def is_loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
