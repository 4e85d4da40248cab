"""The embedded run: start the reference server, register the suite's own clients, point the run at it.

This is what `conformance run` does when no target is configured, so a fresh
install can certify the bundled server (and show what a passing run looks
like) without any setup. Keys are generated once per run, or loaded from a
directory so that repeated runs (the fault matrix) skip key generation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conformance.config import TargetConfig
from conformance.jose import ClientKey, generate_ec, generate_rsa, jwks, load_key
from conformance.jwks_host import JwksHost
from conformance.mock.data import CERNER_PATIENT_ID, DEFAULT_PATIENT_ID
from conformance.mock.faults import FaultSet
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings
from conformance.mock.store import Client
from conformance.target import JwksUrlClient, Target, make_http, make_redactor

CLIENT_ID = "conformance-client"
OTHER_CLIENT_ID = "conformance-other-client"
JWKS_URL_CLIENT_ID = "conformance-jwks-url-client"
EXPIRY_CLIENT_ID = "conformance-expiry-client"
CLIENT_SCOPES = ["system/Patient.rs", "system/Observation.rs"]
EXPIRY_TOKEN_LIFETIME = 1

KEY_NAMES = {
    "client-rs384": "RS384",
    "client-es384": "ES384",
    "other-rs384": "RS384",
    "jwks-url-rs384": "RS384",
    "jwks-url-spare-rs384": "RS384",
    "attacker-rs384": "RS384",
}


def embedded_keys(directory: Path | None = None) -> dict[str, ClientKey]:
    """The run's keys: loaded from `directory` when present there, else generated (and saved there)."""
    keys: dict[str, ClientKey] = {}
    for name, alg in KEY_NAMES.items():
        path = directory / f"{name}.pem" if directory else None
        if path is not None and path.exists():
            keys[name] = load_key(path, kid=name)
            continue
        keys[name] = generate_ec(kid=name) if alg == "ES384" else generate_rsa(kid=name)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(keys[name].private_pem())
    return keys


def start_embedded(
    profile: str = "smart-backend",
    *,
    faults: Iterable[str] = (),
    keys_dir: Path | None = None,
    template: TargetConfig | None = None,
    mock_settings: dict[str, Any] | None = None,
) -> Target:
    """Start the reference server with the suite's clients registered; return the run's Target."""
    if profile in ("udap", "cerner-carequality"):
        return start_embedded_udap(
            profile, faults=faults, keys_dir=keys_dir, template=template, mock_settings=mock_settings
        )
    if profile == "client-secret":
        return start_embedded_client_secret(faults=faults, template=template, mock_settings=mock_settings)
    if profile == "ccde":
        from conformance.embedded_ccde import start_embedded_ccde

        return start_embedded_ccde(faults=faults, template=template, mock_settings=mock_settings)
    keys = embedded_keys(keys_dir)
    jwks_host = JwksHost()
    settings = MockSettings(profile=profile, faults=FaultSet(faults), **(mock_settings or {}))
    server = MockServer(settings).start()
    store = server.ctx.store
    main_keys = [keys["client-rs384"], keys["client-es384"]]
    store.put_client(Client(CLIENT_ID, jwks=jwks(main_keys), scopes=CLIENT_SCOPES))
    store.put_client(Client(OTHER_CLIENT_ID, jwks=jwks([keys["other-rs384"]]), scopes=CLIENT_SCOPES))
    store.put_client(
        Client(EXPIRY_CLIENT_ID, jwks=jwks(main_keys), scopes=CLIENT_SCOPES, token_lifetime=EXPIRY_TOKEN_LIFETIME)
    )
    jwks_client = JwksUrlClient(
        JWKS_URL_CLIENT_ID,
        jwks_host,
        "jwks-url-client",
        [keys["jwks-url-rs384"]],
        keys["jwks-url-spare-rs384"],
    )
    jwks_client.publish(jwks_client.keys)
    store.put_client(Client(JWKS_URL_CLIENT_ID, jwks_uri=jwks_client.url, scopes=CLIENT_SCOPES))

    base = template or TargetConfig(base_url=None)
    config = TargetConfig(
        base_url=server.fhir_base,
        profile=profile,
        patient_id=DEFAULT_PATIENT_ID,
        client_id=CLIENT_ID,
        keys=main_keys,
        other_client_id=OTHER_CLIENT_ID,
        expiry_client_id=EXPIRY_CLIENT_ID,
        scopes=["system/Patient.read", "system/Observation.read"],
        unauthorized_scope="system/Practitioner.read",
        timeout=base.timeout,
        max_body_bytes=base.max_body_bytes,
        expiry_wait=EXPIRY_TOKEN_LIFETIME + 1,
        source="embedded reference server",
    )
    redactor = make_redactor(config, list(keys.values()))
    target = Target(
        config=config,
        http=make_http(config, redactor),
        redactor=redactor,
        other_client_key=keys["other-rs384"],
        jwks_client=jwks_client,
        attacker_key=keys["attacker-rs384"],
        attacker_host=jwks_host,
    )
    target.closers += [server.stop, jwks_host.close]
    return target


