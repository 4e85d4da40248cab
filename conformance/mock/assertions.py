"""RFC 7523 client-assertion validation, following SMART's key-resolution algorithm.

Order of checks: type and presence, structure, algorithm allow-list, iss/sub and
the client, jku, key resolution by kid and kty, signature, then the claim rules
(CLAIM_RULES: aud, exp/nbf/iat, jti replay). Each named fault relaxes exactly
one step; a claim rule names the faults that remove it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from conformance.crypto.jose import (
    ASSERTION_TYPE,
    MAX_ASSERTION_LIFETIME,
    b64url_decode,
    canonical_b64url,
    decode_unverified,
    is_canonical_b64url,
)
from conformance.mock.client_keys import JwksUnavailable
from conformance.mock.context import MockContext
from conformance.mock.errors import OAuthError, ServerCrash
from conformance.mock.store import Client

ALLOWED_ALGS = ("RS384", "ES384")
LAST_NUMERIC_DATE = 253402300799
"""9999-12-31T23:59:59Z: beyond it (either side of 1970) a number is no date a clock will show."""


def numeric_date(value: Any) -> int | float | None:
    """The value if it is an RFC 7519 NumericDate, else None.

    JSON numbers only, and finite: Python's json module reads the non-standard
    NaN and Infinity literals as floats (NaN compares false with everything, so
    an `exp: NaN` would never expire) and booleans are ints. Ints are kept as
    they are (10**400 has no float), then bounded, so a float() of one is safe.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if -LAST_NUMERIC_DATE <= value <= LAST_NUMERIC_DATE else None


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
    except (ValueError, RecursionError) as exc:  # json raises RecursionError for JSON nested too deep to parse
        if ctx.fault("malformed-jwt-500"):
            raise ServerCrash(str(exc)) from None
        if ctx.fault("malformed-jwt-kills-server"):
            ctx.crash()
            raise ServerCrash("the server went down") from None
        if ctx.variation("malformed-assertion-invalid-request"):
            raise OAuthError("invalid_request", f"client_assertion is not a well-formed JWT: {exc}") from None
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
    _verify_claims(ctx, client, claims, audience)
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
    _refuse_extensions(header)
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
            key = _public_key(json.dumps(jwk, sort_keys=True), alg)
            if _signature_holds(assertion, key, alg):
                return
            errors.append("InvalidSignatureError")
        except Exception as exc:
            errors.append(type(exc).__name__)
    raise _invalid_client(f"the assertion signature does not verify ({', '.join(errors)})")


_ALGORITHMS = jwt.algorithms.get_default_algorithms()


def _signature_holds(assertion: str, key: Any, alg: str) -> bool:
    """Whether the JWS signature over header.payload verifies with `key` (RFC 7515 §5.2), by PyJWT's algorithm.
    The header and claims were parsed once already (decode_unverified): PyJWS.decode_complete would parse them
    again, checking each character in Python, a quarter of a token request's cost under load. Every segment
    must be canonical unpadded base64url (RFC 7515 §2), as PyJWS insists."""
    segments = assertion.split(".")
    if len(segments) != 3 or not (is_canonical_b64url(segments[0]) and is_canonical_b64url(segments[1])):
        return False
    raw = canonical_b64url(segments[2])
    if raw is None:
        return False
    return bool(_ALGORITHMS[alg].verify(f"{segments[0]}.{segments[1]}".encode("ascii"), key, raw))


def _refuse_extensions(header: dict[str, Any]) -> None:
    """JWS extensions are not understood here: a `crit` header (RFC 7515 §4.1.11: the recipient must understand
    each listed extension or refuse the JWS) and an unencoded payload (`b64`, RFC 7797) are refused, as PyJWS
    refused them."""
    if "crit" in header or header.get("b64", True) is not True:
        raise _invalid_client("the assertion uses a JWS extension (crit or b64) this server does not support")


@functools.lru_cache(maxsize=1024)
def _public_key(jwk_json: str, alg: str) -> Any:
    """The key object of a registered JWK, built once per distinct JWK (building it costs as much as verifying),
    and checked against the algorithm as PyJWS would (ES384 needs a P-384 key: RFC 7518 §3.4)."""
    return _ALGORITHMS[alg].prepare_key(jwt.PyJWK(json.loads(jwk_json), algorithm=alg).key)


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


@dataclass(frozen=True)
class ClaimsUnderTest:
    """An assertion's claims and what they are checked against."""

    ctx: MockContext
    client: Client
    claims: dict[str, Any]
    audience: str
    now: float
    leeway: int

    def numeric(self, name: str) -> float | int | None:
        """The claim as a NumericDate, None when absent or not one (see numeric_date)."""
        return numeric_date(self.claims.get(name))


@dataclass(frozen=True)
class ClaimRule:
    """One rule for the assertion's claims (RFC 7523 §3, SMART Backend Services); the named faults remove it."""

    says: str
    check: Callable[[ClaimsUnderTest], None]
    relaxed_by: tuple[str, ...] = ()


