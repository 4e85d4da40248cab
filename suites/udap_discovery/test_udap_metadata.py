"""/.well-known/udap: every field the IG requires, with the types it requires (STU2 by default)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import UdapConfig, is_loopback
from conformance.core.outcomes import SpecWarning, note
from conformance.core.recording import Exchange
from conformance.flows import udap
from conformance.flows.target import Target

UDAP_MEMBERS = {"grant_types_supported", "scopes_supported", "signed_metadata"}
"""Metadata members without a udap_, token_ or registration_ prefix that the UDAP IG defines."""


def _absolute(value: Any) -> bool:
    return isinstance(value, str) and (
        value.startswith("https://") or (value.startswith("http://") and is_loopback(value))
    )


@pytest.mark.requirement("UDAP-DISC-01")
def test_metadata_is_a_json_object(udap_metadata_exchange: Exchange) -> None:
    expect.status(udap_metadata_exchange, {200}, "GET /.well-known/udap must answer 200")
    document = expect.json_object(udap_metadata_exchange, "UDAP metadata must be a JSON object")
    unknown = sorted(
        m for m in document if not m.startswith(("udap_", "token_", "registration_")) and m not in UDAP_MEMBERS
    )
    note("members the IG does not define", ", ".join(unknown) or "none")


@pytest.mark.requirement("UDAP-DISC-03")
def test_metadata_is_application_json(udap_metadata_exchange: Exchange) -> None:
    expect.precondition(udap_metadata_exchange.status == 200, "no UDAP metadata")
    expect.media_type(udap_metadata_exchange, {"application/json"}, "UDAP metadata should be application/json")


@pytest.mark.requirement("UDAP-DISC-04")
def test_versions_supported_is_1(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    value = udap_metadata.get("udap_versions_supported")
    if value != ["1"]:
        expect.fail(
            'udap_versions_supported must be ["1"]',
            expected='["1"]',
            actual=repr(value),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-DISC-05")
def test_profiles_supported(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    profiles = expect.string_array(udap_metadata, "udap_profiles_supported", udap_metadata_exchange)
    wanted = {"udap_dcr", "udap_authn"}
    if "client_credentials" in expect.items(udap_metadata.get("grant_types_supported")):
        wanted.add("udap_authz")
    missing = sorted(wanted - set(profiles))
    if missing:
        expect.fail(
            "udap_profiles_supported lacks required profiles",
            expected=", ".join(sorted(wanted)),
            actual=f"missing {', '.join(missing)}",
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-DISC-06")
def test_b2b_extension_is_supported(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    if "client_credentials" not in expect.items(udap_metadata.get("grant_types_supported")):
        expect.string_array(udap_metadata, "udap_authorization_extensions_supported", udap_metadata_exchange)
        return
    expect.array_contains(
        udap_metadata,
        "udap_authorization_extensions_supported",
        "hl7-b2b",
        udap_metadata_exchange,
        "a server offering client_credentials must support the hl7-b2b extension",
    )


@pytest.mark.requirement("UDAP-DISC-07")
def test_required_extensions_are_declared(
    udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange, udap_config: UdapConfig
) -> None:
    supported = expect.items(udap_metadata.get("udap_authorization_extensions_supported"))
    expect.precondition(supported, "no authorization extensions are supported")
    required = expect.string_array(udap_metadata, "udap_authorization_extensions_required", udap_metadata_exchange)
    extra = sorted(set(required) - set(supported))
    if udap_config.stu2 and extra:
        expect.fail(
            "required extensions that are not supported (STU2)",
            expected=f"a subset of {supported}",
            actual=f"also {extra}",
            exchange=udap_metadata_exchange,
        )
    note("required extensions", ", ".join(required) or "none")


@pytest.mark.requirement("UDAP-DISC-08")
def test_certifications_are_arrays(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    supported = expect.string_array(udap_metadata, "udap_certifications_supported", udap_metadata_exchange)
    if supported:
        expect.string_array(udap_metadata, "udap_certifications_required", udap_metadata_exchange)


@pytest.mark.requirement("UDAP-DISC-10")
def test_grant_types_supported(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    grants = expect.string_array(udap_metadata, "grant_types_supported", udap_metadata_exchange)
    if not grants:
        expect.fail(
            "grant_types_supported is empty",
            expected="at least one grant type",
            actual="[]",
            exchange=udap_metadata_exchange,
        )
    if "refresh_token" in grants and "authorization_code" not in grants:
        expect.fail(
            "refresh_token without authorization_code",
            expected="refresh_token only with authorization_code",
            actual=repr(grants),
            exchange=udap_metadata_exchange,
        )
    note("grant types", ", ".join(grants))


@pytest.mark.requirement("UDAP-DISC-11")
def test_scopes_supported(
    udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange, udap_config: UdapConfig
) -> None:
    if "scopes_supported" not in udap_metadata and not udap_config.stu2:
        raise SpecWarning("scopes_supported is absent (optional before STU2)", exchange=udap_metadata_exchange)
    expect.string_array(udap_metadata, "scopes_supported", udap_metadata_exchange)


@pytest.mark.requirement("UDAP-DISC-13")
def test_token_endpoint_is_absolute(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    if not _absolute(udap_metadata.get("token_endpoint")):
        expect.fail(
            "token_endpoint is not an absolute URL",
            expected="https://…",
            actual=repr(udap_metadata.get("token_endpoint")),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-DISC-14")
def test_auth_methods_are_private_key_jwt_only(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    value = udap_metadata.get("token_endpoint_auth_methods_supported")
    if value != ["private_key_jwt"]:
        expect.fail(
            'token_endpoint_auth_methods_supported must be exactly ["private_key_jwt"] (no non-UDAP methods)',
            expected='["private_key_jwt"]',
            actual=repr(value),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-DISC-15")
def test_token_signing_algs_include_rs256(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    expect.array_contains(
        udap_metadata,
        "token_endpoint_auth_signing_alg_values_supported",
        "RS256",
        udap_metadata_exchange,
        "RS256 must be offered for client assertions",
    )


@pytest.mark.requirement("UDAP-DISC-16")
def test_registration_endpoint_is_absolute(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    if not _absolute(udap_metadata.get("registration_endpoint")):
        expect.fail(
            "registration_endpoint is not an absolute URL",
            expected="https://…",
            actual=repr(udap_metadata.get("registration_endpoint")),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-DISC-17")
def test_registration_signing_algs_include_rs256(
    udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange, udap_config: UdapConfig
) -> None:
    if "registration_endpoint_jwt_signing_alg_values_supported" not in udap_metadata and not udap_config.stu2:
        raise SpecWarning("registration_endpoint_jwt_signing_alg_values_supported is absent (recommended before STU2)")
    expect.array_contains(
        udap_metadata,
        "registration_endpoint_jwt_signing_alg_values_supported",
        "RS256",
        udap_metadata_exchange,
        "RS256 must be offered for software statements",
    )


@pytest.mark.requirement("UDAP-DISC-18")
def test_signed_metadata_is_present(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    value = udap_metadata.get("signed_metadata")
    if not isinstance(value, str) or value.count(".") != 2:
        expect.fail(
            "signed_metadata is missing or not a compact JWS",
            expected="a JWS string",
            actual=repr(value)[:80],
            exchange=udap_metadata_exchange,
        )


@pytest.fixture(scope="module")
def unknown_community_exchange(target: Target) -> Exchange:
    return udap.get_udap_metadata(target.http, target.base_url, community="urn:conformance:no-such-community")


@pytest.mark.requirement("UDAP-DISC-21")
def test_unknown_community(unknown_community_exchange: Exchange, udap_config: UdapConfig) -> None:
    exchange = expect.answered(unknown_community_exchange)
    expect.no_server_error(exchange, "an unknown community parameter")
    if exchange.status == 404 and udap_config.version != "STU1.0":
        raise SpecWarning(
            "an unknown community gets 404 (allowed in STU1.0 only; STU1.1+ say 204 or default metadata)",
            exchange=exchange,
        )
    status = expect.status(exchange, {200, 204, 404}, "an unknown community must get 204 or the default metadata")
    if status == 200:
        expect.json_object(exchange, "default metadata for an unknown community must be JSON")
    note("answer", status)
