"""CapabilityStatement: served without a token, FHIR R4 JSON, SMART security declared."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import is_loopback
from conformance.core.outcomes import SpecWarning, note
from conformance.core.recording import Exchange
from conformance.flows.discovery import OAUTH_URIS, oauth_uris, security_extensions

R4_SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"
STU3_SECURITY_SYSTEM = "http://hl7.org/fhir/restful-security-service"


@pytest.mark.requirement("SBS-CAP-01")
def test_capability_statement_is_served_without_token(capability_exchange: Exchange) -> None:
    expect.status(capability_exchange, {200}, "GET /metadata without a token must return the CapabilityStatement")
    body = expect.json_object(capability_exchange, "the CapabilityStatement must be a JSON object")
    if body.get("resourceType") != "CapabilityStatement":
        expect.fail(
            "/metadata did not return a CapabilityStatement",
            expected='resourceType "CapabilityStatement"',
            actual=f"resourceType {body.get('resourceType')!r}",
            exchange=capability_exchange,
        )


@pytest.mark.requirement("SBS-FMT-01")
def test_capability_statement_is_fhir_json(capability_exchange: Exchange) -> None:
    expect.answered(capability_exchange)
    expect.precondition(capability_exchange.status == 200, "/metadata did not answer 200")
    expect.media_type(
        capability_exchange,
        {"application/fhir+json"},
        "Accept: application/fhir+json must get application/fhir+json",
    )


@pytest.mark.requirement("SBS-CAP-03")
def test_capability_statement_has_required_elements(capability: dict[str, Any], capability_exchange: Exchange) -> None:
    missing = [name for name in ("status", "date", "kind", "fhirVersion", "format") if not capability.get(name)]
    if missing:
        expect.fail(
            "the CapabilityStatement lacks required elements",
            expected="status, date, kind, fhirVersion and format",
            actual=f"missing: {', '.join(missing)}",
            exchange=capability_exchange,
        )
    if not str(capability["fhirVersion"]).startswith("4.0"):
        expect.fail(
            "the server does not declare FHIR R4",
            expected="fhirVersion 4.0.x",
            actual=f"fhirVersion {capability['fhirVersion']}",
            exchange=capability_exchange,
        )
    modes = [r.get("mode") for r in expect.objects(capability.get("rest"))]
    if "server" not in modes:
        expect.fail(
            "the CapabilityStatement has no rest entry in server mode",
            expected='rest[].mode "server"',
            actual=f"rest modes {modes}",
            exchange=capability_exchange,
        )


@pytest.mark.requirement("SBS-CAP-02")
def test_format_declares_json(capability: dict[str, Any], capability_exchange: Exchange) -> None:
    formats = expect.items(capability.get("format"))
    note("format", ", ".join(map(str, formats)))
    if not any(f in ("json", "application/fhir+json", "application/json") for f in formats):
        expect.fail(
            "CapabilityStatement.format does not list JSON",
            expected="json or application/fhir+json in format",
            actual=f"format {formats}",
            exchange=capability_exchange,
        )


@pytest.mark.requirement("SBS-CAP-05")
def test_security_service_is_smart_on_fhir(capability: dict[str, Any], capability_exchange: Exchange) -> None:
    codings = [
        coding
        for rest in expect.objects(capability.get("rest"))
        for service in expect.objects(expect.member(rest.get("security"), "service"))
        for coding in expect.objects(service.get("coding"))
    ]
    smart = [c for c in codings if c.get("code") == "SMART-on-FHIR"]
    if not smart:
        expect.fail(
            "rest.security.service does not declare SMART-on-FHIR",
            expected=f"a coding {R4_SECURITY_SYSTEM}#SMART-on-FHIR",
            actual=f"codings {codings}",
            exchange=capability_exchange,
        )
    if all(c.get("system") == STU3_SECURITY_SYSTEM for c in smart):
        raise SpecWarning(
            "the SMART-on-FHIR coding uses the STU3 code system on an R4 server",
            expected=R4_SECURITY_SYSTEM,
            actual=STU3_SECURITY_SYSTEM,
            exchange=capability_exchange,
        )


@pytest.mark.requirement("SBS-CAP-04")
def test_oauth_uris_extension_names_token_url(capability: dict[str, Any], capability_exchange: Exchange) -> None:
    uris = oauth_uris(capability)
    if uris is None or "token" not in uris:
        expect.fail(
            "rest.security has no oauth-uris extension with a token URL",
            expected=f"extension {OAUTH_URIS} with a 'token' valueUri",
            actual="absent" if uris is None else f"sub-extensions {sorted(uris)}",
            exchange=capability_exchange,
        )


@pytest.mark.requirement("SBS-CAP-06")
def test_oauth_uris_extension_is_well_formed(capability: dict[str, Any], capability_exchange: Exchange) -> None:
    extensions = [e for e in security_extensions(capability) if str(e.get("url", "")).lower() == OAUTH_URIS.lower()]
    expect.applicable(extensions, "the server publishes no oauth-uris extension")
    for extension in extensions:
        values = [k for k in extension if k.startswith("value")]
        if values:
            expect.fail(
                "the oauth-uris extension carries a value as well as sub-extensions (ext-1)",
                expected="sub-extensions only",
                actual=f"also {', '.join(values)}",
                exchange=capability_exchange,
            )
        names = [str(sub.get("url")) for sub in expect.objects(extension.get("extension"))]
        note("sub-extensions", ", ".join(names))
        for sub in expect.items(extension.get("extension")):
            if not isinstance(sub, dict) or set(sub) != {"url", "valueUri"}:
                expect.fail(
                    "an oauth-uris sub-extension is not a url with a valueUri",
                    expected='{"url": ..., "valueUri": ...}',
                    actual=expect.short_json(sub),
                    exchange=capability_exchange,
                )


@pytest.mark.requirement("SBS-DISC-03")
def test_oauth_uris_are_absolute_https(capability: dict[str, Any], capability_exchange: Exchange) -> None:
    uris = oauth_uris(capability)
    expect.applicable(uris, "the server publishes no oauth-uris extension")
    assert uris is not None
    for name, uri in uris.items():
        if not uri.startswith("https://") and not (uri.startswith("http://") and is_loopback(uri)):
            expect.fail(
                f"oauth-uris {name} is not an absolute https URL",
                expected="https://… (http only on loopback)",
                actual=uri,
                exchange=capability_exchange,
            )
