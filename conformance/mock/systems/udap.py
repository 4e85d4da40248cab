"""UDAP on the reference server: signed metadata, dynamic client registration, x5c client authentication.

Follows the HL7 FAST Security IG (STU2 by default, STU1 where the settings say
so). Trust is decided by `conformance.crypto.pki.verify_chain` against the configured
anchors; JWTs are verified with the x5c leaf only, never a jwk/kid in the header.
Error codes follow the cause: trust failures `unapproved_software_statement`,
signature and claims `invalid_software_statement`, parameters
`invalid_client_metadata`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from conformance.crypto.jose import ASSERTION_TYPE, b64url_decode, decode_unverified, sign
from conformance.crypto.pki import CertifiedKey, PkiError, certificates_from_x5c, verify_chain
from conformance.mock.assertions import numeric_date
from conformance.mock.context import MockContext
from conformance.mock.errors import OAuthError, RegistrationError, ServerCrash, oauth_error_response
from conformance.mock.oauth import grant_scope, issue_token, read_token_form
from conformance.mock.store import Client

JWT_ALGS = ("RS256", "RS384", "ES256", "ES384")
SUPPORTED_SCOPES = ["system/Patient.read", "system/Observation.read", "system/Patient.rs", "system/Observation.rs"]
MAX_STATEMENT_LIFETIME = 300


@dataclass
class UdapServerSettings:
    """The reference server's place in a trust community."""

    signer: CertifiedKey
    anchors: list[Any]
    community: str = "urn:conformance:test-community"
    version: str = "STU2"
    require_b2b: bool = True
    extra_certs: dict[str, CertifiedKey] = field(default_factory=dict)
    """Certificates faults sign with: 'wrong-san' (a trusted cert whose SAN is not the base URL), 'untrusted'."""


def _udap(ctx: MockContext) -> UdapServerSettings:
    settings = ctx.settings.udap
    assert isinstance(settings, UdapServerSettings), "UDAP profiles need MockSettings.udap"
    return settings


# --- discovery -------------------------------------------------------------------------------------------


def metadata_document(ctx: MockContext) -> dict[str, Any]:
    settings = ctx.settings
    udap = _udap(ctx)
    token_url, register_url = settings.token_url, settings.register_url
    if ctx.fault("udap-registration-endpoint-relative"):
        register_url = settings.register_path
    if ctx.fault("udap-token-endpoint-relative"):
        token_url = settings.token_path
    doc: dict[str, Any] = {
        "udap_versions_supported": ["2"] if ctx.fault("udap-versions-wrong") else ["1"],
        "udap_profiles_supported": ["udap_dcr", "udap_authn"]
        + ([] if ctx.fault("udap-profiles-missing-authz") else ["udap_authz"]),
        "udap_authorization_extensions_supported": [] if ctx.fault("udap-b2b-not-supported") else ["hl7-b2b"],
        "udap_authorization_extensions_required": (["hl7-b2b"] if udap.require_b2b else [])
        + (["hl7-b2b-user"] if ctx.fault("udap-required-extension-unsupported") else []),
        "udap_certifications_supported": "none" if ctx.fault("udap-certifications-not-array") else [],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": SUPPORTED_SCOPES,
        "token_endpoint": token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384"]
        if ctx.fault("udap-token-algs-without-rs256")
        else list(JWT_ALGS),
        "registration_endpoint": register_url,
        "registration_endpoint_jwt_signing_alg_values_supported": list(JWT_ALGS),
    }
    if ctx.fault("udap-b2b-not-supported"):
        doc["udap_authorization_extensions_required"] = []
    if ctx.fault("udap-auth-methods-extra"):
        doc["token_endpoint_auth_methods_supported"].append("client_secret_basic")
    if ctx.fault("udap-grant-types-missing"):
        del doc["grant_types_supported"]
    if ctx.fault("udap-scopes-missing"):
        del doc["scopes_supported"]
    if ctx.fault("udap-reg-algs-missing"):
        del doc["registration_endpoint_jwt_signing_alg_values_supported"]
    if not ctx.fault("unsigned-metadata"):
        doc["signed_metadata"] = signed_metadata(ctx, settings.token_url, settings.register_url)
    return doc


