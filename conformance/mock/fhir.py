"""The reference server's FHIR API: negotiation, bearer-token guard, reads and searches."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from conformance.flows.scopes import permits
from conformance.mock.context import MockContext
from conformance.mock.negotiation import DSTU2_JSON, XML_FORMATS, Choice, negotiate
from conformance.mock.store import AccessToken

Handler = Callable[[Request], Awaitable[Response]]


def fhir_response(
    ctx: MockContext, resource: dict[str, Any], choice: Choice, status: int = 200, **headers: str
) -> Response:
    """Serialise a resource in the negotiated type (UTF-8, unless a fault says otherwise)."""
    media = choice.media_type or "application/fhir+json"
    if ctx.fault("fhir-json-as-application-json"):
        media = "application/json"
    text = json.dumps(resource, indent=2, ensure_ascii=False)
    if ctx.fault("latin1-charset"):
        return Response(text.encode("latin-1", errors="replace"), status, headers, f"{media}; charset=iso-8859-1")
    return Response(text.encode("utf-8"), status, headers, f"{media}; charset=utf-8")


def outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def error_response(ctx: MockContext, status: int, code: str, diagnostics: str, **headers: str) -> Response:
    """A FHIR error: an OperationOutcome in JSON (or plain text under a fault)."""
    if ctx.fault("fhir-errors-plain-text"):
        return PlainTextResponse(diagnostics, status_code=status, headers=headers)
    return fhir_response(ctx, outcome(code, diagnostics), Choice("application/fhir+json"), status, **headers)


def choose_format(ctx: MockContext, request: Request, *, require_explicit_json: bool = False) -> Choice:
    format_param = None if ctx.fault("ignore-format-param") else request.query_params.get("_format")
    accept = request.headers.get("accept")
    if accept and DSTU2_JSON in accept.lower() and ctx.fault("dstu2-type-500"):
        raise RuntimeError("unexpected media type")
    if accept and "fhirversion" in accept.lower() and ctx.fault("fhir-version-param-406"):
        return Choice(None, 406, "fhirVersion parameters are not supported")
    if accept and accept.strip().lower() == "application/json" and ctx.fault("json-accept-406"):
        return Choice(None, 406, "application/json is not served")
    choice = negotiate(format_param, accept, require_explicit_json=require_explicit_json)
    unknown_format = format_param is not None and format_param.lower() not in XML_FORMATS
    if choice.refusal is not None and unknown_format and ctx.fault("unknown-format-ignored"):
        return Choice("application/fhir+json")
    if choice.refusal is not None and ctx.fault("xml-served-as-json"):
        return Choice("application/fhir+xml")
    return choice


def refusal_response(ctx: MockContext, choice: Choice) -> Response:
    return error_response(ctx, choice.refusal or 406, "not-supported", choice.reason)


def _challenge_value(text: str) -> str:
    """RFC 6750 §3: error_description and scope hold %x20-21 / %x23-5B / %x5D-7E only.

    Both can quote the request's resource type, which the path makes any text: a
    quote, a backslash or a non-latin-1 character would break the header (the latter
    made Starlette fail to encode it: a 500 instead of the 403), CR/LF would split it.
    """
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


def bearer_challenge(ctx: MockContext, error: str | None = None, description: str = "", scope: str = "") -> str:
    parts = ['Bearer realm="fhir"']
    if error and not ctx.fault("bearer-challenge-without-error"):
        parts.append(f'error="{error}"')
        if description:
            parts.append(f'error_description="{_challenge_value(description)}"')
        if scope:
            parts.append(f'scope="{_challenge_value(scope)}"')
    return ", ".join(parts)


def authorize(ctx: MockContext, request: Request, resource_type: str, perm: str) -> AccessToken | Response | None:
    """The token behind the request, or the 400/401/403 that refuses it."""
    header = request.headers.get("authorization")
    if not header:
        if ctx.fault("fhir-open-without-token"):
            return None
        return error_response(
            ctx, 401, "login", "an access token is required", **{"WWW-Authenticate": bearer_challenge(ctx)}
        )
    scheme, _, value = header.strip().partition(" ")
    scheme_ok = scheme == "Bearer" if ctx.fault("bearer-scheme-case-sensitive") else scheme.lower() == "bearer"
    if not scheme_ok:
        challenge = bearer_challenge(ctx, "invalid_token", "use the Bearer scheme")
        return error_response(ctx, 401, "login", "use the Bearer scheme", **{"WWW-Authenticate": challenge})
    value = value.strip()
    if not value:
        challenge = bearer_challenge(ctx, "invalid_request", "the Bearer credentials are empty")
        return error_response(
            ctx, 400, "invalid", "the Bearer credentials are empty", **{"WWW-Authenticate": challenge}
        )
    token = ctx.store.get_token(value)
    if ctx.fault("tokens-not-accepted-by-fhir"):
        token = None
    if token is None:
        if ctx.fault("accept-garbage-token"):
            return None
        challenge = bearer_challenge(ctx, "invalid_token", "the access token is not recognised")
        status = 403 if ctx.variation("invalid-token-403") else 401
        return error_response(
            ctx, status, "login", "the access token is not recognised", **{"WWW-Authenticate": challenge}
        )
    ended = ctx.token_still_valid is not None and not ctx.token_still_valid(token)
    expired = ctx.has_ended(token.expires_at)
    if (expired or ended) and not ctx.fault("accept-expired-access-token"):
        challenge = bearer_challenge(ctx, "invalid_token", "the access token has expired")
        return error_response(ctx, 401, "expired", "the access token has expired", **{"WWW-Authenticate": challenge})
    if not permits(token.scope, resource_type, perm) and not ctx.fault("no-scope-enforcement"):
        challenge = bearer_challenge(
            ctx,
            "insufficient_scope",
            f"the token does not allow {resource_type}",
            f"system/{resource_type}.rs",
        )
        return error_response(
            ctx,
            401 if ctx.variation("insufficient-scope-401") else 403,
            "forbidden",
            f"the token's scope does not cover {resource_type}",
            **{"WWW-Authenticate": challenge},
        )
    return token


def _bundle(ctx: MockContext, request: Request, entries: list[dict[str, Any]]) -> dict[str, Any]:
    base = ctx.settings.fhir_base
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {"fullUrl": f"{base}/{e['resourceType']}/{e['id']}", "resource": e, "search": {"mode": "match"}}
            for e in entries
        ],
    }


Visibility = Callable[[MockContext, AccessToken | None, dict[str, Any]], bool]
"""Whether a token may see a resource (a profile narrows what the shared handlers serve)."""


@dataclass
class Granted:
    """A FHIR request that passed negotiation and authorization."""

    ctx: MockContext
    choice: Choice
    token: AccessToken | None
    resource_type: str
    resources: dict[str, dict[str, Any]]


def admit(request: Request, perm: str, *, require_explicit_json: bool) -> Granted | Response:
    """Negotiate the format, check the token and find the resource type, or answer the refusal."""
    ctx: MockContext = request.app.state.ctx
    resource_type = request.path_params["type"]
    try:
        choice = choose_format(ctx, request, require_explicit_json=require_explicit_json)
    except RuntimeError:
        return PlainTextResponse("Internal Server Error", status_code=500)
    if choice.refusal:
        return refusal_response(ctx, choice)
    token = authorize(ctx, request, resource_type, perm)
    if isinstance(token, Response):
        return token
    resources = ctx.resources.get(resource_type)
    if resources is None:
        return error_response(ctx, 404, "not-supported", f"{resource_type} is not supported by this server")
    return Granted(ctx, choice, token, resource_type, resources)


def make_read(*, require_explicit_json: bool = False, visible: Visibility | None = None) -> Handler:
    async def read(request: Request) -> Response:
        granted = admit(request, "r", require_explicit_json=require_explicit_json)
        if isinstance(granted, Response):
            return granted
        ctx, rid = granted.ctx, request.path_params["id"]
        resource = granted.resources.get(rid)
        if resource is None or (visible is not None and not visible(ctx, granted.token, resource)):
            return error_response(ctx, 404, "not-found", f"{granted.resource_type}/{rid} is not known")
        return fhir_response(ctx, resource, granted.choice)

    return read


def make_search(*, require_explicit_json: bool = False, visible: Visibility | None = None) -> Handler:
    async def search(request: Request) -> Response:
        granted = admit(request, "s", require_explicit_json=require_explicit_json)
        if isinstance(granted, Response):
            return granted
        ctx, resource_type, resources, choice = granted.ctx, granted.resource_type, granted.resources, granted.choice
        matches = list(resources.values())
        params = request.query_params
        if "_id" in params:
            wanted = set(params["_id"].split(","))
            matches = [r for r in matches if r["id"] in wanted]
        patient = params.get("patient") or params.get("subject")
        if patient:
            ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
            matches = [r for r in matches if r.get("subject", {}).get("reference") == ref]
        elif resource_type != "Patient" and "_id" not in params:
            return error_response(ctx, 400, "required", f"searching {resource_type} needs patient or _id")
        if visible is not None:
            matches = [r for r in matches if visible(ctx, granted.token, r)]
        return fhir_response(ctx, _bundle(ctx, request, matches), choice)

    return search
