"""Consumer-centered data exchange: $jwt, $connect, Consent, $authorize, the Bearer-JWT token, and its limits.

Errors are judged by RFC 6749 and FHIR: test.fhir.org's 500s for token errors
fail here (a client's mistake is a 4xx), which the catalogue records as a known
deviation of that server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.outcomes import note
from conformance.core.recording import Exchange
from conformance.flows import ccde, discovery, oauth
from conformance.flows.expiry import read_until_refused
from conformance.flows.target import Target
from suites.conftest import expect_refused_by_the_deadline

SHORT_AUTHORIZATION = 1


@dataclass
class Flow:
    """The whole happy path, once: JWT, connect, consent, authorization, token."""

    jwt_exchange: Exchange
    connect: Exchange
    consent: Exchange
    authorization: Exchange
    token: Exchange
    jwt: str | None
    consent_id: str | None
    authorization_id: str | None

    @property
    def access_token(self) -> str | None:
        value = (self.token.json_object() or {}).get("access_token")
        return value if isinstance(value, str) and value else None


@pytest.fixture(scope="session")
def ccde_token_url(target: Target, capability_exchange: Exchange) -> str:
    if target.config.token_url:
        return target.config.token_url
    uris = discovery.oauth_uris(capability_exchange.json_object() or {}) or {}
    resolved = discovery.resolve(target.base_url, uris.get("token", "/auth/token"))
    expect.precondition(resolved, "the advertised token URL is unusable")
    assert resolved is not None
    return resolved


@pytest.fixture(scope="session")
def flow(target: Target, patient_id: str, ccde_token_url: str) -> Flow:
    http, base = target.http, target.base_url
    jwt_exchange = ccde.get_jwt(http, base, base)
    jwt = jwt_exchange.text.strip() if jwt_exchange.status == 200 else None
    connect = ccde.connect(http, base, source=base, jwt=jwt or "", patient=patient_id)
    consent = ccde.post_consent(http, base, ccde.consent_resource(patient_id))
    consent_id = ccde.consent_id_of(consent) if consent.status == 201 else None
    authorization = ccde.authorize(http, base, consent_id or "missing", ccde.authorize_parameters(jwt))
    authorization_id = ccde.authorization_id_of(authorization)
    token = ccde.request_token(http, ccde_token_url, jwt, authorization_id or "missing")
    return Flow(jwt_exchange, connect, consent, authorization, token, jwt, consent_id, authorization_id)


def _need(value: Any, what: str) -> Any:
    expect.precondition(value, f"no {what} (an earlier CCDE step failed)")
    return value


@pytest.mark.requirement("SBS-CCDE-01")
def test_jwt_is_served_as_application_jwt(flow: Flow) -> None:
    exchange = flow.jwt_exchange
    expect.status(exchange, {200}, "$jwt?source= must return the server's JWT")
    expect.media_type(exchange, {"application/jwt"}, "the JWT must be served as application/jwt")
    if exchange.text.strip().count(".") != 2:
        expect.fail(
            "$jwt did not return a compact JWT",
            expected="header.claims.signature",
            actual=exchange.text[:80],
            exchange=exchange,
        )


@pytest.fixture(scope="module")
def jwt_without_source(target: Target) -> Exchange:
    return ccde.get_jwt(target.http, target.base_url, None, purpose="$jwt without source")


@pytest.mark.requirement("SBS-CCDE-01E")
def test_jwt_without_source_is_refused(jwt_without_source: Exchange) -> None:
    expect.no_server_error(jwt_without_source, "$jwt without source")
    expect.status(jwt_without_source, {400}, "$jwt without source must be refused")
    body = expect.json_object(jwt_without_source, "the refusal must be an OperationOutcome")
    if body.get("resourceType") != "OperationOutcome":
        expect.fail(
            "the refusal is not an OperationOutcome",
            expected="OperationOutcome",
            actual=str(body.get("resourceType")),
            exchange=jwt_without_source,
        )


@pytest.mark.requirement("SBS-CCDE-04")
def test_connect_is_accepted_with_an_outcome(flow: Flow) -> None:
    _need(flow.jwt, "JWT")
    expect.status(flow.connect, {200}, "$connect must accept the connection")
    body = expect.json_object(flow.connect, "$connect must answer with an OperationOutcome")
    if body.get("resourceType") != "OperationOutcome":
        expect.fail(
            "$connect did not answer with an OperationOutcome",
            expected="OperationOutcome",
            actual=str(body.get("resourceType")),
            exchange=flow.connect,
        )


@pytest.mark.requirement("SBS-CCDE-02")
def test_consent_is_created_with_an_id(flow: Flow) -> None:
    expect.status(flow.consent, {201}, "a valid Consent must be created")
    if not flow.consent_id:
        expect.fail(
            "the created Consent has no id",
            expected="an id in the body or Location",
            actual=expect.describe(flow.consent, 160),
            exchange=flow.consent,
        )


@pytest.mark.requirement("SBS-CCDE-03")
def test_authorize_returns_an_authorization_id(flow: Flow) -> None:
    _need(flow.consent_id, "consent")
    expect.status(flow.authorization, {200}, "$authorize must grant the authorization")
    body = expect.json_object(flow.authorization, "$authorize must return Parameters")
    if body.get("resourceType") != "Parameters" or not flow.authorization_id:
        expect.fail(
            "$authorize returned no authorization id",
            expected="Parameters with an 'id' parameter",
            actual=expect.short_json(body),
            exchange=flow.authorization,
        )


@pytest.mark.requirement("SBS-CCDE-05")
def test_token_names_the_patient(flow: Flow, patient_id: str) -> None:
    _need(flow.authorization_id, "authorization")
    expect.status(flow.token, {200}, "the authorized Bearer JWT must get a token")
    body = expect.json_object(flow.token, "the token response must be JSON")
    note("Content-Type", flow.token.response_header("content-type"))
    problems = [m for m in ("access_token", "token_type", "expires_in", "scope") if m not in body]
    if body.get("patient") != patient_id:
        problems.append(f"patient {body.get('patient')!r}")
    if problems:
        expect.fail(
            "the CCDE token response is incomplete",
            expected=f"access_token, token_type, expires_in, scope, patient {patient_id}",
            actual="; ".join(problems),
            exchange=flow.token,
        )
    note("scope", body.get("scope"))


@pytest.fixture(scope="module")
def patient_reads(target: Target, flow: Flow, patient_id: str) -> dict[str, Exchange]:
    token = _need(flow.access_token, "access token")
    other = next(p for p in ("p2", "1316024", "1") if p != patient_id)
    headers = {"Accept": "application/fhir+json", **oauth.bearer(token)}
    return target.http.side_by_side(
        {
            "own": lambda: target.http.request(
                "GET", f"{target.base_url}/Patient/{patient_id}", purpose="read the consenting patient", headers=headers
            ),
            "other": lambda: target.http.request(
                "GET",
                f"{target.base_url}/Patient/{other}",
                purpose="read another patient with the same token",
                headers=headers,
            ),
        }
    )


@pytest.mark.requirement("SBS-CCDE-06")
def test_token_reads_its_patient(patient_reads: dict[str, Exchange]) -> None:
    expect.status(patient_reads["own"], {200}, "the token must read the patient who consented")


@pytest.mark.requirement("SBS-CCDE-06")
def test_token_cannot_read_another_patient(patient_reads: dict[str, Exchange]) -> None:
    exchange = expect.answered(patient_reads["other"])
    if exchange.status == 200:
        expect.fail(
            "a CCDE token read a patient who did not consent",
            expected="403 or 404",
            actual=expect.describe(exchange, 120),
            exchange=exchange,
        )
    expect.status(exchange, {401, 403, 404}, "another patient must be refused")


# --- errors ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def errors(target: Target, flow: Flow, ccde_token_url: str) -> dict[str, Exchange | None]:
    http, base = target.http, target.base_url
    jwt = _need(flow.jwt, "JWT")
    consent_id = _need(flow.consent_id, "consent")
    authorization_id = _need(flow.authorization_id, "authorization")
    other_jwt = ccde.get_jwt(http, base, base, purpose="a second JWT (not the authorized one)").text.strip()
    # Independent refusals (none changes what another is judged on): sent side by side.
    jobs: dict[str, Callable[[], Exchange | None]] = {
        "unknown-consent": lambda: ccde.authorize(
            http,
            base,
            "conformance-no-such-consent",
            ccde.authorize_parameters(jwt),
            purpose="$authorize an unknown consent",
        ),
        "unknown-patient": lambda: ccde.post_consent(
            http,
            base,
            ccde.consent_resource("conformance-no-such-patient"),
            purpose="consent for a patient that does not exist",
        ),
        "malformed-parameters": lambda: ccde.authorize(
            http,
            base,
            consent_id,
            {"resourceType": "Parameters", "parameter": [{"name": "jwt", "valueString": jwt}]},
            purpose="$authorize without duration",
        ),
        "bad-jwt": lambda: ccde.authorize(
            http,
            base,
            consent_id,
            ccde.authorize_parameters("not.a.jwt"),
            purpose="$authorize with a JWT this server never issued",
        ),
        "missing-jwt": lambda: ccde.request_token(
            http, ccde_token_url, None, authorization_id, purpose="token request without the Bearer JWT"
        ),
        "wrong-jwt": lambda: (
            ccde.request_token(
                http, ccde_token_url, other_jwt, authorization_id, purpose="token request with another JWT"
            )
            if other_jwt and other_jwt != jwt
            else None
        ),
        "unknown-authorization": lambda: ccde.request_token(
            http,
            ccde_token_url,
            jwt,
            "conformance-no-such-authorization",
            purpose="token request for an unknown authorization",
        ),
    }
    return target.http.side_by_side(jobs)


FHIR_ERRORS = {
    "unknown-consent": {404},
    "unknown-patient": {400, 404, 422},
    "malformed-parameters": {400, 422},
    "bad-jwt": {400, 401, 422},
}
TOKEN_ERRORS = {
    "missing-jwt": {"invalid_client", "invalid_request"},
    "wrong-jwt": {"invalid_grant", "invalid_client"},
    "unknown-authorization": {"invalid_grant", "invalid_scope"},
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("unknown-consent", marks=pytest.mark.requirement("SBS-CCDE-03E")),
        pytest.param("unknown-patient", marks=pytest.mark.requirement("SBS-CCDE-02E")),
        pytest.param("malformed-parameters", marks=pytest.mark.requirement("SBS-CCDE-03E")),
        pytest.param("bad-jwt", marks=pytest.mark.requirement("SBS-CCDE-03E")),
    ],
)
def test_fhir_step_errors_are_refused_with_an_outcome(case: str, errors: dict[str, Exchange | None]) -> None:
    answer = errors[case]
    assert answer is not None
    exchange = expect.answered(answer)
    expect.no_server_error(exchange, case)
    expect.status(exchange, FHIR_ERRORS[case], f"{case} must be refused")
    body = expect.json_object(exchange, "the refusal must be an OperationOutcome")
    if body.get("resourceType") != "OperationOutcome":
        expect.fail(
            "the refusal is not an OperationOutcome",
            expected="OperationOutcome",
            actual=str(body.get("resourceType")),
            exchange=exchange,
        )
    if case == "unknown-patient" and (body.get("id") or exchange.response_header("location")):
        expect.fail(
            "a consent for an unknown patient was given an id",
            expected="no resource created",
            actual=expect.describe(exchange, 120),
            exchange=exchange,
        )


@pytest.mark.requirement("SBS-CCDE-05E")
@pytest.mark.parametrize("case", sorted(TOKEN_ERRORS))
def test_token_errors_follow_rfc6749(case: str, errors: dict[str, Exchange | None]) -> None:
    answer = errors[case]
    expect.precondition(answer is not None, "$jwt returns the same JWT each time, so there is no other JWT to try")
    assert answer is not None
    exchange = expect.answered(answer)
    expect.no_server_error(exchange, f"a token request ({case})")
    if (exchange.json_object() or {}).get("access_token"):
        expect.fail(
            "a token was issued", expected="a refusal", actual=expect.describe(exchange, 120), exchange=exchange
        )
    status = expect.status(exchange, {400, 401}, "token errors must be 400 (401 for invalid_client)")
    note("status", status)
    error = expect.json_object(exchange, "token errors must be JSON").get("error")
    if error not in TOKEN_ERRORS[case] or (status == 401 and error != "invalid_client"):
        expect.fail(
            f"wrong error for {case}",
            expected=" or ".join(sorted(TOKEN_ERRORS[case])),
            actual=f"HTTP {status} {error!r}",
            exchange=exchange,
        )


# --- limits in time and by revocation ------------------------------------------------------------------------


@dataclass
class Limited:
    token: Exchange
    started: float
    refreshed: Exchange | None = None
    read_after: Exchange | None = None


@pytest.fixture(scope="session")
def short_authorization(target: Target, flow: Flow, patient_id: str, ccde_token_url: str) -> Limited:
    """An authorization of one second, with its token, taken early so the late check need hardly wait."""
    http, base = target.http, target.base_url
    jwt = _need(flow.jwt, "JWT")
    consent = ccde.post_consent(
        http, base, ccde.consent_resource(patient_id), purpose="a second consent (short authorization)"
    )
    consent_id = _need(ccde.consent_id_of(consent), "second consent")
    granted = ccde.authorize(
        http,
        base,
        consent_id,
        ccde.authorize_parameters(jwt, value=SHORT_AUTHORIZATION, unit="s"),
        purpose="$authorize for one second",
    )
    auth_id = _need(ccde.authorization_id_of(granted), "short authorization")
    return Limited(
        ccde.request_token(http, ccde_token_url, jwt, auth_id, purpose="token within the one-second authorization"),
        time.monotonic(),
    )


@pytest.fixture(scope="module")
def revoked(target: Target, flow: Flow, patient_id: str, ccde_token_url: str) -> Limited:
    http, base = target.http, target.base_url
    jwt = _need(flow.jwt, "JWT")
    consent = ccde.post_consent(http, base, ccde.consent_resource(patient_id), purpose="a third consent (to revoke)")
    consent_id = _need(ccde.consent_id_of(consent), "third consent")
    granted = ccde.authorize(
        http, base, consent_id, ccde.authorize_parameters(jwt), purpose="$authorize the consent to revoke"
    )
    auth_id = _need(ccde.authorization_id_of(granted), "authorization to revoke")
    token = ccde.request_token(http, ccde_token_url, jwt, auth_id, purpose="token before revocation")
    access = _need((token.json_object() or {}).get("access_token"), "token before revocation")
    ccde.revoke(http, base, consent_id)
    read = http.request(
        "GET",
        f"{base}/Patient/{patient_id}",
        purpose="read after the consent was revoked",
        headers={"Accept": "application/fhir+json", **oauth.bearer(access)},
    )
    again = ccde.request_token(http, ccde_token_url, jwt, auth_id, purpose="token after revocation")
    return Limited(token, time.monotonic(), again, read)


def _stopped(exchange: Exchange | None, what: str) -> None:
    assert exchange is not None
    expect.answered(exchange)
    if exchange.status == 200:
        expect.fail(
            f"{what} still works",
            expected="401 (read) or 400 (token)",
            actual=expect.describe(exchange, 120),
            exchange=exchange,
        )
    expect.no_server_error(exchange, what)


@pytest.mark.requirement("SBS-CCDE-08")
def test_revoked_consent_stops_the_token(revoked: Limited) -> None:
    _stopped(revoked.read_after, "a token after its consent was revoked")
    _stopped(revoked.refreshed, "a token request after revocation")


@pytest.mark.late
@pytest.mark.requirement("SBS-CCDE-07")
def test_token_stops_when_the_authorization_ends(short_authorization: Limited, target: Target, patient_id: str) -> None:
    access = _need(
        (short_authorization.token.json_object() or {}).get("access_token"), "token in the short authorization"
    )
    after = read_until_refused(
        lambda: target.http.request(
            "GET",
            f"{target.base_url}/Patient/{patient_id}",
            purpose="read after the authorization ended",
            headers={"Accept": "application/fhir+json", **oauth.bearer(access)},
        ),
        short_authorization.started + SHORT_AUTHORIZATION,
        deadline=short_authorization.started + target.config.expiry_wait,
    )
    note(*after.what_the_server_did())
    expect_refused_by_the_deadline(
        after, f"a token still works {after.seconds_past_the_end:.1f} s after its authorization's duration", "401"
    )
    _stopped(after.last, f"a token {after.seconds_past_the_end:.1f} s after its authorization's duration")
