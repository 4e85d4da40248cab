"""/.well-known/smart-configuration for a backend-services server.

A backend-only server has no authorization endpoint and no authorization_code
grant; nothing here asks for what only app-launch servers need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import is_loopback
from conformance.core.outcomes import SpecWarning, note
from conformance.core.recording import Exchange
from conformance.flows import discovery
from conformance.flows.scopes import is_v2, parse_scope
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead


def _absolute_https(value: Any) -> bool:
    return isinstance(value, str) and (
        value.startswith("https://") or (value.startswith("http://") and is_loopback(value))
    )


@pytest.mark.requirement("SBS-DISC-01")
def test_served_as_json_object_without_token(smart_config_exchange: Exchange) -> None:
    expect.status(smart_config_exchange, {200}, "smart-configuration must be served without a token")
    expect.json_object(smart_config_exchange, "smart-configuration must be a JSON object")


ODD_ACCEPTS: dict[str, str | None] = {"fhir-xml": "application/fhir+xml", "html": "text/html", "no-accept": None}


@pytest.fixture(scope="module")
def odd_accept_answers(target: Target, send_ahead: SendAhead) -> Callable[[str], Exchange]:
    """smart-configuration read once per odd Accept header (side by side: plain reads)."""
    return send_ahead(
        lambda name: discovery.get_smart_configuration(target.http, target.base_url, accept=ODD_ACCEPTS[name]),
        param="variant",
    )


@pytest.mark.parametrize("variant", list(ODD_ACCEPTS))
@pytest.mark.requirement("SBS-DISC-02")
def test_json_whatever_accept_says(variant: str, odd_accept_answers: Callable[[str], Exchange]) -> None:
    odd_accept_exchange = odd_accept_answers(variant)
    accept = odd_accept_exchange.request_header("accept") or "none"
    expect.status(odd_accept_exchange, {200}, f"smart-configuration must be served whatever Accept says ({accept})")
    expect.media_type(odd_accept_exchange, {"application/json"}, "smart-configuration must be application/json")
    expect.json_object(odd_accept_exchange, "smart-configuration must be a JSON object")


@pytest.mark.requirement("SBS-DISC-03")
def test_token_endpoint_is_absolute_https(smart_config: dict[str, Any], smart_config_exchange: Exchange) -> None:
    value = smart_config.get("token_endpoint")
    if not _absolute_https(value):
        expect.fail(
            "token_endpoint is not an absolute https URL",
            expected="an absolute https URL (http only on loopback)",
            actual=repr(value),
            exchange=smart_config_exchange,
        )


@pytest.mark.requirement("SBS-DISC-04")
def test_grant_types_include_client_credentials(smart_config: dict[str, Any], smart_config_exchange: Exchange) -> None:
    expect.array_contains(
        smart_config,
        "grant_types_supported",
        "client_credentials",
        smart_config_exchange,
        "grant_types_supported does not offer client_credentials",
    )


@pytest.mark.requirement("SBS-DISC-05")
def test_capabilities_include_asymmetric_client_auth(
    smart_config: dict[str, Any], smart_config_exchange: Exchange
) -> None:
    expect.array_contains(
        smart_config,
        "capabilities",
        "client-confidential-asymmetric",
        smart_config_exchange,
        "capabilities does not declare client-confidential-asymmetric",
    )


@pytest.mark.requirement("SBS-DISC-06")
def test_auth_methods_include_private_key_jwt(smart_config: dict[str, Any], smart_config_exchange: Exchange) -> None:
    expect.array_contains(
        smart_config,
        "token_endpoint_auth_methods_supported",
        "private_key_jwt",
        smart_config_exchange,
        "token_endpoint_auth_methods_supported does not offer private_key_jwt",
    )


@pytest.mark.requirement("SBS-DISC-07")
def test_signing_algs_include_rs384_or_es384(smart_config: dict[str, Any], smart_config_exchange: Exchange) -> None:
    algs = smart_config.get("token_endpoint_auth_signing_alg_values_supported")
    if not isinstance(algs, list) or not {"RS384", "ES384"} & set(algs):
        expect.fail(
            "token_endpoint_auth_signing_alg_values_supported offers neither RS384 nor ES384",
            expected="an array containing RS384, ES384 or both",
            actual=repr(algs),
            exchange=smart_config_exchange,
        )
    note("signing algorithms", ", ".join(a for a in algs if isinstance(a, str)))


@pytest.mark.requirement("SBS-DISC-08")
def test_scopes_supported_is_an_array(smart_config: dict[str, Any], smart_config_exchange: Exchange) -> None:
    scopes = smart_config.get("scopes_supported")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        expect.fail(
            "scopes_supported is not an array of strings",
            expected="an array of scope strings",
            actual=repr(scopes),
            exchange=smart_config_exchange,
        )


@pytest.mark.requirement("SBS-DISC-09")
def test_pkce_methods_never_include_plain(smart_config: dict[str, Any], smart_config_exchange: Exchange) -> None:
    methods = smart_config.get("code_challenge_methods_supported")
    if methods is None:
        raise SpecWarning(
            "code_challenge_methods_supported is absent (REQUIRED by SMART 2.x, meaningless without an authorization endpoint)",
            expected='["S256"]',
            actual="absent",
            exchange=smart_config_exchange,
        )
    if not isinstance(methods, list) or "plain" in methods or "S256" not in methods:
        expect.fail(
            "code_challenge_methods_supported must hold S256 and never plain",
            expected='["S256"]',
            actual=repr(methods),
            exchange=smart_config_exchange,
        )


@pytest.mark.requirement("SBS-DISC-10")
def test_conditional_fields_are_present(smart_config: dict[str, Any], smart_config_exchange: Exchange) -> None:
    capabilities = expect.items(smart_config.get("capabilities"))
    launches = [c for c in capabilities if c in ("launch-ehr", "launch-standalone")]
    if launches and not _absolute_https(smart_config.get("authorization_endpoint")):
        expect.fail(
            f"capabilities claim {', '.join(launches)} but authorization_endpoint is missing or not absolute",
            expected="an absolute authorization_endpoint",
            actual=repr(smart_config.get("authorization_endpoint")),
            exchange=smart_config_exchange,
        )
    if "sso-openid-connect" in capabilities:
        missing = [f for f in ("issuer", "jwks_uri") if not smart_config.get(f)]
        if missing:
            expect.fail(
                "sso-openid-connect is claimed without issuer and jwks_uri",
                expected="issuer and jwks_uri",
                actual=f"missing {', '.join(missing)}",
                exchange=smart_config_exchange,
            )
    note("backend-only", not launches)
    optional = [m for m in sorted(smart_config) if m.endswith("_endpoint") and m != "token_endpoint"]
    note("other endpoints", ", ".join(optional) or "none")


@pytest.mark.requirement("SBS-DISC-12")
def test_permission_capabilities_match_advertised_scopes(
    smart_config: dict[str, Any], smart_config_exchange: Exchange
) -> None:
    expect.precondition(isinstance(smart_config.get("scopes_supported"), list), "scopes_supported is not an array")
    capabilities = expect.items(smart_config.get("capabilities"))
    smart_scopes = [
        s for s in expect.items(smart_config.get("scopes_supported")) if isinstance(s, str) and parse_scope(s)
    ]
    wanted = set()
    if any(is_v2(s) for s in smart_scopes):
        wanted.add("permission-v2")
    if any(not is_v2(s) for s in smart_scopes):
        wanted.add("permission-v1")
    missing = sorted(wanted - set(capabilities))
    if missing:
        expect.fail(
            "scopes_supported uses a scope syntax that capabilities does not declare",
            expected=f"{', '.join(sorted(wanted))} in capabilities",
            actual=f"missing {', '.join(missing)}",
            exchange=smart_config_exchange,
        )


@pytest.mark.requirement("SBS-DISC-13")
def test_token_url_agrees_with_capability_statement(
    smart_config: dict[str, Any], capability: dict[str, Any], smart_config_exchange: Exchange, target: Target
) -> None:
    uris = discovery.oauth_uris(capability)
    expect.applicable(uris and "token" in uris, "the CapabilityStatement publishes no oauth-uris token URL")
    assert uris is not None
    base = target.base_url.rstrip("/") + "/"
    advertised = smart_config.get("token_endpoint")
    if not isinstance(advertised, str) or discovery.resolve(base, uris["token"]) != discovery.resolve(base, advertised):
        expect.fail(
            "smart-configuration and the CapabilityStatement name different token URLs",
            expected=f"both {smart_config.get('token_endpoint')}",
            actual=f"oauth-uris token {uris['token']}",
            exchange=smart_config_exchange,
        )
