"""Cerner (Oracle Health) Millennium system accounts: client_secret_basic on a separate authorization server.

The authorization server listens on its own port and serves a tenant-scoped
token URL, `/tenants/{tenant}/hosts/{fhir-host}/protocols/oauth2/profiles/smart-v1/token`;
the FHIR server serves `/r4/{tenant}`. Errors take Cerner's shape: `error` plus an
`error_uri` whose path carries a reason code (`invalid-authorization-header`,
`invalid-client-credentials`, `invalid-tenant`, `empty-scopes`), no
`error_description`, and a `Cerner-Correlation-Id` header. Requested scopes that are
not granted are dropped silently. A switch makes every token request answer the way
an expired, revoked or IP-restricted registration does: `403` and `Access denied`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from typing import Any
from urllib.parse import quote, unquote_plus

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from conformance.mock.context import MockContext
from conformance.mock.errors import no_store_headers
from conformance.mock.fhir import choose_format, fhir_response
from conformance.mock.oauth import grant_scope, issue_token, read_token_form
from conformance.mock.store import Client
from conformance.mock.systems.smart import OAUTH_URIS, capability_statement

TENANT_A = "ec2458f2-1e24-41c8-b71b-0e701af7583d"
TENANT_B = "d075cf8b-3261-481d-97e5-ba6c48d3b41f"
TENANTS = (TENANT_A, TENANT_B)
FHIR_HOST = "fhir-ehr-code.cerner.example"
TOKEN_PATH = "/tenants/{tenant}/hosts/" + FHIR_HOST + "/protocols/oauth2/profiles/smart-v1/token"
ERROR_URN = "urn:cerner:error:authorization-server:oauth2:token:"
SCOPES_SUPPORTED = [
    "system/Patient.read",
    "system/Observation.read",
    "system/Encounter.read",
    "system/DocumentReference.read",
]


class CernerError(Exception):
    def __init__(self, error: str, reason: str, status: int, client: str = "unknown", basic_challenge: bool = False):
        super().__init__(reason)
        self.error, self.reason, self.status, self.client, self.basic_challenge = (
            error,
            reason,
            status,
            client,
            basic_challenge,
        )


def token_url(ctx: MockContext, tenant: str) -> str:
    return ctx.settings.auth_url + TOKEN_PATH.format(tenant=tenant)


def fhir_base(ctx: MockContext, tenant: str) -> str:
    return f"{ctx.settings.public_url}/r4/{tenant}"


def _error_response(ctx: MockContext, err: CernerError, tenant: str) -> Response:
    headers = {**no_store_headers(ctx), "Cerner-Correlation-Id": str(uuid.uuid4())}
    if err.basic_challenge:
        headers["WWW-Authenticate"] = f'Basic realm="{tenant}"'
    if ctx.fault("cerner-errors-without-reason"):
        body: dict[str, Any] = {"error": err.error, "error_description": err.reason.replace("-", " ")}
    else:
        reason = quote(ERROR_URN + err.reason, safe="")
        body = {
            "error": err.error,
            "error_uri": f"{ctx.settings.auth_url}/errors/{reason}/instances/{uuid.uuid4()}?client={err.client}&tenant={tenant}",
        }
        if ctx.variation("cerner-error-with-description"):
            body["error_description"] = err.reason.replace("-", " ")
    if ctx.fault("cerner-no-correlation-id"):
        del headers["Cerner-Correlation-Id"]
    status = 400 if ctx.fault("basic-errors-400") and err.status == 401 else err.status
    return JSONResponse(body, status_code=status, headers=headers)


def _basic_credentials(ctx: MockContext, header: str | None, tenant: str) -> tuple[str, str]:
    """client_id and secret from a Basic header, each form-urldecoded as RFC 6749 §2.3.1 says."""
    if not header:
        raise CernerError("invalid_client", "invalid-authorization-header", 401, basic_challenge=True)
    scheme, _, value = header.strip().partition(" ")
    scheme_ok = scheme == "Basic" if ctx.fault("basic-scheme-case-sensitive") else scheme.lower() == "basic"
    if not scheme_ok:
        raise CernerError("invalid_client", "invalid-authorization-header", 401, basic_challenge=True)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CernerError("invalid_client", "invalid-authorization-header", 401, basic_challenge=True) from None
    if ":" not in decoded:
        raise CernerError("invalid_client", "invalid-authorization-header", 401, basic_challenge=True)
    raw_id, raw_secret = decoded.split(":", 1)
    if ctx.fault("basic-credentials-not-urldecoded"):
        return raw_id, raw_secret
    return unquote_plus(raw_id), unquote_plus(raw_secret)


def authenticate(ctx: MockContext, request: Request, form: dict[str, str], tenant: str) -> Client:
    header = request.headers.get("authorization")
    if header is None and "client_secret" not in form and ctx.fault("allow-anonymous-token-requests"):
        fallback = next((c for c in ctx.store.clients() if c.tenant == tenant), None)
        if fallback is not None:
            return fallback
    if header is None and "client_secret" in form:
        if ctx.fault("accept-client-secret-post"):
            client = ctx.store.get_client(form.get("client_id", ""))
            if client is not None and client.secret == form["client_secret"]:
                return client
        raise CernerError("invalid_client", "invalid-authorization-header", 401, form.get("client_id", "unknown"), True)
    if header is not None and "client_secret" in form and not ctx.fault("allow-two-auth-methods"):
        raise CernerError("invalid_request", "multiple-client-credentials", 400)
    client_id, secret = _basic_credentials(ctx, header, tenant)
    client = ctx.store.get_client(client_id)
    if client is None or client.auth_method != "client_secret_basic":
        raise CernerError("invalid_client", "invalid-client-credentials", 401, "unknown", True)
    matches = client.secret is not None and hmac.compare_digest(client.secret.encode(), secret.encode())
    if not matches and not ctx.fault("accept-wrong-secret"):
        raise CernerError("invalid_client", "invalid-client-credentials", 401, client_id, True)
    if client.tenant != tenant and not ctx.fault("ignore-token-tenant"):
        raise CernerError("invalid_grant", "invalid-tenant", 400, client_id)
    return client


async def token(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    tenant = request.path_params["tenant"]
    if ctx.settings.access_denied:
        return PlainTextResponse("Access denied", status_code=403)
    try:
        if tenant not in TENANTS:
            raise CernerError("invalid_grant", "invalid-tenant", 400)
        try:
            form = await read_token_form(ctx, request)
        except Exception:
            raise CernerError("invalid_request", "invalid-request", 405 if request.method != "POST" else 400) from None
        client = authenticate(ctx, request, form, tenant)
        if form.get("grant_type") != "client_credentials":
            raise CernerError("unsupported_grant_type", "unsupported-grant-type", 400, client.client_id)
        try:
            scope = grant_scope(ctx, client, form.get("scope"))
        except Exception:
            raise CernerError("invalid_scope", "empty-scopes", 400, client.client_id) from None
        lifetime = 300 if ctx.variation("cerner-token-lifetime-300") else 570
        response = issue_token(ctx, client, scope, lifetime=lifetime, extra={"tenant": tenant})
        response.headers["Cerner-Correlation-Id"] = str(uuid.uuid4())
        return response
    except CernerError as err:
        return _error_response(ctx, err, tenant)


async def error_page(request: Request) -> Response:
    """Where an error_uri points: says what the reason code means."""
    reason = request.path_params["reason"].rsplit(":", 1)[-1]
    explanations = {
        "invalid-authorization-header": "The Authorization header is missing or is not valid HTTP Basic.",
        "invalid-client-credentials": "The client id or secret is wrong (or not form-urlencoded before base64).",
        "invalid-tenant": "The tenant in the token URL is unknown or not enabled for this client.",
        "empty-scopes": "None of the requested scopes is granted to this client.",
    }
    text = explanations.get(reason, "Unknown reason.")
    return HTMLResponse(f"<html><body><h1>{reason}</h1><p>{text}</p></body></html>")


def _tenant(request: Request) -> str | None:
    tenant = request.path_params["tenant"]
    return tenant if tenant in TENANTS else None


async def metadata(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    tenant = _tenant(request)
    if tenant is None:
        return Response(status_code=404)
    choice = choose_format(ctx, request, require_explicit_json=True)
    if choice.refusal:
        return Response(status_code=406)
    advertised = token_url(ctx, TENANT_B if ctx.fault("token-url-tenant-mismatch") else tenant)
    extensions = [
        {
            "url": OAUTH_URIS,
            "extension": [
                {"url": "token", "valueUri": advertised},
                {"url": "authorize", "valueUri": advertised.replace("/token", "/personas/provider/authorize")},
            ],
        }
    ]
    statement = capability_statement(
        ctx, security_extensions=extensions, description="Cerner system accounts (client_secret_basic)"
    )
    statement["implementation"]["url"] = fhir_base(ctx, tenant)
    return fhir_response(ctx, statement, choice)


async def smart_configuration(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    tenant = _tenant(request)
    if tenant is None:
        return Response(status_code=404)
    advertised = token_url(ctx, TENANT_B if ctx.fault("token-url-tenant-mismatch") else tenant)
    methods = ["client_secret_basic"]
    if ctx.fault("no-client-secret-basic"):
        methods = ["private_key_jwt"]
    document = {
        "token_endpoint": advertised,
        "token_endpoint_auth_methods_supported": methods,
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": ["client-confidential-symmetric", "permission-v1"],
    }
    return JSONResponse(document)


def make_fhir(kind: str) -> Any:
    """Patient/Observation read and search for a tenant: JSON only (406, empty body), token tenant enforced."""
    from conformance.mock import fhir

    inner = fhir.make_read() if kind == "read" else fhir.make_search()

    async def endpoint(request: Request) -> Response:
        ctx: MockContext = request.app.state.ctx
        tenant = _tenant(request)
        if tenant is None:
            return PlainTextResponse("Tenant not valid or accessible", status_code=404)
        choice = choose_format(ctx, request, require_explicit_json=not ctx.fault("cerner-serves-without-json-request"))
        if choice.refusal:
            return Response(status_code=406)
        header = request.headers.get("authorization", "")
        token_value = header.partition(" ")[2].strip()
        issued = ctx.store.get_token(token_value) if token_value else None
        if issued is not None and issued.extra.get("tenant") != tenant and not ctx.fault("ignore-fhir-tenant"):
            return PlainTextResponse("Tenant not valid or accessible", status_code=403)
        response = await inner(request)
        if issued is not None and response.status_code == 200 and ctx.fault("single-use-access-tokens"):
            ctx.store.revoke_tokens("tenant", tenant, ctx.now())
        return response

    return endpoint
