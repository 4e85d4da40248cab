"""The reference server's token endpoint: request parsing, scope granting, token issuing."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from conformance.flows.scopes import parse_scope, split_scopes
from conformance.mock.assertions import authenticate_assertion
from conformance.mock.context import MockContext
from conformance.mock.data import KNOWN_RESOURCE_TYPES
from conformance.mock.errors import OAuthError, ServerCrash, no_store_headers, oauth_error_response
from conformance.mock.store import Client

FORM = "application/x-www-form-urlencoded"


async def read_token_form(ctx: MockContext, request: Request) -> dict[str, str]:
    """The token request's parameters; refuses GET, non-form bodies and repeated parameters."""
    if request.method != "POST":
        if not ctx.fault("accept-get-token"):
            raise OAuthError("invalid_request", "the token endpoint accepts POST only", 405, {"Allow": "POST"})
        pairs = list(request.query_params.multi_items())
    else:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if media == "application/json" and ctx.fault("accept-json-body"):
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to parse
                parsed = {}
            pairs = [(str(k), str(v)) for k, v in parsed.items()] if isinstance(parsed, dict) else []
        elif media != FORM:
            raise OAuthError("invalid_request", f"the token request must be {FORM}, not {media or 'untyped'}")
        else:
            pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    names = [k for k, _ in pairs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated and not ctx.fault("accept-duplicate-params"):
        if repeated == ["scope"] and ctx.variation("repeated-scope-invalid-scope"):
            raise OAuthError("invalid_scope", "the scope parameter must not repeat")
        raise OAuthError("invalid_request", f"parameters must not repeat: {', '.join(repeated)}")
    if "foo" in names and ctx.fault("reject-unknown-params"):
        raise OAuthError("invalid_request", "unknown parameter foo")
    return dict(pairs)


def check_grant_type(ctx: MockContext, form: dict[str, str]) -> None:
    grant_type = form.get("grant_type")
    if ctx.fault("accept-unknown-grant-types"):
        return
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported; use client_credentials")


def grant_scope(ctx: MockContext, client: Client, requested_value: str | None) -> str:
    """The scopes to grant: requested ∩ pre-authorized, narrowed silently; invalid_scope when none is left."""
    requested = split_scopes(requested_value)
    if not requested:
        if ctx.fault("default-scope-when-missing"):
            return " ".join(client.scopes)
        raise OAuthError("invalid_scope", "scope is required")
    if ctx.variation("comma-scopes-split"):
        requested = [s for part in requested for s in part.split(",") if s]
    allowed = [s for s in (parse_scope(t) for t in client.scopes) if s]
    granted: list[str] = []
    for text in requested:
        scope = parse_scope(text)
        if scope is None:
            if ctx.fault("unparsed-scope-grants-all"):
                granted.append("system/*.read")
            continue
        if ctx.fault("no-v2-scopes") and not scope.v1:
            raise OAuthError("invalid_scope", "SMART v2 scopes are not supported")
        if scope.resource == "*" and ctx.fault("wildcard-scope-refused"):
            raise OAuthError("invalid_scope", "wildcard scopes are not supported")
        if scope.resource not in KNOWN_RESOURCE_TYPES and scope.resource != "*":
            if ctx.variation("unknown-scope-invalid-scope"):
                raise OAuthError("invalid_scope", f"unknown resource type in scope {text}")
            if ctx.fault("unknown-scope-granted"):
                granted.append(text)
            continue
        if any(a.covers(scope) for a in allowed) or ctx.fault("grant-unauthorized-scope"):
            granted.append(text)
        elif ctx.variation("scope-refused-not-narrowed") and scope.resource != "*":
            raise OAuthError("invalid_scope", f"this client may not have {text}")
        elif scope.resource == "*":
            for a in allowed:
                perms = a.perms & scope.perms
                if a.context == scope.context and a.resource != "*" and perms:
                    granted.append(scope.render(a.resource, perms))
    if ctx.fault("grant-unrequested-scope"):
        granted += client.scopes
    if ctx.fault("v1-scopes-returned-as-v2"):
        granted = [_as_v2(t) for t in granted]
    granted = list(dict.fromkeys(granted))
    if ctx.variation("scope-order-changed"):
        granted.reverse()
    if not granted and ctx.fault("unknown-scope-default-unstated"):
        raise UnstatedDefault(" ".join(client.scopes))
    if not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes can be granted to this client")
    return " ".join(granted)


class UnstatedDefault(Exception):
    """A fault: nothing requested can be granted, so the client's default scopes are granted without saying so."""


def _as_v2(text: str) -> str:
    scope = parse_scope(text)
    if scope is None or not scope.v1:
        return text
    return f"{scope.context}/{scope.resource}." + "".join(c for c in "cruds" if c in scope.perms)


def issue_token(
    ctx: MockContext,
    client: Client,
    scope: str,
    *,
    lifetime: int | None = None,
    extra: dict[str, str] | None = None,
    fields: dict[str, object] | None = None,
    state_scope: bool = True,
) -> Response:
    """A token response; `extra` is remembered with the token (tenant, patient…), `fields` go in the body."""
    lifetime = lifetime or client.token_lifetime or ctx.settings.token_lifetime
    if ctx.fault("expires-in-3600"):
        lifetime = 3600
    if ctx.variation("short-expires-in"):
        lifetime = min(lifetime, 120)
    now = ctx.now()
    token = (
        ""
        if ctx.fault("empty-access-token")
        else ctx.store.mint_token(client.client_id, scope, now + lifetime, dict(extra or {}), now)
    )
    body: dict[str, object] = {
        "access_token": token,
        "token_type": "mac"
        if ctx.fault("token-type-mac")
        else "bearer"
        if ctx.variation("token-type-lowercase")
        else "Bearer",
        "expires_in": str(lifetime) if ctx.fault("expires-in-string") else lifetime,
    }
    if state_scope and not ctx.fault("token-without-scope"):
        body["scope"] = scope
    if ctx.fault("issue-refresh-token"):
        body["refresh_token"] = secrets.token_urlsafe(32)
    if ctx.variation("extra-token-members"):
        body["example_extension"] = {"ignored": True}
    body.update(fields or {})
    media = "application/fhir+json" if ctx.fault("token-success-wrong-content-type") else "application/json"
    if ctx.variation("json-charset"):
        media += "; charset=UTF-8"
    return JSONResponse(body, headers=no_store_headers(ctx), media_type=media)


Authenticator = Callable[[MockContext, Request, dict[str, str]], Awaitable[Client]]


async def private_key_jwt(ctx: MockContext, request: Request, form: dict[str, str]) -> Client:
    if request.headers.get("authorization") and "client_assertion" in form and not ctx.fault("allow-two-auth-methods"):
        raise OAuthError("invalid_request", "use one client authentication method, not a header and an assertion")
    return await authenticate_assertion(ctx, form, audience=ctx.settings.token_url)


def token_endpoint(authenticate: Authenticator) -> Callable[[Request], Awaitable[Response]]:
    """A client_credentials token endpoint using the given client authentication."""

    async def endpoint(request: Request) -> Response:
        ctx: MockContext = request.app.state.ctx
        try:
            form = await read_token_form(ctx, request)
            check_grant_type(ctx, form)
            client = await authenticate(ctx, request, form)
            try:
                scope = grant_scope(ctx, client, form.get("scope"))
            except UnstatedDefault as default:
                return issue_token(ctx, client, str(default), state_scope=False)
            return issue_token(ctx, client, scope)
        except OAuthError as err:
            return oauth_error_response(ctx, err)
        except ServerCrash:
            return PlainTextResponse("Internal Server Error", status_code=500)

    return endpoint
