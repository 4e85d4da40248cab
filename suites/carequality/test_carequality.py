"""Carequality on Cerner: endpoints found from the CapabilityStatement, JSON-only FHIR reads, lenient registration.

Cerner advertised its Carequality endpoints in three shapes while building this;
the suite accepts each and says which one it found. Whether /.well-known/udap is
published there is unconfirmed, so nothing here depends on it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conformance.checking import expect
from conformance.core.config import UdapConfig, is_loopback
from conformance.core.outcomes import note
from conformance.core.recording import Exchange
from conformance.flows import oauth, udap
from conformance.flows.carequality import CarequalityEndpoints
from conformance.flows.target import Target


def _found(endpoints: CarequalityEndpoints | None, exchange: Exchange) -> CarequalityEndpoints:
    if endpoints is None:
        expect.fail(
            "the CapabilityStatement advertises no Carequality endpoints",
            expected="carequality-oauth-uris, oauth-uris switched by Cerner-Override-OAuth-URIs: on, or carequality-token",
            actual="none of the three shapes",
            exchange=exchange,
        )
    assert endpoints is not None
    return endpoints


@pytest.mark.requirement("CERNER-02")
def test_carequality_endpoints_are_advertised(
    carequality_endpoints: CarequalityEndpoints | None, capability_exchange: Exchange
) -> None:
    found = _found(carequality_endpoints, capability_exchange)
    if not found.complete:
        expect.fail(
            f"the {found.shape} lacks the token or register URL",
            expected="both token and register",
            actual=f"token {found.token!r}, register {found.register!r}",
            exchange=capability_exchange,
        )
    note("shape", found.shape)


@pytest.mark.requirement("CERNER-05")
def test_endpoints_are_absolute_https_on_the_fhir_host(
    carequality_endpoints: CarequalityEndpoints | None, capability_exchange: Exchange, target: Target
) -> None:
    found = _found(carequality_endpoints, capability_exchange)
    fhir_host = urlsplit(target.base_url).netloc
    for name, url in (("token", found.token), ("register", found.register)):
        if url is None:
            continue
        secure = url.startswith("https://") or (url.startswith("http://") and is_loopback(url))
        if not secure:
            expect.fail(
                f"the Carequality {name} URL is not an absolute https URL",
                expected="https://… (http only on loopback)",
                actual=url,
                exchange=capability_exchange,
            )
        note(f"{name} host", urlsplit(url).netloc)
        if urlsplit(url).netloc != fhir_host:
            # The vendor layout puts them under the FHIR base; no spec requires the same host.
            expect.fail(
                f"the Carequality {name} URL is not on the FHIR host",
                expected=f"https://{fhir_host}/…",
                actual=url,
                exchange=capability_exchange,
                requirement="CERNER-05H",
            )


@pytest.fixture(scope="module")
def reads(target: Target, udap_access_token: str) -> dict[str, Exchange]:
    patient = target.config.patient_id or "1316024"
    url = f"{target.base_url}/Patient?_id={patient}"
    bearer = oauth.bearer(udap_access_token)
    variants = {
        "accept-fhir-json": ("", {"Accept": "application/fhir+json"}),
        "format-json": ("&_format=json", {}),
        "no-accept": ("", {}),
        "accept-xml": ("", {"Accept": "application/xml"}),
    }
    return {
        name: target.http.request(
            "GET", url + query, purpose=f"search the patient ({name})", headers={**headers, **bearer}
        )
        for name, (query, headers) in variants.items()
    }


@pytest.mark.requirement("CERNER-09J")
@pytest.mark.parametrize("variant", ["accept-fhir-json", "format-json"])
def test_json_reads_are_served(variant: str, reads: dict[str, Exchange]) -> None:
    exchange = reads[variant]
    expect.status(exchange, {200}, f"a read that asks for JSON ({variant}) must be served")
    body = expect.json_object(exchange, "the read must return JSON")
    if body.get("resourceType") != "Bundle" or not body.get("entry"):
        expect.fail(
            "the search found no patient",
            expected="a Bundle with the patient",
            actual=expect.short_json(body),
            exchange=exchange,
        )


@pytest.mark.requirement("CERNER-09")
@pytest.mark.parametrize("variant", ["no-accept", "accept-xml"])
def test_reads_without_a_json_request_are_refused(variant: str, reads: dict[str, Exchange]) -> None:
    exchange = expect.answered(reads[variant])
    expect.no_server_error(exchange, f"a read without a JSON request ({variant})")
    if exchange.status is not None and exchange.status < 300:
        expect.fail(
            "a FHIR read that did not ask for JSON was served",
            expected="406 (Cerner requires Accept: application/fhir+json or _format=json)",
            actual=expect.describe(exchange, 120),
            exchange=exchange,
        )
    note("status", exchange.status)


@pytest.fixture(scope="module")
def tolerant_registrations(
    target: Target, udap_client: udap.UdapClient, registration_url: str, udap_client_id: str
) -> dict[str, Exchange]:
    """Re-register the main client the two ways Cerner's own samples did: fhir+json, and udap as a number."""
    results = {}
    for name, content_type, udap_value in (
        ("fhir-json", "application/fhir+json", "1"),
        ("udap-number", "application/json", 1),
    ):
        statement = udap.jwt_with_x5c(
            udap_client.certified, udap.software_statement_claims(udap_client, registration_url)
        )
        results[name] = udap.register(
            target.http,
            registration_url,
            udap.registration_body(statement, udap=udap_value),
            content_type=content_type,
            purpose=f"re-register the client ({name})",
        )
    return results


@pytest.mark.requirement("CERNER-06")
@pytest.mark.parametrize("variant", ["fhir-json", "udap-number"])
def test_registration_accepts_vendor_sample_forms(
    variant: str, tolerant_registrations: dict[str, Exchange], udap_client_id: str, udap_config: UdapConfig
) -> None:
    exchange = tolerant_registrations[variant]
    expect.status(exchange, {200, 201}, f"registration as in Cerner's samples ({variant}) must be accepted")
    client_id = (exchange.json_object() or {}).get("client_id")
    if client_id != udap_client_id:
        expect.fail(
            "re-registration changed the client_id", expected=udap_client_id, actual=repr(client_id), exchange=exchange
        )
