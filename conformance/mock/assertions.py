"""RFC 7523 client-assertion validation, following SMART's key-resolution algorithm.

Order of checks: type and presence, structure, algorithm allow-list, iss/sub and
the client, jku, key resolution by kid and kty, signature, aud, exp/nbf/iat,
jti replay. Each named fault relaxes exactly one of them.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from conformance.jose import ASSERTION_TYPE, MAX_ASSERTION_LIFETIME, b64url_decode, decode_unverified
from conformance.mock.client_keys import JwksUnavailable
from conformance.mock.context import MockContext
from conformance.mock.errors import OAuthError, ServerCrash
from conformance.mock.store import Client

ALLOWED_ALGS = ("RS384", "ES384")


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description)


def _kty_for(alg: str) -> str:
    return "RSA" if alg.startswith(("RS", "PS")) else "EC" if alg.startswith("ES") else "oct"


async def authenticate_assertion(ctx: MockContext, form: dict[str, str], *, audience: str) -> Client:
    """Return the client a valid assertion authenticates, or raise OAuthError."""
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if not ctx.fault("ignore-assertion-type"):
        if assertion_type is None:
            raise OAuthError("invalid_request", "client_assertion_type is required")
        if assertion_type != ASSERTION_TYPE:
            raise _invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
    if not assertion:
        if ctx.fault("missing-assertion-500"):
            raise ServerCrash("no assertion")
        raise _invalid_client("client_assertion is required")

    try:
        header, claims = decode_unverified(assertion)
    except ValueError as exc:
        if ctx.fault("malformed-jwt-500"):
            raise ServerCrash(str(exc)) from None
        raise _invalid_client(f"client_assertion is not a well-formed JWT: {exc}") from None

    alg = header.get("alg")
    iss, sub = claims.get("iss"), claims.get("sub")
    lenient = ctx.fault("lenient-required-claims")
    if lenient:
        iss, sub = iss or sub, sub or iss
    else:
        if not isinstance(iss, str) or not iss:
            raise _invalid_client("the assertion has no iss")
        if not isinstance(sub, str) or not sub:
            raise _invalid_client("the assertion has no sub")
    if iss != sub and not ctx.fault("ignore-iss-sub-mismatch"):
        raise _invalid_client("iss and sub must both be the client_id")
    client = None
    for candidate in (iss, sub):
        if isinstance(candidate, str) and candidate:
            client = ctx.store.get_client(candidate)
            if client:
                break
    if client is None or not client.active:
        if ctx.fault("unknown-client-500"):
            raise ServerCrash("client lookup failed")
        raise _invalid_client("unknown client")
    form_client = form.get("client_id")
    if form_client and form_client != client.client_id and not ctx.fault("ignore-client-id-param"):
        raise _invalid_client("client_id does not match the assertion's issuer")
    if client.auth_method != "private_key_jwt":
        raise _invalid_client("this client does not authenticate with private_key_jwt")

    await _verify_signature(ctx, client, assertion, header, alg)
    _verify_claims(ctx, client, claims, audience, lenient)
    return client


async def _verify_signature(ctx: MockContext, client: Client, assertion: str, header: dict[str, Any], alg: Any) -> None:
    if alg == "none":
        if ctx.fault("accept-alg-none"):
            return
        raise _invalid_client("unsigned assertions (alg none) are not accepted")
    if alg in ("HS256", "HS384"):
        if ctx.fault("accept-hs256-key-confusion") and _hmac_matches_public_key(ctx, client, assertion, alg):
            return
        raise _invalid_client(f"alg {alg} is not accepted; use RS384 or ES384")
    if alg not in ALLOWED_ALGS:
        raise _invalid_client(f"alg {alg} is not accepted; use RS384 or ES384")
    if ctx.fault("skip-signature-check"):
        return
    if (alg == "RS384" and ctx.fault("reject-rs384")) or (alg == "ES384" and ctx.fault("reject-es384")):
        raise _invalid_client(f"alg {alg} is not accepted")

    keys = await _client_keys(ctx, client, header)
    kid = header.get("kid")
    kty = _kty_for(alg)
    if kid is None:
        if not ctx.fault("accept-unknown-kid"):
            raise _invalid_client("the assertion header has no kid")
        candidates = [k for k in keys if k.get("kty") == kty]
    else:
        same_kid = [k for k in keys if k.get("kid") == kid]
        candidates = [k for k in same_kid if k.get("kty") == kty]
        if not same_kid and ctx.fault("accept-unknown-kid"):
            candidates = [k for k in keys if k.get("kty") == kty]
        if same_kid and not candidates and ctx.fault("kty-mismatch-fallback"):
            candidates = [k for k in keys if k.get("kty") == kty]
        if not same_kid and ctx.fault("global-kid-lookup"):
            candidates = [
                k for other in ctx.store.clients() for k in (other.jwks or {}).get("keys", []) if k.get("kid") == kid
            ]
    if not candidates:
        raise _invalid_client(f"no {kty} key with kid {kid!r} is registered for this client")
    if len(candidates) > 1 and kid is not None and not ctx.fault("duplicate-kid-first-match"):
        raise _invalid_client(f"more than one key has kid {kid!r}; key resolution is ambiguous")
    errors = []
    tried = candidates if kid is None or ctx.fault("accept-unknown-kid") else candidates[:1]
    for jwk in tried:
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
            jwt.PyJWS().decode_complete(assertion, key=key, algorithms=[alg])
            return
        except Exception as exc:
            errors.append(type(exc).__name__)
    raise _invalid_client(f"the assertion signature does not verify ({', '.join(errors)})")


async def _client_keys(ctx: MockContext, client: Client, header: dict[str, Any]) -> list[dict[str, Any]]:
    jku = header.get("jku")
    try:
        if jku is not None:
            if jku != client.jwks_uri:
                if not ctx.fault("fetch-any-jku"):
                    raise _invalid_client("jku is not the JWKS URL registered for this client")
                return list((await ctx.jwks_cache.get(str(jku))).get("keys", []))
            return list((await ctx.jwks_cache.get(jku)).get("keys", []))
        if client.jwks is not None:
            return list(client.jwks.get("keys", []))
        if client.jwks_uri:
            return list((await ctx.jwks_cache.get(client.jwks_uri)).get("keys", []))
    except JwksUnavailable as exc:
        if ctx.fault("jwks-fetch-failure-500"):
            raise ServerCrash(str(exc)) from None
        raise _invalid_client(str(exc)) from None
    raise _invalid_client("no keys are registered for this client")


def _hmac_matches_public_key(ctx: MockContext, client: Client, assertion: str, alg: str) -> bool:
    """Emulates the algorithm-confusion bug: HMAC keyed with a registered public key's PEM."""
    signing_input, _, signature = assertion.rpartition(".")
    digest = hashlib.sha256 if alg == "HS256" else hashlib.sha384
    for jwk in (client.jwks or {}).get("keys", []):
        try:
            public = jwt.PyJWK(jwk).key
            pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        except Exception:
            continue
        expected = hmac.new(pem, signing_input.encode(), digest).digest()
        if hmac.compare_digest(expected, b64url_decode(signature)):
            return True
    return False


