"""Consumer-Centered Data Exchange (HL7 2017 track, as on test.fhir.org): both roles on one server.

Target role: `GET $jwt?source=` hands out the server's JWT; `POST $connect`
accepts a connection. Source role: `POST Consent` records the patient's consent,
`POST Consent/{id}/$authorize` turns it plus the target's JWT and a duration into
an authorization id, and `POST /auth/token` with `Authorization: Bearer {jwt}`
and `scope={authorization id}` issues a token for that one patient. The token
stops working when the authorization's duration ends or the consent is revoked.
Token errors follow RFC 6749 (400), not test.fhir.org's 500s.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from conformance.crypto.jose import generate_rsa
from conformance.mock.assertions import LAST_NUMERIC_DATE
from conformance.mock.context import MockContext
from conformance.mock.errors import OAuthError, no_store_headers, oauth_error_response
from conformance.mock.fhir import Choice, error_response, fhir_response
from conformance.mock.oauth import issue_token, read_token_form
from conformance.mock.store import AccessToken, Client

SIMPLE_OAUTH = "http://hl7.org/fhir/ConsentDefinition/simple-oauth"
SCOPES_SYSTEM = "http://smarthealthit.org/fhir/scopes"
UCUM_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "wk": 604800, "mo": 2592000, "a": 31536000}
CONSENT_SCOPE = "user/*.*"
FHIR_JSON = Choice("application/fhir+json")


@dataclass
class Authorization:
    id: str
    consent_id: str
    patient: str
    jwt: str
    expires_at: float


class CcdeState:
    """What the CCDE server remembers besides clients and tokens: its key, consents and authorizations."""

    def __init__(self) -> None:
        self.key = generate_rsa(kid="ccde-server")
        self.consents: dict[str, dict[str, Any]] = {}
        self.authorizations: dict[str, Authorization] = {}


def _state(ctx: MockContext) -> CcdeState:
    state = getattr(ctx, "ccde", None)
    if state is None:
        state = CcdeState()
        ctx.ccde = state  # type: ignore[attr-defined]
    return state


def _outcome(ctx: MockContext, status: int, code: str, text: str) -> Response:
    return error_response(ctx, status, code, text)


async def server_jwt(request: Request) -> Response:
    """$jwt: the server's own JWT, which sources later see in $authorize and at their token endpoint."""
    ctx: MockContext = request.app.state.ctx
    source = request.query_params.get("source")
    if not source and not ctx.fault("ccde-jwt-without-source"):
        return _outcome(ctx, 400, "required", "the source parameter is required")
    state = _state(ctx)
    now = int(ctx.now())
    claims = {
        "iss": ctx.settings.fhir_base,
        "sub": ctx.settings.public_url,
        "iat": now,
        "exp": now + 86400,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, state.key.private_key, algorithm="RS256", headers={"kid": state.key.kid, "typ": "JWT"})
    media = "text/plain" if ctx.fault("ccde-jwt-wrong-content-type") else "application/jwt"
    if ctx.variation("ccde-jwt-charset"):
        media += "; charset=utf-8"
    return Response(token, media_type=media)


def _known_jwt(ctx: MockContext, token: str) -> bool:
    try:
        jwt.decode(token, _state(ctx).key.public_key, algorithms=["RS256"], options={"verify_aud": False})
    except jwt.PyJWTError:
        return False
    return True


async def connect(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    raw = (await request.body()).decode("utf-8", errors="replace")
    from urllib.parse import parse_qsl

    fields = dict(parse_qsl(raw)) if "=" in raw and not raw.lstrip().startswith("{") else {}
    if not fields.get("source") or not fields.get("jwt"):
        return _outcome(ctx, 400, "required", "$connect needs source and jwt")
    if ctx.fault("ccde-connect-not-outcome"):
        return PlainTextResponse("Connection Accepted")
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "Connection Accepted"}],
    }
    return fhir_response(ctx, outcome, FHIR_JSON)