def start_embedded_udap(
    profile: str,
    *,
    faults: Iterable[str] = (),
    keys_dir: Path | None = None,
    template: TargetConfig | None = None,
    mock_settings: dict[str, Any] | None = None,
) -> Target:
    """The UDAP profiles: the server trusts a test community; the suite registers itself during the run."""
    from conformance import embedded_udap
    from conformance.mock.udap_server import UdapServerSettings

    members = embedded_udap.community(keys_dir / "udap" if keys_dir else None)
    identity = embedded_udap.client_identity(members)

    def prepare(settings: MockSettings) -> None:
        settings.udap = UdapServerSettings(
            signer=embedded_udap.server_certificate(members, settings.fhir_base),
            anchors=identity.anchors,
            community=embedded_udap.COMMUNITY,
            version=identity.version,
            require_b2b=profile == "udap",
            extra_certs={"wrong-san": members["other"], "untrusted": members["untrusted"]},
        )

    settings = MockSettings(profile=profile, faults=FaultSet(faults), **(mock_settings or {}))
    server = MockServer(settings, prepare=prepare).start()
    base = template or TargetConfig(base_url=None)
    config = TargetConfig(
        base_url=server.fhir_base,
        profile=profile,
        patient_id=CERNER_PATIENT_ID if profile == "cerner-carequality" else DEFAULT_PATIENT_ID,
        udap=identity,
        scopes=list(identity.scopes),
        timeout=base.timeout,
        max_body_bytes=base.max_body_bytes,
        source="embedded reference server",
    )
    redactor = make_redactor(config)
    for certified in members.values():
        redactor.add_secret(certified.private_key_pem().decode())
    target = Target(config=config, http=make_http(config, redactor), redactor=redactor)
    target.closers.append(server.stop)
    return target


SECRET_CLIENT_ID = "0f9b8c7e-2a61-4d1e-9c5b-7a3e2f1d4c88"
SPECIAL_CLIENT_ID = "conformance special:client"
SPECIAL_SECRET = "p:a+s%s w\u00f6rd=&"
"""A secret needing RFC 6749 §2.3.1 form-urlencoding before base64: colon, plus, percent, space, non-ASCII."""


def start_embedded_client_secret(
    *, faults: Iterable[str] = (), template: TargetConfig | None = None, mock_settings: dict[str, Any] | None = None
) -> Target:
    """Cerner system accounts: a separate authorization server, two tenants, clients with secrets."""
    import secrets

    from conformance.mock.cerner_system import TENANT_A, TENANT_B

    settings = MockSettings(profile="cerner-system-account", faults=FaultSet(faults), **(mock_settings or {}))
    server = MockServer(settings).start()
    secret = secrets.token_urlsafe(24)
    scopes = ["system/Patient.read", "system/Observation.read"]
    store = server.ctx.store
    store.put_client(
        Client(SECRET_CLIENT_ID, auth_method="client_secret_basic", secret=secret, scopes=scopes, tenant=TENANT_A)
    )
    store.put_client(
        Client(
            SPECIAL_CLIENT_ID, auth_method="client_secret_basic", secret=SPECIAL_SECRET, scopes=scopes, tenant=TENANT_A
        )
    )
    base = template or TargetConfig(base_url=None)
    config = TargetConfig(
        base_url=server.fhir_base,
        profile="client-secret",
        patient_id="1",
        client_id=SECRET_CLIENT_ID,
        client_secret=secret,
        special_client_id=SPECIAL_CLIENT_ID,
        special_client_secret=SPECIAL_SECRET,
        other_tenant_base_url=server.fhir_base.replace(TENANT_A, TENANT_B),
        scopes=scopes,
        unauthorized_scope="system/Practitioner.read",
        timeout=base.timeout,
        max_body_bytes=base.max_body_bytes,
        source="embedded reference server",
    )
    return target_for(server, config)


def target_for(server: MockServer, config: TargetConfig) -> Target:
    """The run's Target for an embedded server: its HTTP client, redactor, and who stops the server."""
    redactor = make_redactor(config)
    target = Target(config=config, http=make_http(config, redactor), redactor=redactor)
    target.closers.append(server.stop)
    return target
