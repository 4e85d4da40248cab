"""Shared UDAP exchanges: metadata, the client's registration and a token, each performed once per session."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import UdapConfig
from conformance.core.recording import Exchange
from conformance.flows import discovery, oauth, udap
from conformance.flows.carequality import OVERRIDE_HEADER, CarequalityEndpoints, find_endpoints
from conformance.flows.oauth import TokenGrant
from conformance.flows.target import Target


@pytest.fixture(scope="session")
def udap_config(target: Target) -> UdapConfig:
    expect.applicable(target.config.udap, "the target is not configured for UDAP ([udap] section)")
    assert target.config.udap is not None
    return target.config.udap


@pytest.fixture(scope="session")
def udap_client(udap_config: UdapConfig) -> udap.UdapClient:
    return udap.UdapClient(
        certified=udap_config.client,
        client_uri=udap_config.client_uri,
        b2b=udap.B2B(udap_config.organization_id, udap_config.organization_name, tuple(udap_config.purpose_of_use)),
        scope=" ".join(udap_config.scopes),
    )


@pytest.fixture(scope="session")
def udap_metadata_exchange(target: Target) -> Exchange:
    return udap.get_udap_metadata(target.http, target.base_url)


@pytest.fixture(scope="session")
def udap_metadata(udap_metadata_exchange: Exchange) -> dict[str, Any]:
    return expect.document(udap_metadata_exchange, "a UDAP metadata JSON object from /.well-known/udap")


@pytest.fixture(scope="session")
def capability_override_exchange(target: Target) -> Exchange:
    """The CapabilityStatement asked for with Cerner's override header (one of the Carequality shapes)."""
    return discovery.get_capability_statement(target.http, target.base_url, headers={OVERRIDE_HEADER: "on"})


@pytest.fixture(scope="session")
def carequality_endpoints(
    capability_exchange: Exchange, capability_override_exchange: Exchange
) -> CarequalityEndpoints | None:
    expect.answered(capability_exchange)
    return find_endpoints(capability_exchange.json_object(), capability_override_exchange.json_object())


@pytest.fixture(scope="session")
def udap_endpoints(
    target: Target, udap_metadata_exchange: Exchange, carequality_endpoints: CarequalityEndpoints | None
) -> tuple[str, str, str]:
    """(registration URL, token URL, where they were found): UDAP metadata first, else the CapabilityStatement."""
    metadata = udap_metadata_exchange.json_object() if udap_metadata_exchange.status == 200 else None
    base = target.base_url.rstrip("/") + "/"
    if (
        metadata
        and isinstance(metadata.get("registration_endpoint"), str)
        and isinstance(metadata.get("token_endpoint"), str)
    ):
        # Lenient like a client: a relative URL is resolved (the discovery checks still report it).
        register = discovery.resolve(base, metadata["registration_endpoint"])
        token = discovery.resolve(base, metadata["token_endpoint"])
        expect.precondition(register and token, "the UDAP metadata's endpoint URLs are unusable")
        assert register is not None and token is not None
        return register, token, "/.well-known/udap"
    found = carequality_endpoints
    expect.precondition(found and found.complete, "no UDAP registration and token endpoints were found")
    assert found is not None and found.register and found.token
    return found.register, found.token, f"CapabilityStatement ({found.shape})"


@pytest.fixture(scope="session")
def registration_url(udap_endpoints: tuple[str, str, str]) -> str:
    return udap_endpoints[0]


@pytest.fixture(scope="session")
def udap_token_url(udap_endpoints: tuple[str, str, str]) -> str:
    return udap_endpoints[1]


@pytest.fixture(scope="session")
def udap_registration(
    target: Target, udap_client: udap.UdapClient, udap_config: UdapConfig, registration_url: str
) -> udap.Registration:
    """The client registers itself once; every later UDAP check builds on this."""
    statement = udap.jwt_with_x5c(udap_client.certified, udap.software_statement_claims(udap_client, registration_url))
    exchange = udap.register(
        target.http,
        registration_url,
        udap.registration_body(statement),
        content_type=udap_config.registration_content_type,
        purpose="register the client (software statement)",
    )
    return udap.Registration(exchange, statement)


@pytest.fixture(scope="session")
def udap_client_id(udap_registration: udap.Registration) -> str:
    expect.answered(udap_registration.exchange)
    client_id = udap_registration.client_id
    expect.precondition(
        client_id, f"registration issued no client_id ({expect.describe(udap_registration.exchange, 160)})"
    )
    assert client_id is not None
    return client_id


def b2b_for(target: Target, udap_client: udap.UdapClient) -> dict[str, Any] | None:
    """The hl7-b2b object to send: always for UDAP, only if the server asks for it in the Carequality profile."""
    return udap_client.b2b.extension() if target.config.profile == "udap" else None


@pytest.fixture(scope="session")
def udap_grant(target: Target, udap_client: udap.UdapClient, udap_client_id: str, udap_token_url: str) -> TokenGrant:
    claims = udap.authentication_claims(udap_client_id, udap_token_url, b2b_for(target, udap_client))
    assertion = udap.jwt_with_x5c(udap_client.certified, claims)
    exchange = oauth.post_token(
        target.http, udap_token_url, udap.token_form(assertion, udap_client.scope), purpose="UDAP token request"
    )
    return TokenGrant.of(exchange)


@pytest.fixture(scope="session")
def udap_access_token(udap_grant: TokenGrant) -> str:
    expect.answered(udap_grant.exchange)
    expect.precondition(udap_grant.access_token, f"no UDAP access token ({expect.describe(udap_grant.exchange, 160)})")
    assert udap_grant.access_token is not None
    return udap_grant.access_token
