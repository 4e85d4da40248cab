"""JSON format enforcement on the FHIR API: negotiation by Accept and _format, honest Content-Types.

HTTP lets a server ignore Accept, so a 406 for XML on a JSON-only server is a
SHOULD here (the Cerner profile makes it strict); what is never allowed is a
JSON body labelled as XML, or a _format the server claims but does not honour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.outcomes import note
from conformance.core.recording import Exchange
from conformance.flows import oauth
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead

FHIR_JSON = "application/fhir+json"
XML_TYPES = {"application/fhir+xml", "application/xml", "text/xml"}
JSON_TYPES = {FHIR_JSON, "application/json"}

# name -> (query, Accept header)
VARIANTS: dict[str, tuple[str, str | None]] = {
    "format-json": ("_format=json", None),
    "accept-fhir-json": ("", FHIR_JSON),
    "accept-json": ("", "application/json"),
    "accept-fhir-xml": ("", "application/fhir+xml"),
    "format-xml": ("_format=xml", None),
    "format-unknown": ("_format=yaml-please", None),
    "format-overrides-accept": ("_format=json", "application/fhir+xml"),
    "format-mime-encoded": ("_format=application%2Ffhir%2Bjson", None),
    "accept-fhir-version": ("", f"{FHIR_JSON}; fhirVersion=4.0"),
    "accept-dstu2-json": ("", "application/json+fhir"),
}


@pytest.fixture(scope="module")
def format_read(target: Target, fhir_get: Callable[..., Exchange], access_token: str) -> str:
    """The resource the format checks negotiate: the first configured read that needs no headers but Accept
    (a plain FHIR read, not an async kick-off), e.g. Patient/123 by default. Not applicable when it is not there."""
    plain = [r for r in target.config.reads if {name.lower() for name, _ in r.headers} <= {"accept"}]
    expect.precondition(plain, "no plain FHIR read is configured (target.reads or target.patient_id)")
    path = plain[0].path
    probe = fhir_get(
        path, purpose=f"read {path} (is it there?)", headers={**oauth.bearer(access_token), **dict(plain[0].headers)}
    )
    expect.answered(probe)
    expect.applicable(probe.status != 404, f"the configured read {path} answers 404 (set target.reads)")
    return path


@pytest.fixture(scope="module")
def read_as(
    fhir_get: Callable[..., Exchange], access_token: str, format_read: str, send_ahead: SendAhead
) -> Callable[[str], Exchange]:
    """Read the configured resource once per negotiation variant; the variants the selected checks declare
    (`variant`, `asks`) side by side: plain reads, none changes the server's state."""

    def read(variant: str) -> Exchange:
        query, accept = VARIANTS[variant]
        headers = oauth.bearer(access_token)
        if accept is not None:
            headers["Accept"] = accept
        separator = "&" if "?" in format_read else "?"
        path = format_read + (f"{separator}{query}" if query else "")
        return fhir_get(path, purpose=f"read {format_read} ({variant})", headers=headers)

    return send_ahead(read, param="variant")


def _body_kind(exchange: Exchange) -> str:
    text = exchange.response_body.lstrip()[:1]
    return "json" if text in (b"{", b"[") else "xml" if text == b"<" else "other"


def _expect_fhir_json(exchange: Exchange, allowed: set[str], title: str) -> None:
    expect.status(exchange, {200}, title)
    expect.media_type(exchange, allowed, title)
    body = expect.json_object(exchange, title)
    if "resourceType" not in body:
        expect.fail(title, expected="a FHIR resource (resourceType)", actual=expect.short_json(body), exchange=exchange)


@pytest.mark.requirement("SBS-FMT-03")
@pytest.mark.asks("format-json")
def test_format_json_gets_fhir_json(read_as: Callable[[str], Exchange]) -> None:
    _expect_fhir_json(read_as("format-json"), {FHIR_JSON}, "?_format=json must get application/fhir+json")


@pytest.mark.requirement("SBS-FMT-01")
@pytest.mark.asks("accept-fhir-json")
def test_accept_fhir_json_gets_fhir_json(read_as: Callable[[str], Exchange]) -> None:
    _expect_fhir_json(
        read_as("accept-fhir-json"), {FHIR_JSON}, "Accept: application/fhir+json must get application/fhir+json"
    )


@pytest.mark.requirement("SBS-FMT-02")
@pytest.mark.asks("accept-json")
def test_accept_json_is_served_as_json(read_as: Callable[[str], Exchange]) -> None:
    exchange = read_as("accept-json")
    _expect_fhir_json(exchange, JSON_TYPES, "Accept: application/json must be served as JSON")
    note("Content-Type", exchange.media_type)


@pytest.mark.requirement("SBS-FMT-03")
@pytest.mark.asks("format-overrides-accept")
def test_format_overrides_accept(read_as: Callable[[str], Exchange]) -> None:
    _expect_fhir_json(
        read_as("format-overrides-accept"), {FHIR_JSON}, "_format=json must win over Accept: application/fhir+xml"
    )


@pytest.mark.requirement("SBS-FMT-03")
@pytest.mark.asks("format-mime-encoded")
def test_format_as_mime_type_is_understood(read_as: Callable[[str], Exchange]) -> None:
    _expect_fhir_json(read_as("format-mime-encoded"), {FHIR_JSON}, "_format=application/fhir+json must get FHIR JSON")


