"""JOSE helpers: keys, JWKS, valid assertions and the deliberately broken JWTs negative checks need."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest

from conformance.crypto.jose import (
    KeyFileError,
    client_assertion,
    decode_unverified,
    generate_ec,
    generate_rsa,
    hmac_jwt,
    jwks,
    load_key,
    private_jwk,
    thumbprint,
    unsigned_jwt,
)


def test_assertion_is_valid_per_rfc7523_and_smart() -> None:
    key = generate_rsa()
    token = client_assertion(key, client_id="client-1", audience="https://as.example/token")
    claims = jwt.decode(token, key.public_key, algorithms=["RS384"], audience="https://as.example/token")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS384", "kid": key.kid, "typ": "JWT"}
    assert claims["iss"] == claims["sub"] == "client-1"
    assert 0 < claims["exp"] - time.time() <= 300
    assert len(claims["jti"]) >= 32


def test_es384_assertion_verifies() -> None:
    key = generate_ec()
    token = client_assertion(key, client_id="c", audience="a")
    assert jwt.decode(token, key.public_key, algorithms=["ES384"], audience="a")["sub"] == "c"
    assert key.public_jwk()["crv"] == "P-384"


def test_every_assertion_has_a_fresh_jti() -> None:
    key = generate_rsa()
    ids = {decode_unverified(client_assertion(key, client_id="c", audience="a"))[1]["jti"] for _ in range(20)}
    assert len(ids) == 20


def test_overrides_set_and_remove_claims_and_header_members() -> None:
    key = generate_rsa()
    token = client_assertion(
        key, client_id="c", audience="a", claims={"sub": None, "exp": 1}, header={"kid": None, "jku": "u"}
    )
    header, claims = decode_unverified(token)
    assert "sub" not in claims and claims["exp"] == 1
    assert "kid" not in header and header["jku"] == "u"


def test_jwks_publishes_public_keys_only_with_thumbprint_kids() -> None:
    key = generate_rsa()
    published = jwks([key, generate_ec()])
    assert len(published["keys"]) == 2
    assert all("d" not in k for k in published["keys"])
    assert published["keys"][0]["kid"] == thumbprint(published["keys"][0]) == key.kid


def test_unsigned_and_hmac_jwts_for_negative_cases() -> None:
    none_token = unsigned_jwt({"typ": "JWT"}, {"iss": "c"})
    assert none_token.endswith(".")
    assert decode_unverified(none_token)[0]["alg"] == "none"
    key = generate_rsa()
    hs = hmac_jwt({"typ": "JWT"}, {"iss": "c"}, key.public_pem())
    assert jwt.decode(hs, key.public_pem(), algorithms=["HS256"], options={"verify_signature": False})["iss"] == "c"


def test_load_pem_and_jwk_files(tmp_path: Path) -> None:
    rsa = generate_rsa()
    (tmp_path / "k.pem").write_bytes(rsa.private_pem())
    assert load_key(tmp_path / "k.pem").kid == rsa.kid
    ec = generate_ec()
    (tmp_path / "k.jwk").write_text(json.dumps({**private_jwk(ec.private_key), "kid": "ec-1"}))
    loaded = load_key(tmp_path / "k.jwk")
    assert (loaded.kid, loaded.alg) == ("ec-1", "ES384")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"kty": "RSA", "n": "AQAB", "e": "AQAB"}', "public JWK"),
        ('{"keys": []}', "is a JWKS"),
        ("{not json", "neither PEM nor valid JWK"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PEM private key"),
    ],
)
def test_unusable_key_files_are_explained(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "key"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        load_key(path)


def test_decode_unverified_rejects_garbage() -> None:
    for bad in ("a.b", "!!!.@@@.###", "e30.e30"):
        with pytest.raises(ValueError):
            decode_unverified(bad)