def signed_metadata(ctx: MockContext, token_url: str, register_url: str) -> str:
    udap = _udap(ctx)
    now = int(ctx.now())
    iss = ctx.settings.fhir_base + ("/" if ctx.fault("metadata-iss-mismatch") else "")
    claims: dict[str, Any] = {
        "iss": iss,
        "sub": "https://someone-else.example.org" if ctx.fault("metadata-sub-mismatch") else iss,
        "iat": now,
        "exp": now - 60
        if ctx.fault("metadata-expired")
        else now + (400 * 86400 if ctx.fault("metadata-long-lived") else 86400),
        "jti": uuid.uuid4().hex,
        "token_endpoint": ctx.settings.public_url + "/oauth/token"
        if ctx.fault("metadata-endpoint-mismatch")
        else token_url,
        "registration_endpoint": register_url,
    }
    if ctx.fault("metadata-jti-missing"):
        del claims["jti"]
    if ctx.fault("metadata-endpoints-missing"):
        del claims["registration_endpoint"]
    signer = udap.signer
    if ctx.fault("metadata-signed-by-wrong-san"):
        signer = udap.extra_certs["wrong-san"]
    if ctx.fault("metadata-untrusted-signer"):
        signer = udap.extra_certs["untrusted"]
    x5c = signer.x5c()
    if ctx.fault("metadata-x5c-base64url"):
        x5c = [base64.urlsafe_b64encode(base64.b64decode(c)).decode().rstrip("=") for c in x5c]
    alg = "RS384" if ctx.fault("metadata-alg-rs384") else "RS256"
    header: dict[str, Any] = {"x5c": None if ctx.fault("metadata-without-x5c") else x5c, "kid": None}
    return sign(claims, signer.client_key(alg), header=header, alg=alg)