def _present(name: str) -> Callable[[ClaimsUnderTest], None]:
    def check(c: ClaimsUnderTest) -> None:
        value = c.claims.get(name)
        if value is None or (name == "jti" and (not isinstance(value, str) or not value)):
            raise _invalid_client(f"the assertion has no {name}")

    return check


def _aud_is_the_token_endpoint(c: ClaimsUnderTest) -> None:
    aud = c.claims.get("aud")
    if aud is None:
        return
    if isinstance(aud, list) and not c.ctx.variation("aud-array-accepted"):
        if c.ctx.fault("wrong-aud-500"):
            raise ServerCrash("aud is an array")
        raise _invalid_client(f"aud must be the token endpoint URL {c.audience} as a string")
    accepted = [c.audience] + ([c.ctx.settings.fhir_base] if c.ctx.variation("aud-fhir-base-accepted") else [])
    # Only strings can match (StringOrURI); a set would hash an aud that is, or holds, a JSON object: a 500.
    if not any(isinstance(value, str) and value in accepted for value in (aud if isinstance(aud, list) else [aud])):
        if c.ctx.fault("wrong-aud-500"):
            raise ServerCrash("aud mismatch")
        raise _invalid_client(f"aud must be the token endpoint {c.audience}")


def _is_a_numeric_date(name: str) -> Callable[[ClaimsUnderTest], None]:
    """A date claim that is there (even as null) must be a finite NumericDate; the other rules then trust it."""

    def check(c: ClaimsUnderTest) -> None:
        if name in c.claims and c.numeric(name) is None:
            raise _invalid_client(f"{name} must be a NumericDate (a finite number of seconds)")

    return check


def _exp_has_not_passed(c: ClaimsUnderTest) -> None:
    exp = c.numeric("exp")
    if exp is not None and exp < c.now - c.leeway:
        raise _invalid_client("the assertion has expired")


def _exp_within_five_minutes(c: ClaimsUnderTest) -> None:
    exp = c.numeric("exp")
    if exp is not None and exp > c.now + MAX_ASSERTION_LIFETIME + c.leeway:
        raise _invalid_client("exp is more than five minutes in the future")


def _nbf_has_come(c: ClaimsUnderTest) -> None:
    nbf = c.numeric("nbf")
    if nbf is not None and nbf > c.now + c.leeway:
        raise _invalid_client("the assertion is not valid yet (nbf)")


def _iat_not_in_the_future(c: ClaimsUnderTest) -> None:
    iat = c.numeric("iat")
    if iat is not None and iat > c.now + c.leeway:
        raise _invalid_client("the assertion was issued in the future (iat)")


def _jti_not_replayed(c: ClaimsUnderTest) -> None:
    jti = c.claims.get("jti")
    if not isinstance(jti, str) or not jti:
        return
    remembered = jti[:16] if c.ctx.fault("jti-truncated") else jti
    exp = c.numeric("exp")
    expires = float(exp) if exp is not None else c.now + MAX_ASSERTION_LIFETIME
    if not c.ctx.store.remember_jti(c.client.client_id, remembered, max(expires, c.now) + c.leeway, c.now):
        raise _invalid_client("this jti was already used (replay)")


LENIENT = "lenient-required-claims"
CLAIM_RULES: tuple[ClaimRule, ...] = (
    ClaimRule("aud is present", _present("aud"), (LENIENT,)),
    ClaimRule("aud is (or holds) the token endpoint URL", _aud_is_the_token_endpoint, ("accept-wrong-aud",)),
    ClaimRule("exp is present", _present("exp"), (LENIENT,)),
    ClaimRule("exp is a NumericDate", _is_a_numeric_date("exp")),
    ClaimRule("nbf, when present, is a NumericDate", _is_a_numeric_date("nbf")),
    ClaimRule("iat, when present, is a NumericDate", _is_a_numeric_date("iat")),
    ClaimRule("exp has not passed", _exp_has_not_passed, ("accept-expired-assertion",)),
    ClaimRule("exp is at most five minutes ahead", _exp_within_five_minutes, ("accept-long-lived-assertion",)),
    ClaimRule("nbf, when present, has come", _nbf_has_come, ("ignore-nbf",)),
    ClaimRule("iat, when present, is not in the future", _iat_not_in_the_future, ("accept-iat-future",)),
    ClaimRule("jti is present", _present("jti"), (LENIENT,)),
    ClaimRule("jti was not seen before (replay)", _jti_not_replayed, ("ignore-jti-replay",)),
)
"""The claim rules in the order they are applied; a fault that relaxes one lists it in relaxed_by."""


def _verify_claims(ctx: MockContext, client: Client, claims: dict[str, Any], audience: str) -> None:
    under_test = ClaimsUnderTest(ctx, client, claims, audience, ctx.now(), ctx.settings.clock_skew_leeway)
    for rule in CLAIM_RULES:
        if not any(ctx.fault(fault) for fault in rule.relaxed_by):
            rule.check(under_test)
