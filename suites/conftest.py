"""Shared exchanges: each is performed once per session and read by many checks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import ProtectedRead
from conformance.core.recording import Exchange
from conformance.flows import discovery, oauth
from conformance.flows.discovery import Endpoints
from conformance.flows.expiry import LEEWAY_HINT, AfterTheEnd
from conformance.flows.target import Target

SIGNING_ALGS = ("RS384", "ES384")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Default report locations when the suites are run with plain pytest."""
    if getattr(config.option, "allure_report_dir", None) is None and hasattr(config.option, "allure_report_dir"):
        config.option.allure_report_dir = "reports/allure-results"
        config.option.clean_alluredir = True
    if getattr(config.option, "xmlpath", None) is None and not hasattr(config, "workerinput"):
        config.option.xmlpath = "reports/junit.xml"


def _selected_need(request: pytest.FixtureRequest, *fixtures: str) -> bool:
    """Whether the run's selected checks use every one of these fixtures (then sending them together wastes
    nothing; under -k a check that needs only one of them sends only that one)."""
    used = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    return all(name in used for name in fixtures)


@pytest.fixture(scope="session")
def discovery_documents(request: pytest.FixtureRequest, target: Target) -> dict[str, Exchange]:
    """The CapabilityStatement and smart-configuration, side by side when the run reads both."""
    if not _selected_need(request, "capability_exchange", "smart_config_exchange"):
        return {}
    return target.http.side_by_side(
        {
            "capability": lambda: discovery.get_capability_statement(target.http, target.base_url),
            "smart": lambda: discovery.get_smart_configuration(target.http, target.base_url),
        }
    )


@pytest.fixture(scope="session")
def capability_exchange(target: Target, discovery_documents: dict[str, Exchange]) -> Exchange:
    return discovery_documents.get("capability") or discovery.get_capability_statement(target.http, target.base_url)


@pytest.fixture(scope="session")
def capability(capability_exchange: Exchange) -> dict[str, Any]:
    """The parsed CapabilityStatement (checks that need it skip when it is missing)."""
    return expect.document(
        capability_exchange, "a CapabilityStatement from /metadata (see the discovery checks)", "CapabilityStatement"
    )


@pytest.fixture(scope="session")
def smart_config_exchange(target: Target, discovery_documents: dict[str, Exchange]) -> Exchange:
    return discovery_documents.get("smart") or discovery.get_smart_configuration(target.http, target.base_url)


@pytest.fixture(scope="session")
def smart_config(smart_config_exchange: Exchange) -> dict[str, Any]:
    return expect.document(smart_config_exchange, "a JSON object from /.well-known/smart-configuration")


@pytest.fixture(scope="session")
def endpoints(target: Target, smart_config_exchange: Exchange, capability_exchange: Exchange) -> Endpoints:
    expect.answered(smart_config_exchange)
    return discovery.resolve_token_endpoint(target.base_url, smart_config_exchange, capability_exchange)


@pytest.fixture(scope="session")
def token_url(endpoints: Endpoints) -> str:
    expect.precondition(endpoints.token_url, "no token endpoint was found in smart-configuration or oauth-uris")
    assert endpoints.token_url is not None
    return endpoints.token_url


@pytest.fixture(scope="session")
def signing_algs(smart_config_exchange: Exchange) -> list[str]:
    """The algorithms to test: those advertised (of RS384/ES384), or both when none are listed."""
    body = smart_config_exchange.json_object() or {}
    advertised = body.get("token_endpoint_auth_signing_alg_values_supported")
    if isinstance(advertised, list):
        return [alg for alg in SIGNING_ALGS if alg in advertised]
    return list(SIGNING_ALGS)


@pytest.fixture(scope="session")
def client_id(target: Target) -> str:
    expect.precondition(target.config.client_id, "no client id is configured (auth.client_id)")
    assert target.config.client_id is not None
    return target.config.client_id


@pytest.fixture(scope="session")
def signing_key(target: Target, signing_algs: list[str]) -> Any:
    """The key most checks sign with: the first configured key of an advertised algorithm."""
    key = next((k for k in target.config.keys if k.alg in signing_algs), None)
    expect.precondition(key, f"no configured key signs with an advertised algorithm ({', '.join(signing_algs)})")
    return key


def expect_refused_by_the_deadline(after: AfterTheEnd, title: str, refusal: str) -> None:
    """A credential still honoured at the deadline fails, saying how much leeway was allowed and how to allow
    more; the refusal itself is the caller's to judge."""
    if after.still_honoured:
        expect.fail(
            title,
            expected=f"{refusal}; {LEEWAY_HINT}",
            actual=expect.describe(after.last, 120),
            exchange=after.last,
        )


@dataclass
class ExpiryProbe:
    """A token from the short-lived client, taken early so it has expired by the time it is checked."""

    grant: oauth.TokenGrant | None
    obtained_at: float
    reason: str = ""


EXPIRY_PURPOSE = "token for the short-lived client (checked once expired)"
MAIN_PURPOSE = "get an access token for the configured scopes"


def _configured_token(target: Target, token_url: str, key: Any, client_id: str, purpose: str) -> Exchange:
    """A token request for the configured scopes."""
    return oauth.request_token(
        target.http, token_url, key, client_id=client_id, scope=target.config.scope, purpose=purpose
    )


