"""SMART Backend Services: client_credentials with a private_key_jwt client assertion (RS384 / ES384)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Route

from conformance.core.jwks_host import JwksHost
from conformance.core.recording import Exchange
from conformance.crypto.jose import ClientKey, generate_ec, generate_rsa, jwks, load_key
from conformance.flows import oauth, preflight
from conformance.flows.target import JwksUrlClient, Target, make_http, make_redactor
from conformance.mock import fhir
from conformance.mock import oauth as mock_oauth
from conformance.mock.data import DEFAULT_PATIENT_ID
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.store import Client
from conformance.mock.systems import smart, smart_registration
from conformance.profiles.base import (
    ConfigNeeds,
    EmbeddedRun,
    KeyMaterial,
    Profile,
    embedded_config,
    made_here,
    mark_made_here,
)

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
    trusted = directory is not None and made_here(directory)
    fresh = directory is not None and not any((directory / f"{name}.pem").exists() for name in KEY_NAMES)
    for name, alg in KEY_NAMES.items():
        path = directory / f"{name}.pem" if directory else None
        if path is not None and path.exists():
            keys[name] = load_key(path, kid=name, trusted=trusted)
            continue
        keys[name] = generate_ec(kid=name) if alg == "ES384" else generate_rsa(kid=name)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(keys[name].private_pem())
    if directory is not None and fresh:
        mark_made_here(directory)  # every key there is this tool's own
    return keys


def _keys_complete(directory: Path) -> bool:
    return all((directory / f"{name}.pem").is_file() for name in KEY_NAMES)


KEYS = KeyMaterial(make=embedded_keys, fresh=_keys_complete)


def routes(settings: MockSettings) -> list[BaseRoute]:
    base = settings.fhir_path
    return [
        Route(f"{base}/metadata", smart.metadata, methods=["GET"]),
        Route(f"{base}/.well-known/smart-configuration", smart.smart_configuration, methods=["GET"]),
        Route("/token", mock_oauth.token_endpoint(mock_oauth.private_key_jwt), methods=["GET", "POST"]),
        Route("/register", smart_registration.register, methods=["POST"]),
        Route(base + "/{type}/{id}", fhir.make_read(), methods=["GET"]),
        Route(base + "/{type}", fhir.make_search(), methods=["GET"]),
    ]


def start_embedded(profile: Profile, run: EmbeddedRun) -> Target:
    """Register the suite's clients (two keys, another client, a JWKS-URL client, a short-lived one)."""
    keys = embedded_keys(run.keys_dir)
    jwks_host = JwksHost()
    server = MockServer(profile.server_settings(run.faults, run.variations, **run.mock_settings)).start()
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

    config = embedded_config(
        run,
        server,
        profile,
        patient_id=DEFAULT_PATIENT_ID,
        client_id=CLIENT_ID,
        keys=main_keys,
        other_client_id=OTHER_CLIENT_ID,
        expiry_client_id=EXPIRY_CLIENT_ID,
        scopes=["system/Patient.read", "system/Observation.read"],
        v2_scopes=["system/Patient.rs"],
        unauthorized_scope="system/Practitioner.read",
        expiry_wait=EXPIRY_TOKEN_LIFETIME + 1,
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


def probe_token(target: Target, token_url: str) -> Exchange | None:
    """The diagnosis' token request: a client assertion signed with the first configured key."""
    config = target.config
    key = config.keys[0] if config.keys else None
    if not config.client_id or key is None:
        return None
    return oauth.request_token(
        target.http,
        token_url,
        key,
        client_id=config.client_id,
        scope=config.scope,
        purpose="diagnosis: token request with the configured client assertion",
    )


def preflight_check(target: Target) -> str | None:
    """A configured key with an algorithm the server advertises, and a token URL that answers."""
    exchange, body = preflight.smart_configuration(target.http, target.base_url)
    if exchange.status is None:
        return preflight.unusable_connection(exchange)  # unreachable: the outage watcher reports it
    problem = preflight.unusable_keys(
        target.config.keys,
        body.get("token_endpoint_auth_signing_alg_values_supported"),
        "token_endpoint_auth_signing_alg_values_supported in .well-known/smart-configuration",
    )
    token_url, where = preflight.token_url_of(
        target.base_url, target.config.token_url, body.get("token_endpoint"), ".well-known/smart-configuration"
    )
    return problem or preflight.silent_token_url(target.http, token_url, where)


PROFILE = Profile(
    order=0,
    name="smart-backend",
    title="SMART Backend Services (private_key_jwt)",
    layout=ServerLayout(),
    routes=routes,
    embedded=start_embedded,
    suites=("discovery", "format", "scopes", "smart_registration", "token"),
    client_auth="private_key_jwt",
    needs=ConfigNeeds(client_id=True, private_key=True),
    probe_token=probe_token,
    preflight=preflight_check,
    key_material=KEYS,
)
