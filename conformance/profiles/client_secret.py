"""Cerner system accounts: client_secret_basic at a separate, tenant-scoped authorization server."""

from __future__ import annotations

import secrets

from starlette.routing import BaseRoute, Mount, Route, Router

from conformance.core.recording import Exchange
from conformance.flows import oauth, preflight
from conformance.flows.target import Target
from conformance.mock.app import PortDispatch
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.store import Client
from conformance.mock.systems import cerner_system
from conformance.mock.systems.cerner_system import TENANT_A, TENANT_B
from conformance.profiles.base import ConfigNeeds, EmbeddedRun, Profile, ServeOptions, embedded_config, target_for

SECRET_CLIENT_ID = "0f9b8c7e-2a61-4d1e-9c5b-7a3e2f1d4c88"
SPECIAL_CLIENT_ID = "conformance special:client"
SPECIAL_SECRET = "p:a+s%s w\u00f6rd=&"
"""A secret needing RFC 6749 §2.3.1 form-urlencoding before base64: colon, plus, percent, space, non-ASCII."""
SCOPES = ["system/Patient.read", "system/Observation.read"]


def routes(settings: MockSettings) -> list[BaseRoute]:
    fhir_routes = [
        Route("/r4/{tenant}/metadata", cerner_system.metadata, methods=["GET"]),
        Route("/r4/{tenant}/.well-known/smart-configuration", cerner_system.smart_configuration, methods=["GET"]),
        Route("/r4/{tenant}/{type}/{id}", cerner_system.make_fhir("read"), methods=["GET"]),
        Route("/r4/{tenant}/{type}", cerner_system.make_fhir("search"), methods=["GET"]),
    ]
    auth_routes = [
        Route(cerner_system.TOKEN_PATH, cerner_system.token, methods=["GET", "POST"]),
        Route("/errors/{reason}/instances/{instance}", cerner_system.error_page, methods=["GET"]),
    ]
    return [Mount("", app=PortDispatch(settings, Router(fhir_routes), Router(auth_routes)))]


def secret_client(client_id: str, secret: str, scopes: list[str]) -> Client:
    """A system account of the first tenant that authenticates with HTTP Basic."""
    return Client(client_id, auth_method="client_secret_basic", secret=secret, scopes=scopes, tenant=TENANT_A)


def start_embedded(profile: Profile, run: EmbeddedRun) -> Target:
    """Two tenants; a client with a random secret and one whose secret needs form-urlencoding."""
    server = MockServer(profile.server_settings(run.faults, run.variations, **run.mock_settings)).start()
    # Random, with characters that change under form-, percent- and JSON-encoding, so every run proves the
    # suite masks the secret in each encoding it sends (and a target might echo).
    secret = secrets.token_urlsafe(18) + '+/=&%:"'
    store = server.ctx.store
    store.put_client(secret_client(SECRET_CLIENT_ID, secret, SCOPES))
    store.put_client(secret_client(SPECIAL_CLIENT_ID, SPECIAL_SECRET, SCOPES))
    config = embedded_config(
        run,
        server,
        profile,
        patient_id="1",
        client_id=SECRET_CLIENT_ID,
        client_secret=secret,
        special_client_id=SPECIAL_CLIENT_ID,
        special_client_secret=SPECIAL_SECRET,
        other_tenant_base_url=server.fhir_base.replace(TENANT_A, TENANT_B),
        scopes=list(SCOPES),
        unauthorized_scope="system/Practitioner.read",
    )
    return target_for(server, config)


def probe_token(target: Target, token_url: str) -> Exchange | None:
    """The diagnosis' token request: HTTP Basic with the configured client id and secret."""
    config = target.config
    if not config.client_id or not config.client_secret:
        return None
    return oauth.request_token_basic(
        target.http,
        token_url,
        config.client_id,
        config.client_secret,
        scope=config.scope,
        purpose="diagnosis: token request with the configured client id and secret",
    )


def serve_banner(server: MockServer, options: ServeOptions, registered: list[str]) -> list[str]:
    return [
        f"  token endpoint: {cerner_system.token_url(server.ctx, TENANT_A)} (authorization server)",
        f"  clients: {', '.join(registered) or 'none (use --clients or --register-client)'}",
    ]


def preflight_check(target: Target) -> str | None:
    """The token URL the checks will use (from discovery, else the configured one) answers."""
    exchange, body = preflight.smart_configuration(target.http, target.base_url)
    if exchange.status is None:
        problem = preflight.unusable_connection(exchange)
        if problem is not None or target.config.token_url is None:
            return problem  # unreachable: the outage watcher reports it
    token_url, where = preflight.token_url_of(
        target.base_url, target.config.token_url, body.get("token_endpoint"), ".well-known/smart-configuration"
    )
    return preflight.silent_token_url(target.http, token_url, where)


PROFILE = Profile(
    order=3,
    name="client-secret",
    title="Cerner system accounts (client_secret_basic)",
    aliases=("cerner-system-account",),
    layout=ServerLayout(fhir_path=f"/r4/{TENANT_A}", separate_auth_server=True),
    routes=routes,
    embedded=start_embedded,
    suites=("client_secret",),
    client_auth="client_secret_basic",
    needs=ConfigNeeds(client_id=True, client_secret=True),
    probe_token=probe_token,
    preflight=preflight_check,
    serve_banner=serve_banner,
    secret_client=secret_client,
)
