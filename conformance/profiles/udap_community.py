"""The UDAP profiles' test trust community: CAs, the server's certificate, the client's identity.

The community (CAs and client certificates) is generated once, or loaded from
the keys directory; the server's signing certificate is issued for each run,
since its SAN must be the base URL, port included.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from conformance.core.config import UdapConfig
from conformance.crypto.pki import (
    CertifiedKey,
    PkiError,
    create_community,
    issue,
    load_anchors,
    load_certified_key,
    write_community,
    write_pem,
)
from conformance.flows import preflight, udap
from conformance.flows.target import Target, make_http, make_redactor
from conformance.mock import fhir
from conformance.mock.data import DEFAULT_PATIENT_ID
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings
from conformance.mock.systems import udap as udap_server
from conformance.mock.systems.udap import UdapServerSettings
from conformance.profiles.base import (
    EmbeddedRun,
    KeyMaterial,
    Profile,
    ProfileSetupError,
    ServeOptions,
    embedded_config,
    made_here,
    mark_made_here,
)

CLIENT_URI = "https://conformance.example.org/client"
COMMUNITY = "urn:conformance:test-community"
Preparer = Callable[[MockSettings], None]
Endpoint = Callable[[Request], Awaitable[Response]]
MEMBERS = ("root", "intermediate", "client", "other", "lifecycle", "expired", "untrusted_root", "untrusted")


def _save(directory: Path, members: dict[str, CertifiedKey]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, certified in members.items():
        write_pem(directory / f"{name}-cert.pem", certified.certificate_pem(), secret=False, overwrite=True)
        write_pem(directory / f"{name}-key.pem", certified.private_key_pem(), secret=True, overwrite=True)


def community(directory: Path | None = None) -> dict[str, CertifiedKey]:
    """The test community's members, loaded from `directory` when all are there, else made (and saved)."""
    if directory is not None and all((directory / f"{m}-cert.pem").exists() for m in MEMBERS):
        trusted = made_here(directory)
        return {
            m: load_certified_key(directory / f"{m}-cert.pem", directory / f"{m}-key.pem", trusted=trusted)
            for m in MEMBERS
        }
    pki = create_community(CLIENT_URI, ["http://127.0.0.1/fhir"])
    members = {
        "root": pki.root,
        "intermediate": pki.intermediate,
        "client": pki.client,
        "other": pki.other_client,
        "lifecycle": issue(
            pki.intermediate, common_name="conformance lifecycle client", san_uris=[f"{CLIENT_URI}/lifecycle"]
        ),
        "expired": pki.expired_client,
        "untrusted_root": pki.untrusted_root,
        "untrusted": pki.untrusted_client,
    }
    if directory is not None:
        _save(directory, members)
        mark_made_here(directory)  # every member there is this tool's own
    return members


FRESH_FOR = timedelta(days=7)
"""A kept community whose certificates expire sooner than this is made again."""


def _community_fresh(directory: Path) -> bool:
    members = directory / "udap"
    if not all((members / f"{m}-{kind}.pem").is_file() for m in MEMBERS for kind in ("cert", "key")):
        return False
    soon = datetime.now(UTC) + FRESH_FOR
    for member in MEMBERS:
        if member == "expired":
            continue  # expired on purpose
        try:
            certificate = x509.load_pem_x509_certificate((members / f"{member}-cert.pem").read_bytes())
        except (OSError, ValueError):
            return False
        if certificate.not_valid_after_utc < soon:
            return False
    return True


KEYS = KeyMaterial(make=lambda directory: community(directory / "udap"), fresh=_community_fresh)
"""The test community, kept in the keys directory's udap/ folder (the embedded runs load it from there)."""


def server_certificate(members: dict[str, CertifiedKey], fhir_base: str) -> CertifiedKey:
    """The certificate that signs this run's signed_metadata: its SAN is the base URL exactly."""
    return issue(members["intermediate"], common_name="conformance reference server", san_uris=[fhir_base])


def client_identity(members: dict[str, CertifiedKey]) -> UdapConfig:
    return UdapConfig(
        client=members["client"],
        anchors=[members["root"].certificate],
        client_uri=CLIENT_URI,
        community=COMMUNITY,
        organization_id="https://conformance.example.org/organization/1",
        organization_name="Conformance Test Organization",
        registration="new",
        fixtures={name: members[name] for name in ("other", "lifecycle", "expired", "untrusted")},
    )


