"""The reference server's assertions and access tokens: verified as strictly as PyJWS did, tokens sealed and not
stored, state that survives a restart and an upgrade (conformance.mock.assertions, conformance.mock.store)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from conformance.crypto.jose import ClientKey, assertion_claims, b64url, generate_ec, jwks, sign
from conformance.flows.oauth import assertion_form
from conformance.mock.server import MockServer
from conformance.mock.store import MAX_TOKEN_LIFETIME, RECENT_TOKENS, Client, Store, _jti_digest
from conformance.profiles import registry as profiles

SCOPE = "system/Patient.rs"


@pytest.fixture(scope="module")
def server(keys_dir: Path) -> Iterator[tuple[MockServer, ClientKey]]:
    from conformance.profiles.smart_backend import embedded_keys

    key = embedded_keys(keys_dir)["client-rs384"]
    with MockServer(profiles.DEFAULT.server_settings()) as mock:
        mock.ctx.store.put_client(Client("strict", jwks=jwks([key]), scopes=[SCOPE]))
        yield mock, key


def _post(mock: MockServer, assertion: str) -> httpx.Response:
    return httpx.post(mock.settings.token_url, data=dict(assertion_form(assertion, SCOPE)), timeout=10)


def _refused(answer: httpx.Response) -> bool:
    return answer.status_code in (400, 401) and answer.json().get("error") == "invalid_client"


def test_a_valid_assertion_gets_a_token(server: tuple[MockServer, ClientKey]) -> None:
    """The control for the refusals below."""
    mock, key = server
    answer = _post(mock, sign(assertion_claims("strict", mock.settings.token_url), key))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "header",
    [{"crit": ["urn:example:unknown"], "urn:example:unknown": 1}, {"crit": []}, {"b64": False, "crit": ["b64"]}],
    ids=["unknown-crit", "empty-crit", "unencoded-payload"],
)
def test_jws_extensions_are_refused(server: tuple[MockServer, ClientKey], header: dict[str, Any]) -> None:
    """RFC 7515 §4.1.11: a recipient that does not understand a critical extension refuses the JWS."""
    mock, key = server
    assert _refused(_post(mock, sign(assertion_claims("strict", mock.settings.token_url), key, header=header)))


@pytest.mark.parametrize("where", ["header", "payload", "signature-junk", "signature-bits", "signature-padded"])
def test_a_non_canonical_base64url_segment_is_refused(server: tuple[MockServer, ClientKey], where: str) -> None:
    """A lenient decoder drops stray characters and unused bits: the signed value would be malleable."""
    mock, key = server
    head, body, signature = sign(assertion_claims("strict", mock.settings.token_url), key).split(".")
    if where in ("header", "payload"):
        # Signed as sent: only the stray character, which a lenient decoder drops, makes it wrong.
        if where == "header":
            head = head[:5] + "!" + head[5:]
        else:
            body = body[:5] + "!" + body[5:]
        assert isinstance(key.private_key, rsa.RSAPrivateKey)
        signed = key.private_key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA384())
        signature = b64url(signed)
    elif where == "signature-junk":
        signature = signature[:5] + "!" + signature[5:]
    elif where == "signature-bits":
        assert len(signature) % 4 == 2  # a 2048-bit RSA signature: the last character carries 4 unused bits
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        signature = signature[:-1] + alphabet[alphabet.index(signature[-1]) ^ 1]
    else:
        signature += "=="
    assert _refused(_post(mock, f"{head}.{body}.{signature}"))


def test_es384_with_a_p256_key_is_refused(keys_dir: Path) -> None:
    """RFC 7518 §3.4: ES384 is ECDSA on P-384 with SHA-384; a P-256 key signing with SHA-384 is not ES384."""
    small = generate_ec(kid="p256", alg="ES256")
    with MockServer(profiles.DEFAULT.server_settings()) as mock:
        mock.ctx.store.put_client(Client("p256", jwks=jwks([small]), scopes=[SCOPE]))
        claims = assertion_claims("p256", mock.settings.token_url)
        header = _json({"alg": "ES384", "kid": "p256"})
        signing_input = f"{b64url(header.encode())}.{b64url(_json(claims).encode())}"
        assert isinstance(small.private_key, ec.EllipticCurvePrivateKey)
        der = small.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384()))
        r, s = _der_to_rs(der)
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        assert _refused(_post(mock, f"{signing_input}.{b64url(raw)}"))


def _json(claims: dict[str, Any]) -> str:
    import json

    return json.dumps(claims, separators=(",", ":"))


def _der_to_rs(der: bytes) -> tuple[int, int]:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    return decode_dss_signature(der)


def test_an_access_token_has_one_spelling(server: tuple[MockServer, ClientKey]) -> None:
    """A sealed token altered in its encoding (stray characters, padding, the other base64 alphabet) is not a
    token the server issued."""
    mock, _ = server
    store = mock.ctx.store
    token = store.mint_token("strict", SCOPE, time.time() + 60, {}, time.time())
    assert store.get_token(token) is not None
    body = token[4:]
    for altered in (token + "==", token[:10] + "!" + token[10:], token[:4] + body.replace("-", "+").replace("_", "/")):
        if altered != token:
            assert store.get_token(altered) is None, altered
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert store.get_token(flipped) is None


def test_the_database_file_is_private_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "mock.db")
    first = Store(path)
    token = first.mint_token("c", SCOPE, time.time() + 60, {"tenant": "t1"}, time.time())
    first.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the file holds the key that seals tokens"
    again = Store(path)
    found = again.get_token(token)
    again.close()
    assert found is not None and found.extra == {"tenant": "t1"} and found.client_id == "c"


def test_servers_opening_one_new_file_together_share_one_key(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    stores: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        start.wait()
        try:
            stores.append(Store(path))
        except BaseException as exc:  # what the test is about
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    token = stores[0].mint_token("c", SCOPE, time.time() + 60, {}, time.time())
    assert all(store.get_token(token) is not None for store in stores), "one key for every server on the file"
    for store in stores:
        store.close()


def test_the_ring_keeps_the_newest_tokens_across_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "ring.db")
    store = Store(path)
    now = time.time()
    issued = [store.mint_token("c", SCOPE, now + 60, {}, now) for _ in range(RECENT_TOKENS + 5)]
    store.close()
    store = Store(path)
    issued += [store.mint_token("c", SCOPE, now + 60, {}, now) for _ in range(6)]
    kept = set(store.issued_tokens())
    store.close()
    assert len(kept) == RECENT_TOKENS
    assert set(issued[-RECENT_TOKENS:]) == kept, "the latest RECENT_TOKENS, whatever restarts came between"


def test_revocation_expires_earlier_tokens_only_and_is_forgotten_in_time() -> None:
    store = Store()
    now = time.time()
    before = store.mint_token("c", SCOPE, now + 60, {"tenant": "t1"}, now)
    other = store.mint_token("c", SCOPE, now + 60, {"tenant": "t2"}, now)
    store.revoke_tokens("tenant", "t1", now + 1)
    after = store.mint_token("c", SCOPE, now + 62, {"tenant": "t1"}, now + 2)
    assert store.get_token(before).expires_at == 0.0  # type: ignore[union-attr]
    assert store.get_token(other).expires_at == now + 60  # type: ignore[union-attr]
    assert store.get_token(after).expires_at == now + 62  # type: ignore[union-attr]
    for n in range(50):
        store.revoke_tokens("tenant", f"x{n}", now + 2 + n)
    store.revoke_tokens("tenant", "t3", now + MAX_TOKEN_LIFETIME + 100)
    assert len(store._revoked) == 1, "revocations older than any token's lifetime are dropped"


def test_an_older_database_is_upgraded_with_its_replay_memory(tmp_path: Path) -> None:
    """The layout before sealed tokens: stored tokens are dropped, seen assertion ids still refuse a replay."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "create table tokens (token text primary key, client_id text, scope text, expires_at real, extra text);"
            "create table seen_jti (issuer text, jti text, expires_at real, primary key (issuer, jti));"
        )
        db.execute("insert into tokens values ('plain-old-token', 'c', 's', 1e12, '{}')")
        db.execute("insert into seen_jti values ('c', 'jti-1', ?)", (time.time() + 300,))
    store = Store(str(path))
    assert store.remember_jti("c", "jti-1", time.time() + 300, time.time()) is False, "still a replay"
    assert store.get_token("plain-old-token") is None
    store.close()
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        seen = db.execute("select count(*) from seen_assertions where digest = ?", (_jti_digest("c", "jti-1"),))
        assert seen.fetchone()[0] == 1
    assert not tables & {"tokens", "seen_jti"}


