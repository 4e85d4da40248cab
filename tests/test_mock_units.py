"""Units of the reference server: negotiation, scopes, faults, NumericDate hygiene, and the process's manners."""

from __future__ import annotations

import math
import re
import select
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.crypto.jose import ClientKey
from conformance.flows.scopes import parse_scope, permits
from conformance.mock.faults import FAULTS, FaultSet, UnknownFault, pattern_matches
from conformance.mock.negotiation import negotiate
from conformance.mock.server import MockServer
from conformance.mock.store import Client
from conformance.profiles import registry as profiles
from tests.conftest import udap_test_members


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
    from conformance.profiles.smart_backend import embedded_keys

    key = embedded_keys(keys_dir)["client-rs384"]
    with MockServer(profiles.DEFAULT.server_settings()) as server:
        server.ctx.store.put_client(Client("huge-dates", jwks=jwks([key]), scopes=["system/Patient.rs"]))
        token_url = server.settings.token_url
        assertion = client_assertion(key, client_id="huge-dates", audience=token_url, claims={claim: 10**400})
        answer = httpx.post(token_url, data=dict(assertion_form(assertion, "system/Patient.rs")), timeout=10)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] == "invalid_client"


# --- NumericDate hygiene: exp / iat / nbf that are no finite number are refused, never accepted, never a 500 ---

NOT_NUMERIC_DATES: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    "1893456000",
    True,
    False,
    None,  # sent as JSON null (the claim is there)
    [1893456000],
    {"seconds": 1893456000},
    10**400,
    -(10**400),
    1e300,
]
"""Values no clock reaches: json.loads reads NaN/Infinity as floats, booleans are ints, 10**400 has no float."""
DATE_IDS = ["nan", "inf", "-inf", "string", "true", "false", "null", "list", "object", "10e400", "-10e400", "1e300"]