async def udap_metadata(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    if ctx.fault("udap-well-known-missing") or not ctx.settings.publish_udap_metadata:
        return PlainTextResponse("Not Found", status_code=404)
    community = request.query_params.get("community")
    udap = _udap(ctx)
    if community is not None and community != udap.community:
        if ctx.fault("community-unknown-500"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        if udap.version == "STU1.0":
            return PlainTextResponse("unknown community", status_code=404)
        return Response(status_code=204)
    media = "text/plain" if ctx.fault("udap-metadata-text-plain") else "application/json"
    if ctx.variation("udap-metadata-charset"):
        media += "; charset=utf-8"
    document = metadata_document(ctx)
    if ctx.variation("udap-metadata-extra-members"):
        document["example_extension"] = "clients ignore members they do not know"
    return JSONResponse(document, media_type=media)


# --- registration ------------------------------------------------------------------------------------------


def _statement_error(description: str) -> RegistrationError:
    return RegistrationError("invalid_software_statement", description)


def _metadata_error(description: str) -> RegistrationError:
    return RegistrationError("invalid_client_metadata", description)


def verified_certificate(
    ctx: MockContext, token: str, *, allowed_algs: tuple[str, ...], what: str, trust_fault: str
) -> tuple[dict[str, Any], list[Any]]:
    """Claims and x5c certificates of a signed JWT, once its signature verifies with the x5c leaf.

    Raises ValueError (structure/signature, message for the client) or PkiError (trust).
    """
    try:
        header, claims = decode_unverified(token)
    except (ValueError, RecursionError) as exc:  # json raises RecursionError for JSON nested too deep to parse
        raise ValueError(f"the {what} is not a compact JWS: {exc}") from None
    alg = header.get("alg")
    lenient_alg = (alg == "none" and ctx.fault("register-accept-alg-none")) or (
        alg == "HS256" and ctx.fault("register-accept-hs256-cert")
    )
    if alg not in allowed_algs and not lenient_alg:
        raise ValueError(f"the {what} alg {alg!r} is not accepted; use one of {', '.join(allowed_algs)}")
    if "x5c" not in header:
        if ctx.fault("register-x5c-optional"):
            return claims, []
        raise ValueError(f"the {what} has no x5c header")
    try:
        certificates = (
            _lenient_x5c(header["x5c"]) if ctx.fault("lenient-x5c-encoding") else certificates_from_x5c(header["x5c"])
        )
    except (PkiError, ValueError) as exc:
        raise ValueError(f"the {what} x5c is unusable: {exc}") from None
    leaf = certificates[0]
    if alg == "HS256":
        _verify_hmac_with_certificate(token, leaf, what)
    elif alg != "none" and not ctx.fault("register-skip-signature"):
        try:
            jwt.PyJWS().decode_complete(token, key=leaf.public_key(), algorithms=[str(alg)])  # type: ignore[arg-type]
        except Exception:
            raise ValueError(f"the {what} signature does not verify with the x5c certificate") from None
    if not ctx.fault(trust_fault):
        verify_chain(leaf, certificates[1:], _udap(ctx).anchors, at=_as_datetime(ctx.now()))
    return claims, certificates


def _verify_hmac_with_certificate(token: str, leaf: Any, what: str) -> None:
    """The key-confusion bug a fault emulates: an HMAC keyed with the certificate's DER bytes."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(leaf.public_bytes(serialization.Encoding.DER), signing_input.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, b64url_decode(signature)):
        raise ValueError(f"the {what} HMAC does not verify")


def _lenient_x5c(value: Any) -> list[Any]:
    from cryptography import x509

    return [
        x509.load_der_x509_certificate(b64url_decode(str(v).replace("+", "-").replace("/", "_").rstrip("=")))
        for v in value
    ]


def _as_datetime(timestamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


def _dates(
    claims: dict[str, Any], what: str, refuse: Callable[[str], Exception]
) -> tuple[int | float | None, int | float | None, int | float | None]:
    """exp, iat and nbf as NumericDates (None when absent); one that is there (null too) but is none is refused.

    json reads NaN and Infinity as floats and booleans are ints: without this an
    `exp: NaN` passes every comparison and its jti is remembered for ever.
    """
    dates = []
    for name in ("exp", "iat", "nbf"):
        value = numeric_date(claims.get(name))
        if value is None and name in claims:
            raise refuse(f"the {what} {name} must be a NumericDate (a finite number of seconds)")
        dates.append(value)
    return dates[0], dates[1], dates[2]


def _validate_statement_claims(ctx: MockContext, claims: dict[str, Any], sans: list[str]) -> str:
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not iss:
        raise _statement_error("the software statement has no iss")
    if iss not in sans and not ctx.fault("register-ignore-san"):
        raise _statement_error(f"iss {iss} is not a URI subjectAltName of the x5c certificate")
    if sub != iss and not ctx.fault("register-ignore-sub"):
        raise _statement_error("sub must equal iss")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if ctx.settings.register_url not in audiences and not ctx.fault("register-without-aud-check"):
        raise _statement_error(f"aud must be the registration endpoint {ctx.settings.register_url}")
    now, leeway = ctx.now(), ctx.settings.clock_skew_leeway
    exp, iat, nbf = _dates(claims, "software statement", _statement_error)
    if exp is None and ctx.fault("register-accept-expired-statement"):
        exp = now + 60
    if exp is None:
        raise _statement_error("the software statement has no exp")
    if exp < now - leeway and not ctx.fault("register-accept-expired-statement"):
        raise _statement_error("the software statement has expired")
    if iat is None:
        raise _statement_error("the software statement has no iat")
    if iat > now + leeway and not ctx.fault("register-accept-future-iat"):
        raise _statement_error("the software statement was issued in the future (iat)")
    if nbf is not None and nbf > now + leeway:
        raise _statement_error("the software statement is not valid yet (nbf)")
    if exp - iat > MAX_STATEMENT_LIFETIME + leeway and not ctx.fault("register-accept-long-lived-statement"):
        raise _statement_error("the software statement lives longer than five minutes")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise _statement_error("the software statement has no jti")
    return iss


def _validate_client_metadata(ctx: MockContext, claims: dict[str, Any], *, needs_contact: bool) -> dict[str, Any]:
    lenient = ctx.fault("register-lenient-metadata")
    if "grant_types" not in claims and not lenient:
        raise _metadata_error("grant_types is required (send [] to cancel a registration)")
    # Absent only under the lenient fault. Not `or []`: that made null, 0, "" or {} a cancellation of the
    # client's registration, which UDAP asks for with an empty array only.
    grant_types = claims.get("grant_types", [])
    if not isinstance(grant_types, list):
        raise _metadata_error("grant_types must be an array")
    if grant_types and not ctx.fault("register-accept-any-grant-type"):
        unsupported = [g for g in grant_types if g != "client_credentials"]
        if unsupported:
            raise _metadata_error(f"grant type(s) {', '.join(map(str, unsupported))} are not supported here")
        for forbidden in ("redirect_uris", "response_types"):
            if forbidden in claims:
                raise _metadata_error(f"{forbidden} does not go with client_credentials")
    if not grant_types:
        return {"grant_types": []}
    if (not isinstance(claims.get("client_name"), str) or not claims["client_name"]) and not lenient:
        raise _metadata_error("client_name is required")
    method = claims.get("token_endpoint_auth_method")
    if method != "private_key_jwt" and not ctx.fault("register-accept-any-auth-method"):
        raise _metadata_error("token_endpoint_auth_method must be private_key_jwt")
    contacts = claims.get("contacts")
    has_mailto = isinstance(contacts, list) and any(isinstance(c, str) and c.startswith("mailto:") for c in contacts)
    if not has_mailto and needs_contact and not lenient:
        raise _metadata_error("contacts must hold at least one mailto: URI")
    requested = claims.get("scope")
    if not isinstance(requested, str) or not requested.strip():
        if not lenient:
            raise _metadata_error("scope is required")
        requested = " ".join(SUPPORTED_SCOPES)
    granted = [s for s in requested.split() if s in SUPPORTED_SCOPES or ctx.fault("register-accept-unsupported-scope")]
    if not granted:
        raise _metadata_error("none of the requested scopes is supported")
    return {
        "client_name": claims.get("client_name") or "unnamed client",
        "grant_types": grant_types,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(granted),
    }


def _registration_error_response(ctx: MockContext, err: RegistrationError) -> Response:
    if ctx.fault("register-errors-plain-text"):
        return PlainTextResponse(f"registration refused: {err.description}", status_code=err.status)
    code = err.error
    if ctx.fault("register-wrong-error-codes"):
        code = "invalid_request"
    body = {"error": code, "error_description": err.description}
    return JSONResponse(body, status_code=err.status, headers={"Cache-Control": "no-store"})


async def register(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    try:
        return await _register(ctx, request)
    except RegistrationError as err:
        return _registration_error_response(ctx, err)
    except ServerCrash:
        return PlainTextResponse("Internal Server Error", status_code=500)


async def _register(ctx: MockContext, request: Request) -> Response:
    layout = ctx.settings.layout
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed_media = set(layout.registration_media_types)
    if ctx.fault("carequality-register-refuses-fhir-json"):
        allowed_media = {"application/json"}
    if media not in allowed_media:
        raise RegistrationError(
            "invalid_client_metadata", f"send the registration as {' or '.join(sorted(allowed_media))}"
        )
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser can follow
        if ctx.fault("register-malformed-body-500"):
            raise ServerCrash("bad JSON") from None
        raise _metadata_error("the registration body is not JSON") from None
    if not isinstance(body, dict):
        raise _metadata_error("the registration body must be a JSON object")
    udap_value = body.get("udap")
    accepted_versions: tuple[Any, ...] = layout.registration_udap_values
    if ctx.fault("carequality-rejects-udap-number"):
        accepted_versions = ("1",)
    # A JSON true is no version, though Python finds True == 1 (the number Carequality on Cerner accepts).
    unaccepted = isinstance(udap_value, bool) or udap_value not in accepted_versions
    if unaccepted and not ctx.fault("register-missing-udap-accepted"):
        raise _metadata_error('udap must be "1"')
    certifications = body.get("certifications", [])
    if not isinstance(certifications, list):
        if ctx.fault("register-malformed-body-500"):
            raise ServerCrash("certifications")
        raise _metadata_error("certifications must be an array")
    statement = body.get("software_statement")
    if not isinstance(statement, str) or not statement:
        raise _metadata_error("software_statement is required")
    try:
        claims, certificates = verified_certificate(
            ctx, statement, allowed_algs=JWT_ALGS, what="software statement", trust_fault="accept-untrusted-chain"
        )
    except PkiError as exc:
        raise RegistrationError("unapproved_software_statement", str(exc)) from None
    except ValueError as exc:
        raise _statement_error(str(exc)) from None
    from conformance.crypto.pki import san_uris

    sans = san_uris(certificates[0]) if certificates else [str(claims.get("iss"))]
    iss = _validate_statement_claims(ctx, claims, sans)
    exp = numeric_date(claims.get("exp"))  # None only under a fault that accepts a statement without exp
    # Remembered as long as the statement is accepted (exp plus the clock-skew leeway), not only until exp.
    expires = (float(exp) if exp is not None else ctx.now() + MAX_STATEMENT_LIFETIME) + ctx.settings.clock_skew_leeway
    replayed = not ctx.store.remember_jti(f"registration:{iss}", str(claims.get("jti")), expires, ctx.now())
    if replayed and ctx.fault("register-replay-500"):
        raise ServerCrash("replayed software statement")
    if replayed and ctx.variation("register-replay-refused"):
        raise _statement_error("software_statement replayed (its jti was seen before)")
    metadata = _validate_client_metadata(ctx, claims, needs_contact=layout.registration_needs_contact)
    community = _udap(ctx).community
    existing = ctx.store.find_client("registration_key", f"{iss}|{community}")
    if not metadata["grant_types"]:
        if existing is None or not existing.active:
            raise _metadata_error("there is no registration for this iss to cancel")
        if not ctx.fault("register-cancel-ignored"):
            existing.active = False
            ctx.store.put_client(existing)
        return JSONResponse(
            {"client_id": existing.client_id, "grant_types": [], "software_statement": statement}, status_code=200
        )
    if existing is not None and not ctx.fault("register-new-client-id-on-update"):
        client_id, status = existing.client_id, 201 if ctx.variation("reregistration-201") else 200
    else:
        client_id, status = f"udap-{uuid.uuid4().hex[:16]}", 201
        if existing is not None:
            existing.active = False
            ctx.store.put_client(existing)
    if ctx.fault("register-200-for-new") and status == 201:
        status = 200
    client = Client(
        client_id,
        auth_method="udap",
        scopes=metadata["scope"].split(),
        extra={
            "registration_key": f"{iss}|{community}",
            "san": iss,
            "community": community,
            "client_name": metadata["client_name"],
        },
    )
    ctx.store.put_client(client)
    response: dict[str, Any] = {"client_id": client_id, **metadata}
    if not ctx.fault("register-no-statement-echo"):
        response["software_statement"] = statement + ("x" if ctx.fault("register-echo-altered-statement") else "")
    if ctx.fault("register-echo-jwt-claims"):
        response.update({k: claims[k] for k in ("iss", "sub", "aud", "exp", "iat", "jti") if k in claims})
    if ctx.fault("register-without-client-id"):
        del response["client_id"]
    if ctx.fault("register-metadata-not-stated"):
        response = {k: v for k, v in response.items() if k not in ("grant_types", "token_endpoint_auth_method")}
    media = "text/plain" if ctx.fault("register-response-text-plain") else "application/json"
    if ctx.variation("registration-response-charset"):
        media += "; charset=utf-8"
    return JSONResponse(response, status_code=status, headers={"Cache-Control": "no-store"}, media_type=media)


# --- token -------------------------------------------------------------------------------------------------


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description)


def authenticate_udap(ctx: MockContext, form: dict[str, str]) -> Client:
    """UDAP JWT-based client authentication: x5c leaf signs, chain trusted, bound to the registered SAN."""
    if form.get("client_assertion_type") != ASSERTION_TYPE and not ctx.fault("ignore-assertion-type"):
        raise OAuthError(
            "invalid_request" if "client_assertion_type" not in form else "invalid_client",
            f"client_assertion_type must be {ASSERTION_TYPE}",
        )
    assertion = form.get("client_assertion")
    if not assertion:
        if ctx.fault("missing-assertion-500"):
            raise ServerCrash("no assertion")
        raise _invalid_client("client_assertion is required")
    try:
        claims, certificates = verified_certificate(
            ctx, assertion, allowed_algs=JWT_ALGS, what="client assertion", trust_fault="token-accept-untrusted-cert"
        )
    except PkiError as exc:
        raise _invalid_client(f"the client certificate is not trusted: {exc}") from None
    except ValueError as exc:
        if "x5c" in str(exc) and ctx.fault("token-trust-header-jwk"):
            return _client_by_header_jwk(ctx, assertion)
        raise _invalid_client(str(exc)) from None
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or (iss != sub and not ctx.fault("ignore-iss-sub-mismatch")):
        raise _invalid_client("iss and sub must both be the client_id")
    client = ctx.store.get_client(iss)
    if client is None or not client.active or client.auth_method != "udap":
        if client is None and ctx.fault("unknown-client-500"):
            raise ServerCrash("client lookup failed")
        raise _invalid_client("unknown or cancelled client")
    if form.get("client_id") not in (None, client.client_id):
        raise _invalid_client("client_id does not match the assertion")
    from conformance.crypto.pki import san_uris

    bound = not certificates or client.extra.get("san") in san_uris(certificates[0])
    if not bound and not ctx.fault("token-accept-other-san"):
        raise _invalid_client("the certificate is not the one this client registered with")
    now, leeway = ctx.now(), ctx.settings.clock_skew_leeway
    aud = claims.get("aud")
    accepted = {ctx.settings.token_url}
    if ctx.fault("carequality-token-url-other-host"):
        accepted.add(ctx.settings.token_url.replace("://127.0.0.1:", "://localhost:", 1))
    # Only strings can match (StringOrURI); intersecting sets hashed an aud that is, or holds, a JSON object: a 500.
    audiences = aud if isinstance(aud, list) else [aud]
    matches = any(isinstance(value, str) and value in accepted for value in audiences)
    if not matches and not ctx.fault("accept-wrong-aud"):
        raise _invalid_client(f"aud must be the token endpoint {ctx.settings.token_url}")
    exp, iat, nbf = _dates(claims, "assertion", _invalid_client)
    if exp is None or (exp < now - leeway and not ctx.fault("accept-expired-assertion")):
        raise _invalid_client("the assertion has expired or has no exp")
    if nbf is not None and nbf > now + leeway:
        raise _invalid_client("the assertion is not valid yet (nbf)")
    if (
        iat is not None
        and exp - iat > MAX_STATEMENT_LIFETIME + leeway
        and not ctx.fault("token-accept-long-lived-assertion")
    ):
        raise _invalid_client("the assertion lives longer than five minutes")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _invalid_client("the assertion has no jti")
    if ctx.fault("udap-replay-500") and not ctx.store.remember_jti(
        "replay-probe:" + client.client_id, jti, float(exp) + leeway, now
    ):
        raise ServerCrash("replay cache")
    if not ctx.store.remember_jti(client.client_id, jti, float(exp) + leeway, now) and not ctx.variation(
        "udap-replay-accepted"
    ):
        raise _invalid_client("this jti was already used (replay)")
    _check_b2b(ctx, claims)
    return client


def _client_by_header_jwk(ctx: MockContext, assertion: str) -> Client:
    """The fault 'token-trust-header-jwk': verify with a jwk from the attacker-controlled header."""
    header, claims = decode_unverified(assertion)
    jwk_value = header.get("jwk")
    if not isinstance(jwk_value, dict):
        raise _invalid_client("no x5c and no jwk")
    key = jwt.PyJWK(jwk_value).key
    jwt.PyJWS().decode_complete(assertion, key=key, algorithms=[str(header.get("alg"))])
    client = ctx.store.get_client(str(claims.get("iss")))
    if client is None or not client.active:
        raise _invalid_client("unknown client")
    return client


def _check_b2b(ctx: MockContext, claims: dict[str, Any]) -> None:
    udap = _udap(ctx)
    extensions = claims.get("extensions")
    if extensions is None:
        if udap.require_b2b and not ctx.fault("b2b-not-required"):
            raise OAuthError("invalid_grant", "the hl7-b2b authorization extension is required")
        return
    if ctx.fault("b2b-not-validated"):
        return
    if not isinstance(extensions, dict):
        raise OAuthError("invalid_grant", "extensions must be a JSON object")
    b2b = extensions.get("hl7-b2b")
    if b2b is None:
        if udap.require_b2b and not ctx.fault("b2b-not-required"):
            raise OAuthError("invalid_grant", "the hl7-b2b authorization extension is required")
        return
    if not isinstance(b2b, dict):
        raise OAuthError("invalid_grant", "hl7-b2b must be a JSON object")
    if b2b.get("version") != "1":
        raise OAuthError("invalid_grant", 'hl7-b2b version must be "1"')
    if not isinstance(b2b.get("organization_id"), str) or not b2b["organization_id"]:
        raise OAuthError("invalid_grant", "hl7-b2b organization_id is required")
    purpose = b2b.get("purpose_of_use")
    if not isinstance(purpose, list) or not purpose or not all(isinstance(p, str) for p in purpose):
        raise OAuthError("invalid_grant", "hl7-b2b purpose_of_use must be a non-empty array of codes")


async def udap_token(request: Request) -> Response:
    ctx: MockContext = request.app.state.ctx
    try:
        form = await read_token_form(ctx, request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")
        client = authenticate_udap(ctx, form)
        scope = grant_scope(ctx, client, form.get("scope") or " ".join(client.scopes))
        lifetime = 7200 if ctx.fault("udap-token-lifetime-7200") else 300 if ctx.variation("udap-short-token") else None
        stated: dict[str, object] | None = {"scope": ""} if ctx.fault("udap-token-scope-empty") else None
        return issue_token(ctx, client, scope, lifetime=lifetime, fields=stated)
    except OAuthError as err:
        return oauth_error_response(ctx, err)
    except ServerCrash:
        return PlainTextResponse("Internal Server Error", status_code=500)