def _verify_claims(ctx: MockContext, client: Client, claims: dict[str, Any], audience: str, lenient: bool) -> None:
    now = ctx.now()
    leeway = ctx.settings.clock_skew_leeway
    aud = claims.get("aud")
    if aud is None:
        if not lenient:
            raise _invalid_client("the assertion has no aud")
    elif not ctx.fault("accept-wrong-aud"):
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            if ctx.fault("wrong-aud-500"):
                raise ServerCrash("aud mismatch")
            raise _invalid_client(f"aud must be the token endpoint {audience}")
    exp = claims.get("exp")
    if exp is None:
        if not lenient:
            raise _invalid_client("the assertion has no exp")
    else:
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _invalid_client("exp must be a NumericDate")
        if exp < now - leeway and not ctx.fault("accept-expired-assertion"):
            raise _invalid_client("the assertion has expired")
        if exp > now + MAX_ASSERTION_LIFETIME + leeway and not ctx.fault("accept-long-lived-assertion"):
            raise _invalid_client("exp is more than five minutes in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + leeway and not ctx.fault("ignore-nbf"):
        raise _invalid_client("the assertion is not valid yet (nbf)")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and iat > now + leeway and not ctx.fault("accept-iat-future"):
        raise _invalid_client("the assertion was issued in the future (iat)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        if not lenient:
            raise _invalid_client("the assertion has no jti")
        return
    if ctx.fault("ignore-jti-replay"):
        return
    remembered = jti[:16] if ctx.fault("jti-truncated") else jti
    expires = float(exp) if isinstance(exp, int | float) else now + MAX_ASSERTION_LIFETIME
    if not ctx.store.remember_jti(client.client_id, remembered, max(expires, now) + leeway, now):
        raise _invalid_client("this jti was already used (replay)")