def _with_claims(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The claims with overrides set as they are (None becomes JSON null, unlike the suite's helpers)."""
    return {**base, **overrides}


@pytest.fixture(scope="module")
def smart_server(keys_dir: Path) -> Iterator[tuple[MockServer, ClientKey]]:
    """One SMART Backend server with one client for all the bad-date assertions (each has its own jti)."""
    from conformance.crypto.jose import jwks
    from conformance.profiles.smart_backend import embedded_keys

    key = embedded_keys(keys_dir)["client-rs384"]
    with MockServer(profiles.DEFAULT.server_settings()) as server:
        server.ctx.store.put_client(Client("bad-dates", jwks=jwks([key]), scopes=["system/Patient.rs"]))
        yield server, key


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", NOT_NUMERIC_DATES, ids=DATE_IDS)
def test_token_endpoint_refuses_an_assertion_whose_date_is_no_numeric_date(
    smart_server: tuple[MockServer, ClientKey], claim: str, value: Any
) -> None:
    """RFC 7523 §3: exp/nbf/iat are NumericDates; anything else is invalid_client (exp: NaN used to pass)."""
    from conformance.crypto.jose import assertion_claims, sign
    from conformance.flows.oauth import assertion_form

    server, key = smart_server
    token_url = server.settings.token_url
    assertion = sign(_with_claims(assertion_claims("bad-dates", token_url), {claim: value}), key)
    answer = httpx.post(token_url, data=dict(assertion_form(assertion, "system/Patient.rs")), timeout=10)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] == "invalid_client", answer.text


def test_token_endpoint_still_accepts_float_dates(smart_server: tuple[MockServer, ClientKey]) -> None:
    """The control: a fractional NumericDate is a NumericDate (RFC 7519 §2), so the refusals above are the values'."""
    from conformance.crypto.jose import assertion_claims, sign
    from conformance.flows.oauth import assertion_form

    server, key = smart_server
    token_url = server.settings.token_url
    claims = assertion_claims("bad-dates", token_url)
    claims.update(exp=claims["exp"] - 0.5, iat=claims["iat"] - 0.5, nbf=claims["iat"] - 0.5)
    answer = httpx.post(token_url, data=dict(assertion_form(sign(claims, key), "system/Patient.rs")), timeout=10)
    assert answer.status_code == 200, answer.text


@dataclass
class UdapRig:
    """A UDAP server, a community client, and the client_id one good registration gave it."""

    server: MockServer
    client: Any
    client_id: str


@pytest.fixture(scope="module")
def udap_rig(keys_dir: Path) -> Iterator[UdapRig]:
    from conformance.flows import udap

    _, prepare, client = udap_test_members(keys_dir)
    with MockServer(profiles.get("udap").server_settings(), prepare=prepare) as server:
        register_url = server.settings.register_url
        statement = udap.jwt_with_x5c(client.certified, udap.software_statement_claims(client, register_url))
        answer = httpx.post(register_url, json=udap.registration_body(statement), timeout=10)
        assert answer.status_code == 201, answer.text
        yield UdapRig(server, client, answer.json()["client_id"])


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", NOT_NUMERIC_DATES, ids=DATE_IDS)
def test_udap_registration_refuses_a_statement_whose_date_is_no_numeric_date(
    udap_rig: UdapRig, claim: str, value: Any
) -> None:
    """UDAP DCR §5.2: a bad claim is invalid_software_statement (a statement with exp: NaN used to register)."""
    from conformance.flows import udap

    register_url = udap_rig.server.settings.register_url
    claims = _with_claims(udap.software_statement_claims(udap_rig.client, register_url), {claim: value})
    body = udap.registration_body(udap.jwt_with_x5c(udap_rig.client.certified, claims))
    answer = httpx.post(register_url, json=body, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_software_statement", answer.text


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", NOT_NUMERIC_DATES, ids=DATE_IDS)
def test_udap_token_refuses_an_assertion_whose_date_is_no_numeric_date(
    udap_rig: UdapRig, claim: str, value: Any
) -> None:
    """UDAP JWT client authentication: the same dates, invalid_client at the token endpoint."""
    from conformance.flows import udap

    token_url = udap_rig.server.settings.token_url
    b2b = udap_rig.client.b2b.extension()
    claims = _with_claims(udap.authentication_claims(udap_rig.client_id, token_url, b2b), {claim: value})
    form = udap.token_form(udap.jwt_with_x5c(udap_rig.client.certified, claims), udap_rig.client.scope)
    answer = httpx.post(token_url, data=dict(form), timeout=10)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] == "invalid_client", answer.text


def test_udap_token_accepts_the_rigs_client(udap_rig: UdapRig) -> None:
    """The control for the refusals above: with good dates the registered client gets a token."""
    from conformance.flows import udap

    token_url = udap_rig.server.settings.token_url
    claims = udap.authentication_claims(udap_rig.client_id, token_url, udap_rig.client.b2b.extension())
    form = udap.token_form(udap.jwt_with_x5c(udap_rig.client.certified, claims), udap_rig.client.scope)
    answer = httpx.post(token_url, data=dict(form), timeout=10)
    assert answer.status_code == 200, answer.text


# --- the process: a client that drops mid-body, and Ctrl-C ---


@dataclass
class MockProcess:
    """`conformance mock --port 0` in a subprocess; the port comes from its banner."""

    process: subprocess.Popen[str]
    port: int

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a terminal sends it: SIGINT. Returns the exit code and everything on stderr."""
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=15)
        return self.process.returncode, stderr


@pytest.fixture
def mock_process() -> Iterator[MockProcess]:
    from tests.test_cli_end_to_end import CONFORMANCE

    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [*CONFORMANCE, "mock", "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = _read_line(process, timeout=30)
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", banner)
        assert found, f"no URL in the banner {banner!r}"
        running = MockProcess(process, int(found.group(1)))
        _wait_until_listening(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def _read_line(process: subprocess.Popen[str], *, timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the mock printed no banner"
    return process.stdout.readline()


def _wait_until_listening(mock: MockProcess) -> None:
    """The banner comes before uvicorn listens; connect until it does."""
    deadline = time.monotonic() + 15
    while True:
        try:
            mock.connect().close()
            return
        except ConnectionRefusedError:
            assert mock.process.poll() is None, "the mock exited"
            assert time.monotonic() < deadline, "the mock never listened"
            time.sleep(0.05)


PARTIAL_TOKEN_REQUEST = (
    b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 1000\r\n\r\ngrant_type"
)
"""Headers promising 1000 bytes, then 10 of them."""


def test_a_client_dropping_mid_body_leaves_no_traceback(mock_process: MockProcess) -> None:
    """Starlette's ClientDisconnect is no server error: nothing in the log, and the server keeps answering."""
    for reset in (False, True):
        sock = mock_process.connect()
        sock.sendall(PARTIAL_TOKEN_REQUEST)
        time.sleep(0.2)  # the handler is now waiting for the rest of the body
        if reset:  # RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    time.sleep(0.3)
    still_up = httpx.get(f"http://127.0.0.1:{mock_process.port}/fhir/metadata", timeout=10)
    assert still_up.status_code == 200
    code, stderr = mock_process.interrupt()
    assert "Traceback" not in stderr and "Exception in ASGI application" not in stderr, stderr
    assert code in (0, 130), stderr


def test_ctrl_c_exits_cleanly_even_with_a_request_half_sent(mock_process: MockProcess) -> None:
    """SIGINT exits 0 or 130 (not the usage code 2) without a traceback; the half-sent request gets 503.

    uvicorn cancels a request that outlives its graceful-shutdown timeout, and logs
    the CancelledError with a traceback unless the server ends the request itself.
    """
    sock = mock_process.connect()
    sock.sendall(PARTIAL_TOKEN_REQUEST)
    time.sleep(0.2)
    code, stderr = mock_process.interrupt()
    answer = sock.recv(4096)
    sock.close()
    assert "Traceback" not in stderr, stderr
    assert code in (0, 130), stderr
    assert answer.startswith(b"HTTP/1.1 503 ") or answer == b"", answer


def test_a_udap_statement_replayed_within_the_clock_leeway_after_its_exp_is_still_a_replay(keys_dir: Path) -> None:
    """register-replay-refused: the jti is remembered as long as the statement is accepted (exp + leeway), so a
    replay just after exp is refused, not registered as if new."""
    from conformance.flows import udap

    _, prepare, client = udap_test_members(keys_dir)
    settings = profiles.get("udap").server_settings(variations=["register-replay-refused"])
    with MockServer(settings, prepare=prepare) as server:
        register_url = server.settings.register_url
        claims = udap.software_statement_claims(client, register_url)
        claims["exp"] = claims["iat"] + 5
        body = udap.registration_body(udap.jwt_with_x5c(client.certified, claims))
        assert httpx.post(register_url, json=body, timeout=10).status_code == 201
        server.settings.clock_offset = 5 + server.settings.clock_skew_leeway / 2  # past exp, within the leeway
        again = httpx.post(register_url, json=body, timeout=10)
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_software_statement", again.text


def test_the_registration_found_for_an_issuer_is_the_active_one_most_recently_updated() -> None:
    from conformance.mock.store import Store

    store = Store()
    key = {"registration_key": "https://app.example|community"}
    store.put_client(Client("old", extra=dict(key)))
    store.put_client(Client("old", extra=dict(key), active=False))  # replaced: a new client_id was issued
    store.put_client(Client("new", extra=dict(key)))
    store.put_client(Client("older-still", extra=dict(key), active=False))
    found = store.find_client("registration_key", key["registration_key"])
    store.close()
    assert found is not None and found.client_id == "new"