def test_expired_assertion_ids_are_swept_slice_by_slice_and_live_ones_kept() -> None:
    """One sweep of every slice drops what can no longer be replayed and nothing else; a live id stays a replay."""
    from conformance.mock.store import SWEEP_SLICES, _slice

    assert _slice(0)[0] == -(2**63) and _slice(SWEEP_SLICES - 1)[1] == 2**63 - 1
    assert all(_slice(n)[1] + 1 == _slice(n + 1)[0] for n in range(SWEEP_SLICES - 1)), "no gap, no overlap"
    store, now = Store(), time.time()
    for n in range(2_000):
        assert store.remember_jti("c", f"jti-{n}", now + (1 if n % 2 else 300), now)
    later = now + 10
    for _ in range(SWEEP_SLICES):
        store._next_sweep = 0.0
        store._sweep(later)
    assert store._db.execute("select count(*) from seen_assertions").fetchone()[0] == 1_000
    assert store.remember_jti("c", "jti-0", now + 300, later) is False, "a live id is still a replay"
    assert store.remember_jti("c", "jti-1", now + 300, later) is True, "an expired one may be used again"


def test_a_database_of_an_interim_layout_opens_and_keeps_its_replay_memory(tmp_path: Path) -> None:
    """Layouts that lived between releases: a ring without sequence numbers, 16-byte blob digests."""
    import hashlib

    path = tmp_path / "interim.db"
    blob = hashlib.sha256(b"c\0jti-1").digest()[:16]
    with sqlite3.connect(path) as db:
        db.executescript(
            "create table recent_tokens (slot integer primary key, token text not null);"
            "create table seen_assertions (digest blob primary key, expires_at real not null) without rowid;"
        )
        db.execute("insert into recent_tokens values (1, 'rs1.old')")
        db.execute("insert into seen_assertions values (?, ?)", (blob, time.time() + 300))
    store = Store(str(path))
    assert store.remember_jti("c", "jti-1", time.time() + 300, time.time()) is False, "still a replay"
    token = store.mint_token("c", SCOPE, time.time() + 60, {}, time.time())
    assert store.issued_tokens() == [token]
    store.close()


def test_an_assertion_id_expiring_at_any_instant_is_kept_or_dropped_never_a_crash() -> None:
    """NaN and +inf are kept as long as possible, -inf and the past are already over (only a fault lets such an
    expiry through: the claim rules refuse it first)."""
    store, now = Store(), time.time()
    for n, until in enumerate((float("-inf"), -1.0, 0.0, float("nan"), float("inf"), 1e300)):
        store.remember_jti("c", f"odd-{n}", until, now)
    assert store.remember_jti("c", "odd-0", now + 60, now) is True, "-inf was already over"
    assert store.remember_jti("c", "odd-4", now + 60, now) is False, "+inf is kept"
