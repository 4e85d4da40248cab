"""Units of the reference server: content negotiation, scope parsing and granting, fault registry."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conformance.flows.scopes import parse_scope, permits
from conformance.mock.faults import FAULTS, FaultSet, UnknownFault, pattern_matches
from conformance.mock.negotiation import negotiate


@pytest.mark.parametrize(
    ("format_param", "accept", "media", "refusal"),
    [
        ("json", None, "application/fhir+json", None),
        ("application/json", "application/fhir+xml", "application/json", None),
        ("xml", None, None, 406),
        ("yaml", None, None, 406),
        (None, "application/fhir+json", "application/fhir+json", None),
        (None, "application/json", "application/json", None),
        (None, "application/fhir+xml", None, 406),
        (None, "application/fhir+xml;q=0.9, application/fhir+json", "application/fhir+json", None),
        (None, "application/fhir+json; fhirVersion=4.0", "application/fhir+json", None),
        (None, "application/fhir+json; fhirVersion=3.0", None, 406),
        (None, "*/*", "application/fhir+json", None),
        (None, None, "application/fhir+json", None),
    ],
)
def test_negotiation(format_param: str | None, accept: str | None, media: str | None, refusal: int | None) -> None:
    choice = negotiate(format_param, accept)
    assert (choice.media_type, choice.refusal) == (media, refusal)


def test_cerner_style_negotiation_demands_explicit_json() -> None:
    assert negotiate(None, None, require_explicit_json=True).refusal == 406
    assert negotiate(None, "*/*", require_explicit_json=True).refusal == 406
    assert negotiate("json", None, require_explicit_json=True).media_type == "application/fhir+json"


def test_scope_parsing_v1_and_v2() -> None:
    v1 = parse_scope("system/Patient.read")
    v2 = parse_scope("system/Observation.rs")
    assert v1 is not None and v1.v1 and v1.perms == frozenset("rs")
    assert v2 is not None and not v2.v1 and v2.perms == frozenset("rs")
    assert parse_scope("system/Patient.sr") is None  # out of cruds order
    assert parse_scope("offline_access") is None
    assert parse_scope("system/Patient.read,system/Observation.read") is None
    wildcard = parse_scope("system/*.read")
    assert wildcard is not None and wildcard.covers(v1)


def test_permits_reads_granted_scopes() -> None:
    assert permits("system/Patient.read", "Patient", "r")
    assert not permits("system/Patient.read", "Observation", "r")
    assert permits("system/*.rs", "Observation", "s")


def test_fault_registry_rejects_unknown_names() -> None:
    with pytest.raises(UnknownFault, match="conformance faults"):
        FaultSet(["no-such-fault"])
    with pytest.raises(KeyError):
        _ = "unregistered" in FaultSet()


def test_every_fault_is_described_and_kills_something() -> None:
    for fault in FAULTS.values():
        assert fault.description and fault.kills, fault.name


def test_kill_patterns_treat_brackets_literally() -> None:
    assert pattern_matches("a.py::t[*]", "a.py::t[x-y]")
    assert not pattern_matches("a.py::t[ab]", "a.py::ta")


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_a_numeric_date_beyond_float_range_is_refused_not_a_crash(claim: str, keys_dir: Path) -> None:
    """An integer claim of 10**400 cannot become a float; the server must still refuse it cleanly."""
    from conformance.crypto.jose import client_assertion, jwks
    from conformance.flows.oauth import assertion_form
    from conformance.mock.server import MockServer
    from conformance.mock.store import Client
    from conformance.profiles import registry as profiles
    from conformance.profiles.smart_backend import embedded_keys

    key = embedded_keys(keys_dir)["client-rs384"]
    with MockServer(profiles.DEFAULT.server_settings()) as server:
        server.ctx.store.put_client(Client("huge-dates", jwks=jwks([key]), scopes=["system/Patient.rs"]))
        token_url = server.settings.token_url
        assertion = client_assertion(key, client_id="huge-dates", audience=token_url, claims={claim: 10**400})
        answer = httpx.post(token_url, data=dict(assertion_form(assertion, "system/Patient.rs")), timeout=10)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] == "invalid_client"