def _consent_problem(ctx: MockContext, consent: Any) -> tuple[int, str] | None:
    if not isinstance(consent, dict) or consent.get("resourceType") != "Consent":
        return 400, "the body must be a Consent resource"
    if consent.get("status") != "active":
        return 400, "the consent must be active"
    subject = consent.get("patient")  # any JSON: a string or array here used to be a 500
    patient = str(subject.get("reference", "")) if isinstance(subject, dict) else ""
    if not patient.startswith("Patient/"):
        return 400, "the consent must name a patient"
    if patient.split("/", 1)[1] not in ctx.resources["Patient"] and not ctx.fault("ccde-consent-any-patient"):
        return 422, f"{patient} does not exist"
    text = json.dumps(consent)
    if "simple-oauth" not in text:
        return 400, f"policyRule must be {SIMPLE_OAUTH}"
    provision = consent.get("provision")
    if not isinstance(provision, dict) or provision.get("type") != "permit":
        return 400, "the provision must permit"
    if '"access"' not in json.dumps(provision.get("action", [])):
        return 400, "the provision must permit access (consentaction#access)"
    if SCOPES_SYSTEM not in text:
        return 400, f"a scope coding from {SCOPES_SYSTEM} is required"
    return None


async def create_consent(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    try:
        consent = json.loads(await request.body())
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser can follow
        return _outcome(ctx, 400, "structure", "the body is not JSON")
    problem = _consent_problem(ctx, consent)
    if problem:
        return _outcome(ctx, problem[0], "invalid" if problem[0] == 400 else "not-found", problem[1])
    consent_id = f"consent-{uuid.uuid4().hex[:12]}"
    consent["id"] = consent_id
    _state(ctx).consents[consent_id] = consent
    location = f"{ctx.settings.fhir_base}/Consent/{consent_id}"
    if ctx.fault("ccde-consent-without-id"):
        consent = {k: v for k, v in consent.items() if k != "id"}
        return fhir_response(ctx, consent, FHIR_JSON, 201)
    return fhir_response(ctx, consent, FHIR_JSON, 201, Location=location)


async def revoke_consent(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    consent = _state(ctx).consents.get(request.path_params["id"])
    if consent is None:
        return _outcome(ctx, 404, "not-found", "no such consent")
    if not ctx.fault("ccde-revocation-ignored"):
        consent["status"] = "inactive"
    return Response(status_code=204)


def _parameter(parameters: dict[str, Any], name: str) -> dict[str, Any] | None:
    items = parameters.get("parameter")
    for item in items if isinstance(items, list) else []:  # a number here used to be a 500
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def _duration_seconds(value: Any) -> float | None:
    """A UCUM Quantity's length in seconds; None unless it is a positive duration a clock can reach.

    JSON booleans are ints to Python, and NaN and Infinity parse as floats: NaN passed
    `<= 0` and granted an authorization that never ended (NaN compares false with the
    clock), and 10**400 could not become a float (a 500).
    """
    if not isinstance(value, dict):
        return None
    number = value.get("value")
    factor = UCUM_SECONDS.get(str(value.get("code") or value.get("unit")))
    if isinstance(number, bool) or not isinstance(number, int | float) or not factor:
        return None
    seconds = number * factor  # exact for ints; NaN or inf for the floats that are no duration
    return float(seconds) if 0 < seconds <= LAST_NUMERIC_DATE else None


async def authorize(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    state = _state(ctx)
    consent_id = request.path_params["id"]
    consent = state.consents.get(consent_id)
    if consent is None:
        if ctx.fault("ccde-authorize-unknown-consent-500"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return _outcome(ctx, 404, "not-found", f"Consent/{consent_id} is not known")
    try:
        parameters = json.loads(await request.body())
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser can follow
        return _outcome(ctx, 400, "structure", "the body is not JSON")
    lenient = ctx.fault("ccde-authorize-lenient")
    duration = _parameter(parameters, "duration") if isinstance(parameters, dict) else None
    token = _parameter(parameters, "jwt") if isinstance(parameters, dict) else None
    seconds = _duration_seconds((duration or {}).get("valueDuration"))
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters" or seconds is None:
        if not lenient:
            return _outcome(
                ctx, 400, "invalid", "send Parameters with duration (valueDuration, UCUM unit) and jwt (valueString)"
            )
        seconds = seconds or 3600.0
    jwt_value = (token or {}).get("valueString")
    if (not isinstance(jwt_value, str) or not _known_jwt(ctx, jwt_value)) and not lenient:
        return _outcome(ctx, 400, "invalid", "jwt must be a JWT this server issued through $jwt")
    if consent.get("status") != "active":
        return _outcome(ctx, 409, "conflict", "the consent is no longer active")
    auth_id = secrets.token_urlsafe(16)
    patient = str(consent["patient"]["reference"]).split("/", 1)[1]
    never = ctx.fault("ccde-authorization-never-expires")
    state.authorizations[auth_id] = Authorization(
        auth_id, consent_id, patient, str(jwt_value), ctx.now() + (10**9 if never else seconds)
    )
    result = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "id", "valueString": auth_id},
            {"name": "Message", "valueString": "Authorization granted"},
        ],
    }
    if ctx.fault("ccde-authorize-without-id"):
        result["parameter"] = result["parameter"][1:]
    return fhir_response(ctx, result, FHIR_JSON)


async def token(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    state = _state(ctx)
    try:
        form = await read_token_form(ctx, request)
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "use grant_type=client_credentials")
        scheme, _, bearer = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            raise OAuthError(
                "invalid_client",
                "send the authorized JWT as Authorization: Bearer",
                401,
                {"WWW-Authenticate": "Bearer"},
            )
        authorization = state.authorizations.get(form.get("scope", ""))
        if authorization is None:
            raise OAuthError("invalid_grant", "the scope is not a known authorization id")
        if bearer.strip() != authorization.jwt and not ctx.fault("ccde-token-any-jwt"):
            raise OAuthError("invalid_grant", "the JWT is not the one the authorization was granted to")
        remaining = authorization.expires_at - ctx.now()
        if remaining <= 0:
            raise OAuthError("invalid_grant", "the authorization has expired")
        consent = state.consents[authorization.consent_id]
        if consent.get("status") != "active":
            raise OAuthError("invalid_grant", "the consent was revoked")
        client = Client(f"ccde:{authorization.id}", auth_method="ccde", scopes=[CONSENT_SCOPE])
        lifetime = max(1, int(min(3600, remaining)))
        extra = {
            "patient": authorization.patient,
            "authorization": authorization.id,
            "consent": authorization.consent_id,
        }
        fields: dict[str, object] = (
            {} if ctx.fault("ccde-token-without-patient") else {"patient": authorization.patient}
        )
        return issue_token(ctx, client, CONSENT_SCOPE, lifetime=lifetime, extra=extra, fields=fields)
    except OAuthError as err:
        if ctx.fault("ccde-token-errors-500"):
            return JSONResponse(
                {"error": "invalid_request", "error_description": err.description},
                status_code=500,
                headers=no_store_headers(ctx),
            )
        return oauth_error_response(ctx, err)


def visible(ctx: MockContext, token: AccessToken | None, resource: dict[str, Any]) -> bool:
    """A CCDE token sees its one patient (and that patient's data)."""
    if token is None or ctx.fault("ccde-token-any-patient"):
        return True
    patient = token.extra.get("patient")
    if resource["resourceType"] == "Patient":
        return bool(resource["id"] == patient)
    return bool(resource.get("subject", {}).get("reference") == f"Patient/{patient}")


def still_authorized(ctx: MockContext, token: AccessToken) -> bool:
    state = _state(ctx)
    authorization = state.authorizations.get(str(token.extra.get("authorization", "")))
    if authorization is None:
        return True
    consent = state.consents.get(authorization.consent_id, {})
    return not ctx.has_ended(authorization.expires_at) and consent.get("status") == "active"
