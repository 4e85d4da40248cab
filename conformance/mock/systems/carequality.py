"""Carequality on Cerner: UDAP registration and token under the FHIR base, advertised in the CapabilityStatement.

The advertisement changed shape while Cerner built it (connectathon notes,
2019-2020), so the server can serve any of the three: the vendor
`carequality-oauth-uris` extension; the standard SMART `oauth-uris` extension
switched to the Carequality URLs by the request header
`Cerner-Override-OAuth-URIs: on`; or a `carequality-token` entry inside
`oauth-uris`. FHIR reads demand an explicit JSON request.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from conformance.mock.context import MockContext
from conformance.mock.fhir import choose_format, fhir_response, refusal_response
from conformance.mock.systems.smart import OAUTH_URIS, capability_statement

CERNER_TENANT = "0b8a0111-e8e6-4c26-a91c-5069cbc6b1ca"
"""The tenant in the emulated Carequality-on-Cerner FHIR base URL."""
CAREQUALITY_OAUTH_URIS = "https://fhir-ehr.cerner.com/r4/StructureDefinition/carequality-oauth-uris"
SMART_AUTHORIZATION_HOST = "https://authorization.sandboxcerner.com/tenants/{tenant}/protocols/oauth2/profiles/smart-v1"


def _uri(name: str, value: str) -> dict[str, str]:
    return {"url": name, "valueUri": value}


def security_extensions(ctx: MockContext, override_header: bool) -> list[dict[str, Any]]:
    settings = ctx.settings
    token, register = settings.token_url, settings.register_url
    if ctx.fault("carequality-token-url-other-host"):
        # The same loopback server under another host name: requests still work, the host differs.
        token = token.replace("://127.0.0.1:", "://localhost:", 1)
    smart_base = SMART_AUTHORIZATION_HOST.format(tenant=settings.fhir_path.rsplit("/", 1)[-1])
    smart_oauth: dict[str, Any] = {
        "url": OAUTH_URIS,
        "extension": [
            _uri("authorize", f"{smart_base}/personas/provider/authorize"),
            _uri("token", f"{smart_base}/token"),
        ],
    }
    if ctx.fault("carequality-extension-missing"):
        return [smart_oauth]
    shape = settings.carequality_shape
    if shape == "extension":
        entries = [_uri("token", token)] + (
            [] if ctx.fault("carequality-register-missing") else [_uri("register", register)]
        )
        return [smart_oauth, {"url": CAREQUALITY_OAUTH_URIS, "extension": entries}]
    if shape == "override-header":
        if override_header and not ctx.fault("carequality-override-ignored"):
            entries = [_uri("token", token)] + (
                [] if ctx.fault("carequality-register-missing") else [_uri("register", register)]
            )
            return [{"url": OAUTH_URIS, "extension": entries}]
        return [smart_oauth]
    # 2019-12-04 notes: a carequality-token entry next to the SMART token; the register URL (which no
    # source names for this shape) is served as the extension's standard `register` entry.
    smart_oauth["extension"].append(_uri("carequality-token", token))
    if not ctx.fault("carequality-register-missing"):
        smart_oauth["extension"].append(_uri("register", register))
    return [smart_oauth]


async def metadata(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    choice = choose_format(ctx, request, require_explicit_json=True)
    if choice.refusal:
        return refusal_response(ctx, choice)
    override = (request.headers.get("cerner-override-oauth-uris") or "").strip().lower() == "on"
    statement = capability_statement(
        ctx,
        security_extensions=security_extensions(ctx, override),
        description="Carequality: UDAP dynamic registration and JWT client authentication",
    )
    return fhir_response(ctx, statement, choice)