@pytest.mark.parametrize("variant", ["accept-fhir-xml", "format-xml"])
@pytest.mark.requirement("SBS-FMT-04M")
def test_xml_request_never_gets_mislabelled_json(variant: str, read_as: Callable[[str], Exchange]) -> None:
    exchange = expect.answered(read_as(variant))
    kind = _body_kind(exchange)
    declared = exchange.media_type
    if exchange.status == 200 and (
        (declared in XML_TYPES and kind != "xml") or (declared in JSON_TYPES and kind != "json")
    ):
        expect.fail(
            "the Content-Type does not describe the body",
            expected=f"a {declared} body" if declared else "a Content-Type",
            actual=f"{declared or 'no Content-Type'} with a {kind} body",
            exchange=exchange,
        )
    expect.no_server_error(exchange, f"an XML request ({variant})")
    note("answer", f"HTTP {exchange.status} {declared}")


@pytest.mark.parametrize("xml_variant", ["accept-fhir-xml", "format-xml"])
@pytest.mark.requirement("SBS-FMT-04")
def test_json_only_server_answers_xml_with_406(
    xml_variant: str, read_as: Callable[[str], Exchange], capability: dict[str, Any]
) -> None:
    """Asks only when the server declares no XML, so its parameter is not `variant`: not planned, not sent ahead."""
    formats = [str(f).lower() for f in expect.items(capability.get("format"))]
    expect.applicable(not any("xml" in f for f in formats), "the server declares XML support")
    expect.status(read_as(xml_variant), {406}, "a JSON-only server should answer an XML request with 406")


@pytest.mark.requirement("SBS-FMT-04U")
@pytest.mark.asks("format-unknown")
def test_unknown_format_is_refused(read_as: Callable[[str], Exchange]) -> None:
    status = expect.status(read_as("format-unknown"), {400, 406}, "an unknown _format should get 400 or 406")
    note("status", status)


@pytest.mark.requirement("SBS-FMT-07")
@pytest.mark.asks("accept-fhir-version")
def test_fhir_version_parameter_is_accepted(read_as: Callable[[str], Exchange]) -> None:
    _expect_fhir_json(read_as("accept-fhir-version"), {FHIR_JSON}, "Accept with fhirVersion=4.0 should get R4 JSON")


@pytest.mark.requirement("SBS-FMT-06")
@pytest.mark.asks("accept-dstu2-json")
def test_dstu2_json_type_gets_json_or_406(read_as: Callable[[str], Exchange]) -> None:
    exchange = read_as("accept-dstu2-json")
    expect.no_server_error(exchange, "Accept: application/json+fhir")
    status = expect.status(exchange, {200, 406}, "Accept: application/json+fhir may get JSON or 406, never an error")
    if status == 200:
        expect.json_object(exchange, "a 200 for application/json+fhir must carry JSON")
    note("status", status)


@pytest.mark.requirement("SBS-FMT-09")
@pytest.mark.asks("accept-fhir-json")
def test_json_is_utf8(read_as: Callable[[str], Exchange]) -> None:
    exchange = read_as("accept-fhir-json")
    expect.status(exchange, {200}, "the patient read must succeed")
    header = exchange.response_header("content-type") or ""
    charset = next(
        (p.split("=", 1)[1].strip().strip('"').lower() for p in header.split(";")[1:] if "charset" in p), None
    )
    if charset not in (None, "utf-8", "utf8"):
        expect.fail(
            "FHIR bodies must be UTF-8",
            expected="charset=utf-8 (or none)",
            actual=f"charset={charset}",
            exchange=exchange,
        )
    try:
        exchange.response_body.decode("utf-8")
    except UnicodeDecodeError as exc:
        expect.fail("the body is not valid UTF-8", expected="UTF-8", actual=str(exc), exchange=exchange)


@pytest.mark.requirement("SBS-FMT-10")
def test_errors_are_operation_outcomes(fhir_get: Callable[..., Exchange], access_token: str) -> None:
    exchange = fhir_get(
        "Patient/conformance-no-such-patient",
        purpose="read a patient that does not exist",
        headers={"Accept": FHIR_JSON, **oauth.bearer(access_token)},
    )
    expect.status(exchange, {404, 410}, "an unknown patient must get 404")
    body = exchange.json_object()
    if body is None or body.get("resourceType") != "OperationOutcome":
        expect.fail(
            "the error is not an OperationOutcome",
            expected="an OperationOutcome body",
            actual=expect.describe(exchange),
            exchange=exchange,
        )


@pytest.mark.requirement("SBS-CAP-02")
@pytest.mark.asks("format-xml", "accept-fhir-xml")
def test_declared_formats_match_behaviour(
    capability: dict[str, Any], read_as: Callable[[str], Exchange], target: Target
) -> None:
    formats = [str(f).lower() for f in expect.items(capability.get("format"))]
    xml = expect.answered(read_as("format-xml"))
    accept_xml = expect.answered(read_as("accept-fhir-xml"))
    declares_xml = any("xml" in f for f in formats)
    served = [e for e in (xml, accept_xml) if e.status == 200 and _body_kind(e) == "xml"]
    if declares_xml and not served:
        expect.fail(
            "CapabilityStatement.format declares XML, but XML is not served",
            expected="XML for _format=xml or Accept: application/fhir+xml",
            actual=expect.describe(xml, 120),
            exchange=xml,
        )
    note("declared formats", ", ".join(formats))