@pytest.fixture(scope="session")
def first_tokens(request: pytest.FixtureRequest, target: Target, token_url: str, signing_key: Any) -> dict[str, Any]:
    """The run's token and the short-lived client's, side by side when the run uses both (the short-lived one
    is taken early so it has expired by the time its check runs); each with the time it was obtained."""
    client, short_lived = target.config.client_id, target.config.expiry_client_id
    if not (client and short_lived and _selected_need(request, "access_grant", "expiry_probe")):
        return {}

    def token(client_id: str, purpose: str) -> tuple[Exchange, float]:
        return _configured_token(target, token_url, signing_key, client_id, purpose), time.monotonic()

    return target.http.side_by_side(
        {
            "short-lived": lambda: token(short_lived, EXPIRY_PURPOSE),
            "main": lambda: token(client, MAIN_PURPOSE),
        }
    )


@pytest.fixture(scope="session")
def expiry_probe(target: Target, token_url: str, signing_key: Any, first_tokens: dict[str, Any]) -> ExpiryProbe:
    client = target.config.expiry_client_id
    if not client:
        return ExpiryProbe(None, 0.0, "no short-lived client is configured (auth.expiry_client_id)")
    if "short-lived" in first_tokens:
        exchange, obtained_at = first_tokens["short-lived"]
        return ExpiryProbe(oauth.TokenGrant.of(exchange), obtained_at)
    exchange = _configured_token(target, token_url, signing_key, client, EXPIRY_PURPOSE)
    return ExpiryProbe(oauth.TokenGrant.of(exchange), time.monotonic())


@pytest.fixture(scope="session")
def access_grant(
    target: Target,
    token_url: str,
    client_id: str,
    signing_key: Any,
    expiry_probe: ExpiryProbe,
    first_tokens: dict[str, Any],
) -> oauth.TokenGrant:
    """A token for the configured scopes; FHIR-side checks use it."""
    if "main" in first_tokens:
        exchange = first_tokens["main"][0]
    else:
        exchange = _configured_token(target, token_url, signing_key, client_id, MAIN_PURPOSE)
    grant = oauth.TokenGrant.of(exchange)
    expect.answered(exchange)
    expect.precondition(grant.access_token, f"no access token could be obtained ({expect.describe(exchange, 160)})")
    return grant


@pytest.fixture(scope="session")
def access_token(access_grant: oauth.TokenGrant) -> str:
    assert access_grant.access_token is not None
    return access_grant.access_token


@pytest.fixture(scope="session")
def patient_id(target: Target) -> str:
    expect.precondition(target.config.patient_id, "no patient id is configured (target.patient_id)")
    assert target.config.patient_id is not None
    return target.config.patient_id


@pytest.fixture(scope="session")
def protected_read(target: Target) -> ProtectedRead:
    """The first protected request the client may make (target.reads; by default Patient/{patient_id})."""
    expect.precondition(target.config.reads, "no protected read is configured (target.reads or target.patient_id)")
    return target.config.reads[0]


ReadWith = Callable[[str | None, str], Exchange]
"""Send the configured read with an Authorization value (or none) and a purpose."""


@pytest.fixture(scope="session")
def read_protected(target: Target, protected_read: ProtectedRead) -> ReadWith:
    def read(authorization: str | None, purpose: str) -> Exchange:
        headers = list(protected_read.headers) + ([("Authorization", authorization)] if authorization else [])
        return target.http.request("GET", f"{target.base_url}/{protected_read.path}", purpose=purpose, headers=headers)

    return read


@pytest.fixture(scope="session")
def existing_read(read_protected: ReadWith, access_token: str, protected_read: ProtectedRead) -> Exchange:
    """The configured read with the run's valid token. When it answers 404 there is nothing to protect: the checks
    that depend on it are not applicable, never failed."""
    exchange = expect.answered(read_protected(f"Bearer {access_token}", f"{protected_read.path} with the run's token"))
    expect.applicable(
        exchange.status != 404, f"the configured read {protected_read.path} answers 404 (set target.reads)"
    )
    return exchange


@pytest.fixture(scope="session")
def authorized_read(existing_read: Exchange, protected_read: ProtectedRead) -> Exchange:
    """The configured read, proven to work with the run's token: a refusal of a bad token then means something."""
    expect.precondition(
        existing_read.status is not None and 200 <= existing_read.status < 300,
        f"the run's token does not read {protected_read.path} ({expect.describe(existing_read, 120)})",
    )
    return existing_read


@pytest.fixture(scope="session")
def fhir_get(target: Target) -> Iterator[Any]:
    """GET a FHIR path below the base with chosen headers (recorded like every request)."""

    def get(path: str, *, purpose: str, headers: dict[str, str] | None = None) -> Exchange:
        return target.http.request("GET", f"{target.base_url}/{path.lstrip('/')}", purpose=purpose, headers=headers)

    yield get


from suites.udap_support import (  # noqa: E402,F401 - fixtures shared by the UDAP suites
    capability_override_exchange,
    carequality_endpoints,
    registration_url,
    udap_access_token,
    udap_client,
    udap_client_id,
    udap_config,
    udap_endpoints,
    udap_grant,
    udap_metadata,
    udap_metadata_exchange,
    udap_registration,
    udap_token_url,
)
