"""RFC 7591 dynamic registration of SMART backend clients: JSON metadata in, a client_id and the metadata out.

Only what a backend client needs is registered: `client_credentials` with
`private_key_jwt`, and the keys (`jwks` or `jwks_uri`) its assertions are
verified with. Redirect URIs are not asked for (RFC 7591 §2 ties them to
redirect-based flows). Each `smart-register-*` fault breaks one of these rules.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conformance.mock.context import MockContext
from conformance.mock.errors import RegistrationError
from conformance.mock.store import Client
from conformance.mock.systems.smart import SCOPES_SUPPORTED

GRANT_TYPE = "client_credentials"
AUTH_METHOD = "private_key_jwt"
OPTIONAL_STRINGS = ("client_name", "client_uri", "software_id", "software_version")
"""Descriptive metadata kept and echoed when it is a string; other unknown members are ignored (RFC 7591 §2)."""


def _bad_metadata(ctx: MockContext, description: str) -> RegistrationError:
    code = "invalid_request" if ctx.fault("smart-register-wrong-error-code") else "invalid_client_metadata"
    return RegistrationError(code, description)


async def register(request: Request) -> Response:
    """POST /register: validate the metadata, store the client, answer 201 with what was registered."""
    ctx: MockContext = request.app.state.ctx
    try:
        metadata = await _read_metadata(ctx, request)
        registered = _validate(ctx, metadata)
        if "redirect_uris" not in metadata and ctx.fault("smart-register-demands-redirect-uris"):
            raise RegistrationError("invalid_redirect_uri", "redirect_uris is required")
    except RegistrationError as err:
        return JSONResponse(
            {"error": err.error, "error_description": err.description},
            status_code=err.status,
            headers={"Cache-Control": "no-store"},
        )
    client_id = f"smart-{uuid.uuid4().hex[:16]}"
    ctx.store.put_client(_client(ctx, client_id, registered))
    return _response(ctx, client_id, registered)


async def _read_metadata(ctx: MockContext, request: Request) -> dict[str, Any]:
    """The request body as a JSON object (RFC 7591 §3.1 sends metadata as application/json)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise _bad_metadata(ctx, f"send the registration as application/json, not {media or 'untyped'}")
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep to parse
        raise _bad_metadata(ctx, "the registration body is not JSON") from None
    if not isinstance(body, dict):
        raise _bad_metadata(ctx, "the registration body must be a JSON object")
    return body


def _validate(ctx: MockContext, metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata this server registers: backend-client rules applied, scope narrowed to what it supports."""
    registered: dict[str, Any] = {k: metadata[k] for k in OPTIONAL_STRINGS if isinstance(metadata.get(k), str)}
    registered["grant_types"] = _grant_types(ctx, metadata.get("grant_types", [GRANT_TYPE]))
    method = metadata.get("token_endpoint_auth_method", AUTH_METHOD)
    if method != AUTH_METHOD and not (ctx.fault("smart-register-accepts-bad-metadata") and isinstance(method, str)):
        raise _bad_metadata(ctx, f"token_endpoint_auth_method must be {AUTH_METHOD}")
    registered["token_endpoint_auth_method"] = method
    registered.update(_keys(ctx, metadata))
    registered["scope"] = _scope(ctx, metadata.get("scope"))
    return registered


def _grant_types(ctx: MockContext, value: Any) -> list[str]:
    """Backend clients use client_credentials only; absent means client_credentials."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad_metadata(ctx, "grant_types must be an array of strings")
    if value == [GRANT_TYPE] or (value and ctx.fault("smart-register-accepts-unknown-grant-type")):
        return list(value)
    raise _bad_metadata(ctx, f'grant_types must be ["{GRANT_TYPE}"] for a backend client')


def _keys(ctx: MockContext, metadata: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of jwks (an object with keys) or jwks_uri: the server verifies client assertions with them."""
    jwks, jwks_uri = metadata.get("jwks"), metadata.get("jwks_uri")
    if jwks is not None and jwks_uri is not None:
        raise _bad_metadata(ctx, "jwks and jwks_uri must not both be present")
    if jwks_uri is not None:
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise _bad_metadata(ctx, "jwks_uri must be an absolute URL")
        return {"jwks_uri": jwks_uri}
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) and k.get("kty") for k in keys):
        raise _bad_metadata(ctx, "jwks must be a JWK Set with at least one key (or send jwks_uri)")
    return {"jwks": jwks}


def _scope(ctx: MockContext, value: Any) -> str:
    """The requested scopes this server supports; all of them when none is asked for (RFC 7591 §2 allows a default)."""
    if value is None:
        return " ".join(SCOPES_SUPPORTED)
    if not isinstance(value, str):
        raise _bad_metadata(ctx, "scope must be a space-separated string")
    granted = [s for s in dict.fromkeys(value.split()) if s in SCOPES_SUPPORTED]
    if not granted:
        raise _bad_metadata(ctx, "none of the requested scopes is supported")
    return " ".join(granted)


def _client(ctx: MockContext, client_id: str, registered: dict[str, Any]) -> Client:
    """The stored client; the token endpoint authenticates it with the registered keys."""
    forget_keys = ctx.fault("smart-register-client-cannot-authenticate")
    return Client(
        client_id,
        auth_method=registered["token_endpoint_auth_method"],
        jwks=None if forget_keys else registered.get("jwks"),
        jwks_uri=None if forget_keys else registered.get("jwks_uri"),
        scopes=registered["scope"].split(),
        extra={"client_name": registered.get("client_name", ""), "registration": "rfc7591"},
    )


def _response(ctx: MockContext, client_id: str, registered: dict[str, Any]) -> Response:
    """201 with client_id, client_id_issued_at and every registered member (RFC 7591 §3.2.1)."""
    body: dict[str, Any] = {"client_id": client_id, "client_id_issued_at": int(ctx.now())}
    if not ctx.fault("smart-register-no-metadata-echo"):
        body.update(registered)
    if ctx.fault("smart-register-no-client-id"):
        del body["client_id"]
    status = 200 if ctx.fault("smart-register-200") else 201
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
