"""Token endpoint, bad requests: each defect is refused with the right status, code and headers.

One request per case (see assertion_cases.py); several small checks read each
answer. Where the specs leave latitude (400 or 401 for invalid_client; which of
two codes) every compliant answer passes and the choice is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from conformance.checking import expect
from conformance.core.outcomes import note
from conformance.crypto.jose import ClientKey
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead
from suites.token.assertion_cases import CASES, Case, Kit, Outcome

ERROR_CODE_CHARS = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]+$")
OAUTH_CASES = [c for c in CASES if c.oauth_error]


def _params(cases: list[Case], *, own_requirement: bool) -> list[object]:
    params: list[object] = []
    for case in cases:
        marks = [pytest.mark.requirement(case.requirement, level=case.level)] if own_requirement else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def perform(
    target: Target, token_url: str, client_id: str, signing_key: ClientKey, send_ahead: SendAhead
) -> Callable[[Case], Outcome]:
    """Send each case once, on first use, and remember the answer."""
    kit = Kit(target, token_url, client_id, signing_key)
    return send_ahead(lambda case: case.build(kit))


def _accepted(outcome: Outcome) -> bool:
    """A defect was accepted when a token came back (a 200 page without a token is no grant)."""
    body = outcome.exchange.json_object() or {}
    return outcome.exchange.status is not None and bool(body.get("access_token"))


def _refused(outcome: Outcome, case: Case) -> None:
    """Precondition of the error-shape checks: the server refused the request."""
    expect.answered(outcome.exchange)
    expect.precondition(not _accepted(outcome), f"the {case.id} request was accepted; see test_no_token_is_issued")
    status = outcome.exchange.status or 0
    expect.precondition(400 <= status < 500, f"the {case.id} request got HTTP {status}; see test_refusal_status")


@pytest.mark.parametrize("case", _params(CASES, own_requirement=True))
def test_no_token_is_issued(case: Case, perform: Callable[[Case], Outcome]) -> None:
    outcome = perform(case)
    exchange = expect.answered(outcome.exchange)
    expect.no_server_error(exchange, case.what)
    if _accepted(outcome):
        if case.may_accept:
            note("server accepted", case.what)
            return
        expect.fail(
            f"a token request with a defect was accepted: {case.what}",
            expected=f"refusal ({', '.join(sorted(case.codes))})",
            actual=expect.describe(exchange),
            exchange=exchange,
        )
    if case.may_accept:
        note("server chose", "refusal")


@pytest.mark.requirement("SBS-AERR-35")
@pytest.mark.parametrize("case", _params(OAUTH_CASES, own_requirement=False))
def test_refusal_status(case: Case, perform: Callable[[Case], Outcome]) -> None:
    outcome = perform(case)
    exchange = expect.answered(outcome.exchange)
    expect.precondition(not _accepted(outcome), f"the {case.id} request was accepted; see test_no_token_is_issued")
    status = expect.status(exchange, case.statuses, f"refusal of '{case.what}' must use an allowed status")
    note("status", status)
    error = (exchange.json_object() or {}).get("error")
    if status == 401 and case.oauth_error and error not in (None, "invalid_client"):
        expect.fail(
            "HTTP 401 is used for an error other than invalid_client",
            expected="400, or 401 only with invalid_client",
            actual=f"401 with error {error!r}",
            exchange=exchange,
        )
    if status == 401 and exchange.request_header("authorization") and not exchange.response_header("www-authenticate"):
        expect.fail(
            "a 401 after Authorization-header authentication has no WWW-Authenticate challenge",
            expected="WWW-Authenticate: Basic …",
            actual="no WWW-Authenticate header",
            exchange=exchange,
        )


@pytest.mark.parametrize("case", _params(OAUTH_CASES, own_requirement=True))
def test_error_code(case: Case, perform: Callable[[Case], Outcome]) -> None:
    outcome = perform(case)
    _refused(outcome, case)
    body = outcome.exchange.json_object()
    expect.precondition(body is not None, "the error body is not JSON; see test_error_is_json")
    assert body is not None
    error = body.get("error")
    if error in case.tolerated:
        note("error code (tolerated)", error)
        return
    if error not in case.codes:
        expect.fail(
            f"wrong error code for: {case.what}",
            expected=" or ".join(sorted(case.codes)),
            actual=repr(error),
            exchange=outcome.exchange,
        )
    note("error code", error)


@pytest.mark.requirement("SBS-AERR-36")
@pytest.mark.parametrize("case", _params(OAUTH_CASES, own_requirement=False))
def test_error_is_json(case: Case, perform: Callable[[Case], Outcome]) -> None:
    outcome = perform(case)
    _refused(outcome, case)
    exchange = outcome.exchange
    expect.media_type(exchange, {"application/json"}, "token error responses must be application/json")
    body = expect.json_object(exchange, "token error responses must be a JSON object")
    note("other members", ", ".join(sorted(set(body) - {"error", "error_description", "error_uri"})) or "none")
    error = body.get("error")
    if not isinstance(error, str) or not ERROR_CODE_CHARS.match(error):
        expect.fail(
            "the error member is missing or uses characters RFC 6749 forbids",
            expected="error: printable ASCII without quote or backslash",
            actual=repr(error),
            exchange=exchange,
        )


@pytest.mark.requirement("SBS-AERR-37")
@pytest.mark.parametrize("case", _params(OAUTH_CASES, own_requirement=False))
def test_error_is_explained(case: Case, perform: Callable[[Case], Outcome]) -> None:
    outcome = perform(case)
    _refused(outcome, case)
    body = outcome.exchange.json_object()
    expect.precondition(body is not None, "the error body is not JSON; see test_error_is_json")
    assert body is not None
    if not body.get("error_description") and not body.get("error_uri"):
        expect.fail(
            "the error does not say why",
            expected="error_description or error_uri",
            actual=expect.short_json(body),
            exchange=outcome.exchange,
        )
    note("explained by", " and ".join(m for m in ("error_description", "error_uri") if body.get(m)))


@pytest.mark.requirement("SBS-AERR-38")
@pytest.mark.parametrize("case", _params(OAUTH_CASES, own_requirement=False))
def test_error_is_not_cached(case: Case, perform: Callable[[Case], Outcome]) -> None:
    outcome = perform(case)
    _refused(outcome, case)
    expect.header_has_token(outcome.exchange, "Cache-Control", "no-store", "token error responses should not be cached")


@pytest.mark.requirement("SBS-AERR-14F")
def test_foreign_jku_is_not_fetched(target: Target, perform: Callable[[Case], Outcome]) -> None:
    expect.applicable(target.attacker_host, "the suite hosts no JWKS here, so it cannot see fetches")
    case = next(c for c in CASES if c.id == "jku-elsewhere")
    expect.answered(perform(case).exchange)
    assert target.attacker_host is not None
    fetched = target.attacker_host.fetch_count("attacker")
    if fetched:
        expect.fail(
            "the server fetched a JWKS URL taken from an assertion header",
            expected="no request to the unregistered jku",
            actual=f"{fetched} request(s) to {target.attacker_host.url('attacker')}",
        )
