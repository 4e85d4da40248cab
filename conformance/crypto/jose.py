"""Keys, JWKS and client assertions, on PyJWT and cryptography.

Keys are generated or loaded once per run. `client_assertion` builds the valid
RFC 7523 assertion SMART asks for; negative checks start from it and change one
thing (`claims`/`header` overrides, or the raw helpers for `alg: none`, HMAC key
confusion and hand-made garbage).
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300


class KeyFileError(ValueError):
    """A key file could not be used; the message says why."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass(frozen=True)
class ClientKey:
    """A private key with the kid and alg the client signs with."""

    kid: str
    alg: str
    private_key: PrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    @property
    def kty(self) -> str:
        return "RSA" if isinstance(self.private_key, rsa.RSAPrivateKey) else "EC"

    @property
    def rsa_bits(self) -> int | None:
        """The modulus size of an RSA key (None for EC): configuration refuses keys below 2048 bits."""
        return self.private_key.key_size if isinstance(self.private_key, rsa.RSAPrivateKey) else None

    def public_jwk(self) -> dict[str, Any]:
        return public_jwk(self.public_key, kid=self.kid, alg=self.alg)

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def secret_strings(self) -> list[str]:
        """Renderings of the private key that must never reach a report."""
        private = private_jwk(self.private_key)
        values = [self.private_pem().decode()]
        values += [str(private[m]) for m in ("d", "p", "q", "dp", "dq", "qi") if m in private]
        return values


def public_jwk(key: PublicKey, *, kid: str | None = None, alg: str | None = None) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key, as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    jwk = {k: v for k, v in jwk.items() if k not in ("key_ops",)}
    if alg:
        jwk["alg"] = alg
    jwk["kid"] = kid or thumbprint(jwk)
    return jwk


def private_jwk(key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    return ECAlgorithm.to_jwk(key, as_dict=True)


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, used as the default kid."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def default_alg(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS384"
    curve = key.curve.name
    return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(curve, "ES384")


def generate_rsa(kid: str | None = None, alg: str = "RS384") -> ClientKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ClientKey(kid or public_jwk(key.public_key())["kid"], alg, key)


def generate_ec(kid: str | None = None, alg: str = "ES384") -> ClientKey:
    curve: ec.EllipticCurve = ec.SECP256R1() if alg == "ES256" else ec.SECP384R1()
    key = ec.generate_private_key(curve)
    return ClientKey(kid or public_jwk(key.public_key())["kid"], alg, key)


def load_key(path: Path, kid: str | None = None, *, trusted: bool = False) -> ClientKey:
    """Load a private key from a PEM file or a JWK (JSON) file.

    trusted: the key is one this tool generated itself (the embedded-run key cache), so the RSA consistency
    check, about 30 ms a key, is skipped. Never for a user's key file.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace").strip()
    key: PrivateKey
    if text.startswith("{"):
        try:
            jwk = json.loads(text)
        except ValueError as exc:
            raise KeyFileError(f"{path} is neither PEM nor valid JWK JSON: {exc}") from None
        if "keys" in jwk:
            raise KeyFileError(f"{path} is a JWKS; give one private JWK per file")
        if "d" not in jwk:
            raise KeyFileError(f"{path} holds a public JWK; a private key (with 'd') is needed to sign")
        try:
            loaded = (RSAAlgorithm if jwk.get("kty") == "RSA" else ECAlgorithm).from_jwk(jwk)
        except (jwt.InvalidKeyError, ValueError, KeyError) as exc:
            raise KeyFileError(f"{path}: unusable JWK ({exc})") from None
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyFileError(f"{path} holds a public JWK; a private key is needed to sign")
        key = loaded
        kid = kid or jwk.get("kid")
        alg = jwk.get("alg") or default_alg(key)
    else:
        try:
            pem_key = serialization.load_pem_private_key(raw, password=None, unsafe_skip_rsa_key_validation=trusted)
        except TypeError:
            raise KeyFileError(f"{path} is encrypted; store it unencrypted or as a JWK file") from None
        except ValueError as exc:
            raise KeyFileError(f"{path} is not a PEM private key ({exc})") from None
        if not isinstance(pem_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyFileError(f"{path}: only RSA and EC keys are supported")
        key = pem_key
        alg = default_alg(key)
    return ClientKey(kid or public_jwk(key.public_key())["kid"], alg, key)


def jwks(keys: list[ClientKey]) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}


_signature_listeners: contextvars.ContextVar[tuple[Callable[[str], None], ...]] = contextvars.ContextVar(
    "signature_listeners", default=()
)


def observe_signatures(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call `listener` with the signature of every JWT signed from now on in this thread (the suite's, not the
    embedded reference server's, which signs on its own thread); returns the function that stops it.

    The redactor masks each one by value: a case that swaps a valid assertion's header for something that is not
    JSON leaves the real signature behind, and no JWT-shape rule would then recognise it."""
    _signature_listeners.set((*_signature_listeners.get(), listener))

    def stop() -> None:
        _signature_listeners.set(tuple(known for known in _signature_listeners.get() if known is not listener))

    return stop


def sign(
    claims: dict[str, Any], key: ClientKey, *, header: dict[str, Any] | None = None, alg: str | None = None
) -> str:
    """Sign claims with the key; `header` members are added or, with value None, removed."""
    headers: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
    for name, value in (header or {}).items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    token = jwt.encode(claims, key.private_key, algorithm=alg or key.alg, headers=headers)
    for listener in _signature_listeners.get():
        listener(token.rsplit(".", 1)[-1])
    return token


def assertion_claims(client_id: str, audience: str, *, lifetime: int = MAX_ASSERTION_LIFETIME) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex + uuid.uuid4().hex,
    }


def client_assertion(
    key: ClientKey,
    *,
    client_id: str,
    audience: str,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A valid RFC 7523 client assertion; `claims` overrides (None removes a claim)."""
    body = assertion_claims(client_id, audience)
    for name, value in (claims or {}).items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return sign(body, key, header=header)


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT with alg none and an empty signature."""
    return f"{b64url_json({**header, 'alg': 'none'})}.{b64url_json(claims)}."


def hmac_jwt(header: dict[str, Any], claims: dict[str, Any], secret: bytes, alg: str = "HS256") -> str:
    """A JWT MAC'd with `secret`, built by hand so any bytes (e.g. a public key) can be the secret."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[alg]
    signing_input = f"{b64url_json({**header, 'alg': alg})}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


_LAST_OF = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
"""The last character of a canonical segment whose length leaves 4 (2) unused bits: those with them zero."""


def is_canonical_b64url(segment: str) -> bool:
    """Whether a segment is unpadded base64url in its one canonical spelling (RFC 7515 §2, RFC 4648 §3.5: no
    other characters, no padding, unused bits zero). Lenient decoders drop stray characters and ignore unused
    bits, which makes a signed value malleable."""
    rest = len(segment) % 4
    return rest != 1 and bool(_B64URL.fullmatch(segment)) and (rest == 0 or segment[-1] in _LAST_OF[rest])


def canonical_b64url(segment: str) -> bytes | None:
    """The bytes of a canonical unpadded base64url segment (is_canonical_b64url); None for anything else."""
    if not is_canonical_b64url(segment):
        return None
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWT without verifying it (ValueError if malformed)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"a compact JWS has 3 parts, this has {len(parts)}")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not base64url JSON: {exc}") from None
    except RecursionError:  # json gives up on deep nesting this way, not with a ValueError
        raise ValueError("not base64url JSON: nested too deeply") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header and claims must be JSON objects")
    return header, claims
