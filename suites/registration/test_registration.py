"""UDAP dynamic client registration: a good registration, each kind of bad one, modification and cancellation.

The registration that later checks depend on is sent once (never re-sent to
check another field). Cancellation runs on a separate certificate so the main
client survives; on a shared sandbox without one, it is not applicable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import UdapConfig
from conformance.core.outcomes import SpecWarning, note
from conformance.core.recording import Exchange
from conformance.flows import oauth, udap
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead
from suites.registration.registration_cases import CASES, Case, Kit, fitting
from suites.udap_support import b2b_for

JWT_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")


@pytest.mark.requirement("UDAP-REG-01")
def test_new_registration_is_201(udap_registration: udap.Registration) -> None:
    expect.status(
        udap_registration.exchange, {201}, "a valid software statement from a new client must get 201 Created"
    )


@pytest.mark.requirement("UDAP-REG-02")
def test_registration_issues_a_client_id(udap_registration: udap.Registration) -> None:
    body = expect.json_object(udap_registration.exchange, "the registration response must be a JSON object")
    if not isinstance(body.get("client_id"), str) or not body["client_id"]:
        expect.fail(
            "no client_id was issued",
            expected="a non-empty client_id",
            actual=expect.short_json(body),
            exchange=udap_registration.exchange,
        )


@pytest.mark.requirement("UDAP-REG-03")
def test_software_statement_is_returned_unchanged(udap_registration: udap.Registration) -> None:
    body = expect.json_object(udap_registration.exchange, "the registration response must be a JSON object")
    if body.get("software_statement") != udap_registration.statement:
        expect.fail(
            "the response does not return the submitted software statement unchanged",
            expected="software_statement identical to the one sent",
            actual="absent" if "software_statement" not in body else "a different value",
            exchange=udap_registration.exchange,
        )


@pytest.mark.requirement("UDAP-REG-04")
def test_registered_metadata_is_stated(udap_registration: udap.Registration) -> None:
    body = expect.json_object(udap_registration.exchange, "the registration response must be a JSON object")
    problems = []
    if body.get("grant_types") != ["client_credentials"]:
        problems.append(f"grant_types {body.get('grant_types')!r}")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        problems.append(f"token_endpoint_auth_method {body.get('token_endpoint_auth_method')!r}")
    if not body.get("client_name"):
        problems.append("no client_name")
    if problems:
        expect.fail(
            "the registered metadata is not stated",
            expected="grant_types, token_endpoint_auth_method, client_name",
            actual="; ".join(problems),
            exchange=udap_registration.exchange,
        )
    if not body.get("scope"):
        raise SpecWarning(
            "the registration response does not state the registered scope", exchange=udap_registration.exchange
        )
    note("registered scope", body.get("scope"))


@pytest.mark.requirement("UDAP-REG-05")
def test_response_has_no_jwt_claims_or_empty_values(udap_registration: udap.Registration) -> None:
    body = expect.json_object(udap_registration.exchange, "the registration response must be a JSON object")
    echoed = [c for c in JWT_CLAIMS if c in body]
    empty = [k for k, v in body.items() if v is None or v == ""]
    if echoed or empty:
        expect.fail(
            "the registration response echoes JWT claims or holds empty values",
            expected="registered metadata only",
            actual=f"claims {echoed}, empty {empty}",
            exchange=udap_registration.exchange,
        )


@pytest.mark.requirement("UDAP-REG-06")
def test_response_is_application_json(udap_registration: udap.Registration) -> None:
    expect.media_type(
        udap_registration.exchange, {"application/json"}, "registration responses must be application/json"
    )


@pytest.fixture(scope="module")
def kit(
    target: Target,
    udap_client: udap.UdapClient,
    udap_config: UdapConfig,
    registration_url: str,
    udap_token_url: str,
    udap_client_id: str,
    udap_grant: oauth.TokenGrant,
) -> Kit:
    """The bad registrations use the main client's identity; its token is taken first, so a server that
    wrongly accepts one (and so overwrites the registration) does not spoil the token checks."""
    return Kit(target, udap_client, udap_config, registration_url, udap_token_url)


@pytest.fixture(scope="module")
def refused(kit: Kit, udap_client_id: str, send_ahead: SendAhead) -> Callable[[Case], Exchange]:
    """Each case sent once (the group side by side); every check reads the recorded answer.

    Every case registers under the main client's identity, so one the server accepts (a defect it may ignore, or a
    faulty server) replaces that registration, and side by side which one the later checks met would be whichever
    the server finished last. So the first reader of an accepted case registers the main client again, validly:
    its request waits for the group to drain, and the later checks always meet the main client's own registration,
    at any concurrency (one such request per accepted case, at any concurrency)."""
    answer = send_ahead(lambda case: case.build(kit))
    restored: set[str] = set()

    def read(case: Case) -> Exchange:
        exchange = answer(case)
        if _registered(exchange) and case.id not in restored:
            restored.add(case.id)
            again = kit.send(f"register the main client again (the {case.id} registration was accepted in its name)")
            client_id = (again.json_object() or {}).get("client_id")
            if not _registered(again) or client_id != udap_client_id:
                # A server may issue a new client_id on re-registration (keeping it is a SHOULD): the later checks,
                # which use the first one, may then meet a cancelled client. Said here, where it happened.
                note("main client registered again", f"{expect.describe(again, 120)}; client_id {client_id!r}")
        return exchange

    return read


def _params(own_requirement: bool) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.profiles(*case.profiles)]
            + ([pytest.mark.requirement(case.requirement)] if own_requirement else []),
        )
        for case in CASES
    ]


def _registered(exchange: Exchange) -> bool:
    body = exchange.json_object() or {}
    return exchange.status is not None and (200 <= exchange.status < 300 or bool(body.get("client_id")))


@pytest.mark.parametrize("case", _params(own_requirement=True))
def test_bad_registration_is_refused(case: Case, refused: Callable[[Case], Exchange]) -> None:
    exchange = expect.answered(refused(case))
    expect.no_server_error(exchange, case.what)
    if _registered(exchange) and case.may_accept:
        note("server chose", f"ignoring the defect ({case.what})")
        return
    if _registered(exchange):
        expect.fail(
            f"a registration with a defect was accepted: {case.what}",
            expected="400 and no client_id",
            actual=expect.describe(exchange),
            exchange=exchange,
        )


@pytest.mark.requirement("UDAP-REGERR-20")
@pytest.mark.parametrize("case", _params(own_requirement=False))
def test_refusal_is_a_json_400(case: Case, refused: Callable[[Case], Exchange]) -> None:
    exchange = expect.answered(refused(case))
    expect.precondition(
        not _registered(exchange) and (exchange.status or 0) < 500, f"the {case.id} registration was not refused"
    )
    status = expect.status(exchange, case.statuses, f"refusal of '{case.what}' must be HTTP 400")
    if status == 400:
        body = expect.json_object(exchange, "a registration error must be a JSON object")
        if not isinstance(body.get("error"), str):
            expect.fail(
                "the registration error has no error code",
                expected="an error member",
                actual=expect.short_json(body),
                exchange=exchange,
            )


@pytest.mark.parametrize("case", _params(own_requirement=True))
def test_refusal_names_the_cause(case: Case, refused: Callable[[Case], Exchange]) -> None:
    exchange = expect.answered(refused(case))
    body = exchange.json_object()
    expect.precondition(
        not _registered(exchange) and exchange.status == 400 and body, f"the {case.id} registration got no JSON 400"
    )
    assert body is not None
    error = body.get("error")
    if error in case.tolerated:
        raise SpecWarning(
            f"error code {error} used; {' or '.join(sorted(case.codes))} names the cause", exchange=exchange
        )
    if error not in fitting(case.codes):
        # The 400 and the JSON error are SHALL (test_refusal_is_a_json_400); which code names the cause is SHOULD.
        expect.fail(
            f"the error code does not fit the cause: {case.what}",
            expected=" or ".join(sorted(fitting(case.codes))),
            actual=repr(error),
            exchange=exchange,
            requirement="UDAP-REGERR-CODE",
        )
    note("error code", error)


@dataclass
class Lifecycle:
    first: Exchange
    again: Exchange
    token_before: Exchange
    cancel: Exchange
    token_after: Exchange

    def __evidence__(self) -> list[Exchange]:
        return [self.first, self.again, self.token_before, self.cancel, self.token_after]


@pytest.fixture(scope="module")
def lifecycle(kit: Kit) -> Lifecycle:
    """Register a second certificate, register it again with a new name, then cancel it."""
    certified = kit.config.fixtures.get("lifecycle")
    expect.applicable(
        certified,
        "no separate certificate for modification and cancellation (udap.lifecycle_cert_chain); "
        "cancelling the main registration would break a shared sandbox",
    )
    assert certified is not None
    uri = certified.san_uris()[0]
    client = udap.UdapClient(
        certified, uri, kit.client.b2b, kit.client.scope, client_name="conformance lifecycle client"
    )

    def register(purpose: str, **overrides: Any) -> Exchange:
        statement = udap.jwt_with_x5c(
            certified, udap.software_statement_claims(client, kit.registration_url, **overrides)
        )
        return kit.post(udap.registration_body(statement), purpose)

    first = register("register a second client (lifecycle)")
    again = register(
        "register the same iss again with a new client_name", client_name="conformance lifecycle client, renamed"
    )
    client_id = (again.json_object() or first.json_object() or {}).get("client_id")

    def token(purpose: str) -> Exchange:
        claims = udap.authentication_claims(str(client_id), kit.token_url, b2b_for(kit.target, client))
        assertion = udap.jwt_with_x5c(certified, claims)
        return oauth.post_token(
            kit.target.http, kit.token_url, udap.token_form(assertion, client.scope), purpose=purpose
        )

    before = token("token for the lifecycle client before cancellation")
    cancel = register("cancel the lifecycle registration (grant_types [])", grant_types=[])
    after = token("token for the cancelled client")
    return Lifecycle(first, again, before, cancel, after)


@pytest.mark.requirement("UDAP-MOD-01")
def test_re_registration_keeps_the_client_id(lifecycle: Lifecycle) -> None:
    expect.status(lifecycle.first, {201}, "the lifecycle client's first registration must succeed")
    status = expect.status(
        lifecycle.again, {200, 201}, "registering the same iss again must be accepted as a modification"
    )
    first_id = (lifecycle.first.json_object() or {}).get("client_id")
    again_id = (lifecycle.again.json_object() or {}).get("client_id")
    note("status of the modification", status)
    # Accepting the repeat as a modification is SHALL; keeping the client_id and answering 200 are SHOULDs
    # (UDAP Security STU2 §3.4: a server that issues a new client_id cancels the old one).
    if first_id != again_id:
        expect.fail(
            "re-registration issued a different client_id",
            expected=f"client_id {first_id}",
            actual=f"client_id {again_id}",
            exchange=lifecycle.again,
            requirement="UDAP-MOD-01S",
        )
    if status == 201:
        expect.fail(
            "the modification was answered 201, not 200",
            expected="HTTP 200 for a modification",
            actual="HTTP 201",
            exchange=lifecycle.again,
            requirement="UDAP-MOD-01S",
        )


@pytest.mark.requirement("UDAP-MOD-04")
def test_cancellation_stops_the_client(lifecycle: Lifecycle) -> None:
    expect.status(lifecycle.token_before, {200}, "the lifecycle client must get a token before it is cancelled")
    expect.status(lifecycle.cancel, {200}, "grant_types [] must cancel the registration")
    exchange = expect.answered(lifecycle.token_after)
    if exchange.status == 200 or "access_token" in (exchange.json_object() or {}):
        expect.fail(
            "a cancelled client still gets tokens",
            expected="invalid_client",
            actual=expect.describe(exchange),
            exchange=exchange,
        )
    expect.status(exchange, {400, 401}, "a cancelled client must be refused")


@pytest.fixture(scope="module")
def replayed_registration(kit: Kit, lifecycle: Lifecycle) -> Exchange:
    """The lifecycle client's first software statement (same jti) sent again, once its lifecycle is over.

    Not the main client's: a compliant server may answer a repeat with a new client_id and cancel the old one,
    which would pull the registration out from under every later check.
    """
    expect.precondition(lifecycle.first.status == 201, "the lifecycle client's first registration did not succeed")
    statement = json.loads(lifecycle.first.request_body)["software_statement"]
    return kit.post(udap.registration_body(statement), "the lifecycle client's first software statement again")


@pytest.mark.requirement("UDAP-REGERR-10")
def test_replayed_software_statement_is_answered(replayed_registration: Exchange) -> None:
    """A server MAY refuse a replayed statement or treat it as a modification; it may not fall over."""
    exchange = expect.answered(replayed_registration)
    expect.no_server_error(exchange, "a replayed software statement")
    status = expect.status(exchange, {200, 201, 400}, "a replayed software statement must be accepted or refused")
    if status == 400:
        body = expect.json_object(exchange, "a refusal of a replayed statement must be a JSON error")
        note("server chose", f"refusal ({body.get('error')})")
    else:
        note("server chose", f"accepting it as a modification (HTTP {status})")
