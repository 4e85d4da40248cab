"""Discovery documents of the SMART Backend Services profile: CapabilityStatement and smart-configuration."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conformance.mock.context import MockContext
from conformance.mock.fhir import choose_format, error_response, fhir_response, refusal_response

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"
SCOPES_SUPPORTED = [
    "system/Patient.read",
    "system/Observation.read",
    "system/*.read",
    "system/Patient.rs",
    "system/Observation.rs",
    "system/*.rs",
]


def capability_statement(
    ctx: MockContext, *, security_extensions: list[dict[str, Any]] | None = None, description: str = ""
) -> dict[str, Any]:
    """An R4 CapabilityStatement; `security_extensions` replaces the SMART oauth-uris extension."""
    if security_extensions is None:
        token_url = ctx.settings.token_url
        if ctx.fault("oauth-uris-token-mismatch"):
            token_url = ctx.settings.public_url + "/oauth2/token"
        if ctx.fault("oauth-uris-relative"):
            token_url = "/token"
        oauth_uris: dict[str, Any] = {
            "url": OAUTH_URIS,
            "extension": [{"url": "token", "valueUri": token_url}],
        }
        if ctx.variation("oauth-uris-more-endpoints"):
            oauth_uris["extension"] += [
                {"url": "register", "valueUri": ctx.settings.public_url + "/register"},
                {"url": "manage", "valueUri": ctx.settings.public_url + "/manage"},
            ]
        if ctx.fault("oauth-uris-with-value"):
            oauth_uris["valueString"] = token_url
            oauth_uris["extension"].append({"url": "register"})
        security_extensions = [] if ctx.fault("no-oauth-uris") else [oauth_uris]
    security: dict[str, Any] = {
        "cors": True,
        "description": description or "SMART Backend Services: client_credentials with private_key_jwt",
        "extension": security_extensions,
    }
    if not ctx.fault("no-smart-security-service"):
        security["service"] = [
            {"coding": [{"system": SECURITY_SYSTEM, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}]}
        ]
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "id": "reference-server",
        "status": "active",
        "date": "2026-11-01",
        "publisher": "fhir-b2b-conformance reference server",
        "kind": "instance",
        "software": {"name": "fhir-b2b-conformance mock", "version": "0.1.0"},
        "implementation": {"description": "reference server", "url": ctx.settings.fhir_base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"]
        if ctx.variation("capability-format-mime-only")
        else ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": security,
                "resource": [
                    {
                        "type": rtype,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "_id", "type": "token"}]
                        + ([{"name": "patient", "type": "reference"}] if rtype != "Patient" else []),
                    }
                    for rtype in ("Patient", "Observation")
                ],
            }
        ],
    }
    if ctx.fault("capability-missing-fields"):
        del statement["date"], statement["kind"]
    if ctx.fault("capability-format-xml"):
        statement["format"] = ["json", "xml"]
    if ctx.fault("capability-format-xml-only"):
        statement["format"] = ["xml"]
    return statement


def _authorized_for_discovery(ctx: MockContext, request: Request, fault: str) -> bool:
    return not ctx.fault(fault) or bool(request.headers.get("authorization"))


async def metadata(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    if not _authorized_for_discovery(ctx, request, "metadata-requires-token"):
        return error_response(ctx, 401, "login", "a token is required", **{"WWW-Authenticate": 'Bearer realm="fhir"'})
    choice = choose_format(ctx, request)
    if choice.refusal:
        return refusal_response(ctx, choice)
    return fhir_response(ctx, capability_statement(ctx), choice)


def smart_configuration_document(ctx: MockContext) -> dict[str, Any]:
    token_url = "/token" if ctx.fault("relative-token-endpoint") else ctx.settings.token_url
    capabilities = ["client-confidential-asymmetric", "permission-v1", "permission-v2"]
    if ctx.fault("no-asymmetric-capability"):
        capabilities.remove("client-confidential-asymmetric")
    if ctx.fault("permission-v2-not-advertised"):
        capabilities.remove("permission-v2")
    if ctx.fault("launch-without-authorize-endpoint"):
        capabilities.append("launch-standalone")
    doc: dict[str, Any] = {
        "token_endpoint": token_url,
        "registration_endpoint": ctx.settings.public_url + "/register",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": capabilities,
        "code_challenge_methods_supported": ["S256"],
    }
    if ctx.fault("no-client-credentials-grant"):
        doc["grant_types_supported"] = ["authorization_code"]
    if ctx.fault("no-private-key-jwt"):
        doc["token_endpoint_auth_methods_supported"] = ["client_secret_basic"]
    if ctx.fault("no-signing-algs"):
        del doc["token_endpoint_auth_signing_alg_values_supported"]
    if ctx.fault("scopes-supported-not-array"):
        doc["scopes_supported"] = " ".join(SCOPES_SUPPORTED)
    if ctx.fault("pkce-plain-advertised"):
        doc["code_challenge_methods_supported"] = ["S256", "plain"]
    if ctx.variation("smart-config-extra-metadata"):
        doc["introspection_endpoint"] = ctx.settings.public_url + "/introspect"
        doc["revocation_endpoint"] = ctx.settings.public_url + "/revoke"
        doc["example_extension"] = "ignored by clients"
    return doc


async def smart_configuration(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    if not _authorized_for_discovery(ctx, request, "smart-config-requires-token"):
        return JSONResponse({"error": "invalid_token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    accept = (request.headers.get("accept") or "").lower()
    if ctx.fault("smart-config-honours-accept") and accept and "json" not in accept and "*/*" not in accept:
        return Response(status_code=406)
    media = "application/fhir+json" if ctx.fault("smart-config-fhir-content-type") else "application/json"
    if ctx.variation("smart-config-charset"):
        media += "; charset=utf-8"
    return JSONResponse(smart_configuration_document(ctx), media_type=media)