def routes(settings: MockSettings, metadata: Endpoint, *, require_explicit_json: bool = False) -> list[BaseRoute]:
    """The UDAP server's routes: CapabilityStatement, /.well-known/udap, registration, token, FHIR reads."""
    base = settings.fhir_path
    return [
        Route(f"{base}/metadata", metadata, methods=["GET"]),
        Route(f"{base}/.well-known/udap", udap_server.udap_metadata, methods=["GET"]),
        Route(settings.register_path, udap_server.register, methods=["POST"]),
        Route(settings.token_path, udap_server.udap_token, methods=["GET", "POST"]),
        Route(base + "/{type}/{id}", fhir.make_read(require_explicit_json=require_explicit_json), methods=["GET"]),
        Route(base + "/{type}", fhir.make_search(require_explicit_json=require_explicit_json), methods=["GET"]),
    ]


def start_embedded(
    profile: Profile, run: EmbeddedRun, *, require_b2b: bool, patient_id: str = DEFAULT_PATIENT_ID
) -> Target:
    """The server trusts the test community; the suite registers itself during the run."""
    members = community(run.keys_dir / "udap" if run.keys_dir else None)
    identity = client_identity(members)

    def prepare(settings: MockSettings) -> None:
        settings.udap = UdapServerSettings(
            signer=server_certificate(members, settings.fhir_base),
            anchors=identity.anchors,
            community=COMMUNITY,
            version=identity.version,
            require_b2b=require_b2b,
            extra_certs={"wrong-san": members["other"], "untrusted": members["untrusted"]},
        )

    server = MockServer(
        profile.server_settings(run.faults, run.variations, **run.mock_settings), prepare=prepare
    ).start()
    config = embedded_config(run, server, profile, patient_id=patient_id, udap=identity, scopes=list(identity.scopes))
    redactor = make_redactor(config)
    for certified in members.values():
        redactor.add_secret(certified.private_key_pem().decode())
    target = Target(config=config, http=make_http(config, redactor), redactor=redactor)
    target.closers.append(server.stop)
    return target


def serve_preparer(options: ServeOptions, *, require_b2b: bool) -> Preparer:
    """`conformance mock`: load (or create) the test community and give the server its signing certificate."""
    directory = options.pki

    def prepare(bound: MockSettings) -> None:
        try:
            if not (directory / "server-cert.pem").exists():
                made = create_community("https://client.example.org/conformance", [bound.fhir_base])
                write_community(made, directory)
                print(f"  made a test community in {directory}/ (client SAN https://client.example.org/conformance)")
            signer = load_certified_key(directory / "server-cert.pem", directory / "server-key.pem")
            anchors = load_anchors([directory / "community-root.pem"])
        except PkiError as exc:
            raise ProfileSetupError(str(exc)) from None
        if bound.fhir_base not in signer.san_uris():
            print(
                f"  warning: the server certificate's SAN {signer.san_uris()} is not {bound.fhir_base}; "
                "signed_metadata will fail iss checks (re-run `conformance pki init` with --server-uri)",
                file=sys.stderr,
            )
        bound.udap = UdapServerSettings(signer=signer, anchors=anchors, require_b2b=require_b2b)

    return prepare


def serve_banner(server: MockServer, options: ServeOptions, registered: list[str]) -> list[str]:
    return [
        f"  token endpoint: {server.settings.token_url}",
        f"  clients register themselves (UDAP); trust anchor: {options.pki / 'community-root.pem'}",
    ]


def preflight_check(target: Target) -> str | None:
    """The UDAP metadata lists RS256 among the token endpoint's signing algorithms (the suite signs its x5c
    assertions with it; UDAP makes RS256 mandatory to support), and its token endpoint answers."""
    exchange = udap.get_udap_metadata(target.http, target.base_url, purpose="preflight: read UDAP metadata")
    if exchange.status is None:
        return preflight.unusable_connection(exchange)  # unreachable: the outage watcher reports it
    body = exchange.json_object() or {}
    algorithms = body.get("token_endpoint_auth_signing_alg_values_supported")
    if isinstance(algorithms, list) and algorithms and "RS256" not in algorithms:
        return (
            "credentials unusable: the UDAP metadata's token_endpoint_auth_signing_alg_values_supported lists "
            f"{', '.join(str(a) for a in algorithms)}, not RS256, the algorithm the suite signs with"
        )
    token_url, where = preflight.token_url_of(
        target.base_url, target.config.token_url, body.get("token_endpoint"), ".well-known/udap"
    )
    return preflight.silent_token_url(target.http, token_url, where)
