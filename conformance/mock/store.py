"""Persistent state of the reference server, in stdlib SQLite.

Clients and seen assertion ids live here. With a file path the server keeps its
registered clients across restarts; the default is an in-memory database.

What a request costs, and what the server holds, must not grow with what it has
issued (issue 12). So access tokens are not stored: each carries its client,
scope, expiry and context (tenant, patient, authorization), encrypted and
authenticated (AES-GCM) under a key of the server's own, kept in the database so a
restart with the same file still honours them; to a client it is opaque. Seen
assertion ids are kept as 64-bit digests (the table's row id, with no other index:
about 25 bytes an id) until the assertion could no longer be accepted; expired ones
are swept a slice of the digest range at a time, so no request waits for a whole
sweep. Only the most recent tokens are kept, in a ring, for diagnostics and the
project's tests; revocations are a short list.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conformance.crypto.jose import b64url, canonical_b64url

SCHEMA = """
create table if not exists clients (
    client_id text primary key,
    auth_method text not null,
    jwks text,
    jwks_uri text,
    scopes text not null default '',
    token_lifetime integer,
    secret text,
    tenant text,
    extra text not null default '{}',
    active integer not null default 1,
    created real not null,
    updated real not null
);
create table if not exists seen_assertions (
    digest integer primary key,
    expires_at integer not null
);
create table if not exists recent_tokens (
    slot integer primary key,
    seq integer not null,
    token text not null
);
create table if not exists meta (
    name text primary key,
    value text not null
);
create index if not exists clients_by_registration_key on clients (json_extract(extra, '$.registration_key'));
"""
CLIENT_COLUMNS = "client_id, auth_method, jwks, jwks_uri, scopes, token_lifetime, secret, tenant, extra, active"
SWEEP_SLICES = 100
"""The digest range is swept for expired assertion ids in this many slices, one at most every SWEEP_EVERY seconds
(a whole sweep every 5 s): a request never pays for more than a hundredth of what the server remembers."""
SWEEP_EVERY = 0.05
RECENT_TOKENS = 10_000
"""How many of the latest tokens issued_tokens() can list (a ring: memory does not grow with what was issued)."""
TOKEN_PREFIX = "rs1."
MAX_TOKEN_LIFETIME = 86_400.0
"""Longer than any lifetime the server gives a token (300 s by default, 3600 s under a fault, whatever
--token-lifetime says within reason): a revocation older than this has no token left to expire."""


@dataclass
class Client:
    client_id: str
    auth_method: str = "private_key_jwt"
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    scopes: list[str] = field(default_factory=list)
    token_lifetime: int | None = None
    secret: str | None = field(default=None, repr=False)
    tenant: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    active: bool = True


@dataclass
class AccessToken:
    token: str
    client_id: str
    scope: str
    expires_at: float
    extra: dict[str, Any] = field(default_factory=dict)
    issued_at: float = 0.0


class Store:
    """Thread-safe access to the server's SQLite database."""

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        if path != ":memory:":
            _private_file(path)  # it holds the key that seals access tokens
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        key = _taking_turns(lambda: self._prepare(path))
        self._next_sweep = 0.0
        self._sweep_slice = 0
        self._aead = AESGCM(key)
        self._issued = self._db.execute("select coalesce(max(seq), 0) from recent_tokens").fetchone()[0]
        self._revoked: list[tuple[str, str, float]] = []
        """(extra key, value, when): tokens issued until then with that value are expired. Only the fault
        single-use-access-tokens revokes; entries older than any token's lifetime are dropped."""

    def _prepare(self, path: str) -> bytes:
        """Journal mode, tables, migrations and the token key; returns the key."""
        if path != ":memory:":
            self._db.execute("pragma busy_timeout = 5000")  # servers started together on one file take turns
            self._db.execute("pragma journal_mode=wal")  # a token per request must not wait for an fsync each
            self._db.execute("pragma synchronous=normal")
        self._migrate_interim()
        self._db.executescript(SCHEMA)
        self._migrate()
        return self._token_key()

    def _migrate(self) -> None:
        """A database of the layout before sealed tokens: its stored tokens are dropped (bearer tokens in plain
        text), its seen assertion ids carried over as digests (a replay must stay refused across the upgrade)."""
        tables = {row[0] for row in self._db.execute("select name from sqlite_master where type = 'table'")}
        if "seen_jti" in tables:
            rows = self._db.execute("select issuer, jti, expires_at from seen_jti").fetchall()
            self._db.executemany(
                "insert or ignore into seen_assertions (digest, expires_at) values (?, ?)",
                [(_jti_digest(issuer, jti), _whole_seconds(expires_at)) for issuer, jti, expires_at in rows],
            )
            self._db.execute("drop table seen_jti")
        if "tokens" in tables:
            self._db.execute("drop table tokens")

    def _migrate_interim(self) -> None:
        """Layouts that lived between releases: a ring without its sequence numbers is dropped (it only lists
        recent tokens), 16-byte digests of seen assertion ids become the 64-bit ones (their first 8 bytes)."""
        columns = {
            table: {row[1]: row[2].lower() for row in self._db.execute(f"pragma table_info({table})")}
            for table in ("recent_tokens", "seen_assertions")
        }
        if columns["recent_tokens"] and "seq" not in columns["recent_tokens"]:
            self._db.execute("drop table recent_tokens")
        if columns["seen_assertions"].get("digest") == "blob":
            rows = self._db.execute("select digest, expires_at from seen_assertions").fetchall()
            self._db.execute("drop table seen_assertions")
            self._db.executescript(SCHEMA)
            self._db.executemany(
                "insert or ignore into seen_assertions (digest, expires_at) values (?, ?)",
                [(int.from_bytes(bytes(d)[:8], "big", signed=True), _whole_seconds(e)) for d, e in rows],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put_client(self, client: Client) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                """insert into clients (client_id, auth_method, jwks, jwks_uri, scopes, token_lifetime, secret,
                       tenant, extra, active, created, updated)
                   values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   on conflict(client_id) do update set auth_method=excluded.auth_method, jwks=excluded.jwks,
                       jwks_uri=excluded.jwks_uri, scopes=excluded.scopes, token_lifetime=excluded.token_lifetime,
                       secret=excluded.secret, tenant=excluded.tenant, extra=excluded.extra,
                       active=excluded.active, updated=excluded.updated""",
                (
                    client.client_id,
                    client.auth_method,
                    json.dumps(client.jwks) if client.jwks is not None else None,
                    client.jwks_uri,
                    " ".join(client.scopes),
                    client.token_lifetime,
                    client.secret,
                    client.tenant,
                    json.dumps(client.extra),
                    int(client.active),
                    now,
                    now,
                ),
            )

    def get_client(self, client_id: str) -> Client | None:
        with self._lock:
            row = self._db.execute(
                f"select {CLIENT_COLUMNS} from clients where client_id = ?",
                (client_id,),
            ).fetchone()
        return _client(row) if row else None

    def clients(self) -> list[Client]:
        with self._lock:
            rows = self._db.execute(f"select {CLIENT_COLUMNS} from clients order by created").fetchall()
        return [_client(r) for r in rows]

    def find_client(self, key: str, value: str) -> Client | None:
        """A client whose `extra[key]` equals value (e.g. the iss|community a UDAP client registered with): one
        indexed lookup for registration_key, however many clients are registered. Should several match, the
        active one most recently updated is the one meant."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"not a client attribute name: {key!r}")
        with self._lock:
            row = self._db.execute(
                f"select {CLIENT_COLUMNS} from clients where json_extract(extra, '$.{key}') = ?"
                " order by active desc, updated desc limit 1",
                (value,),
            ).fetchone()
        return _client(row) if row is not None else None

    def _sweep(self, now: float) -> None:
        """Drop the assertion ids that could no longer be replayed in the next slice of the digest range (a range
        of row ids: read in order, no index needed), at most every SWEEP_EVERY seconds."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY
        low, high = _slice(self._sweep_slice)
        self._sweep_slice = (self._sweep_slice + 1) % SWEEP_SLICES
        self._db.execute(
            "delete from seen_assertions where digest between ? and ? and expires_at < ?", (low, high, now)
        )

    def _token_key(self) -> bytes:
        """The key that seals access tokens: made once, kept in the database (a restart on the same file keeps
        honouring the tokens it issued)."""
        made = AESGCM.generate_key(bit_length=256).hex()
        # Servers started together on one file: the first key written is everyone's.
        self._db.execute("insert or ignore into meta (name, value) values ('token_key', ?)", (made,))
        row = self._db.execute("select value from meta where name = 'token_key'").fetchone()
        return bytes.fromhex(row[0])

    def mint_token(self, client_id: str, scope: str, expires_at: float, extra: dict[str, Any], now: float) -> str:
        """A new access token that carries what get_token needs, sealed with the server's key; nothing is stored
        per token but a slot in the ring of recent ones."""
        claims = {"c": client_id, "s": scope, "e": expires_at, "i": now, "x": extra}
        nonce = os.urandom(12)  # random per token: AES-GCM must never see a nonce twice under one key
        sealed = self._aead.encrypt(nonce, json.dumps(claims, separators=(",", ":")).encode(), None)
        token = TOKEN_PREFIX + b64url(nonce + sealed)
        with self._lock:
            self._issued += 1
            self._db.execute(
                "insert or replace into recent_tokens (slot, seq, token) values (?, ?, ?)",
                (self._issued % RECENT_TOKENS, self._issued, token),
            )
        return token

    def get_token(self, token: str) -> AccessToken | None:
        """The token's content when the server issued it (its seal holds), else None. A revoked token comes back
        expired."""
        found = self._unseal(token)
        if found is None:
            return None
        for name, value, at in self._revoked:
            if str(found.extra.get(name)) == value and found.issued_at <= at:
                found.expires_at = 0.0
        return found

    def _unseal(self, token: str) -> AccessToken | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 8192:
            return None
        raw = canonical_b64url(token[len(TOKEN_PREFIX) :])
        if raw is None or len(raw) < 12:
            return None  # the one spelling the server issued, nothing else: a token is not malleable
        try:
            claims = json.loads(self._aead.decrypt(raw[:12], raw[12:], None))
            return AccessToken(
                token, str(claims["c"]), str(claims["s"]), float(claims["e"]), dict(claims["x"]), float(claims["i"])
            )
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None  # not sealed by this server (or not a token of this layout): never issued as one

    def issued_tokens(self) -> list[str]:
        """The most recent tokens issued (up to RECENT_TOKENS), for diagnostics and tests."""
        with self._lock:
            rows = self._db.execute("select token from recent_tokens").fetchall()
            return [r[0] for r in rows]

    def revoke_tokens(self, predicate_key: str, value: str, now: float) -> None:
        """Expire every token issued until `now` (the server's clock) whose `extra[predicate_key]` equals value.
        Kept in memory: a restart forgets revocations (only a fault revokes)."""
        with self._lock:
            kept = [r for r in self._revoked if r[2] > now - MAX_TOKEN_LIFETIME and r[:2] != (predicate_key, value)]
            self._revoked = [*kept, (predicate_key, value, now)]

    def remember_jti(self, issuer: str, jti: str, expires_at: float, now: float) -> bool:
        """Record an assertion id; False when it was already seen and is still live. Kept as a 64-bit digest of
        issuer and jti until `expires_at`, rounded up to a whole second (a false replay among a million live ids:
        about one in 10**13)."""
        digest, until = _jti_digest(issuer, jti), _whole_seconds(expires_at)
        with self._lock:
            self._sweep(now)
            try:
                self._db.execute("insert into seen_assertions (digest, expires_at) values (?, ?)", (digest, until))
            except sqlite3.IntegrityError:
                # Seen before: a replay while the first is live; an expired entry the sweep has not reached yet
                # is a jti that may be used again.
                row = self._db.execute("select expires_at from seen_assertions where digest = ?", (digest,)).fetchone()
                if row is None or row[0] >= now:
                    return False
                self._db.execute("update seen_assertions set expires_at = ? where digest = ?", (until, digest))
        return True


def _jti_digest(issuer: str, jti: str) -> int:
    raw = hashlib.sha256(f"{issuer}\0{jti}".encode("utf-8", "surrogatepass")).digest()[:8]
    return int.from_bytes(raw, "big", signed=True)  # SQLite's 64-bit integer: the row id itself


def _slice(n: int) -> tuple[int, int]:
    """The n-th of SWEEP_SLICES equal ranges of signed 64-bit digests, bounds included (the last one reaches the
    top)."""
    width = 2**64 // SWEEP_SLICES
    low = -(2**63) + n * width
    return low, (2**63 - 1 if n == SWEEP_SLICES - 1 else low + width - 1)


LATEST = 2**62
"""Any expiry past SQLite's integer range (a fault may accept assertions that never expire) is kept as this."""


def _whole_seconds(when: float) -> int:
    if math.isnan(when) or when >= LATEST:
        return LATEST
    return 0 if when <= 0 else math.ceil(when)  # -inf included: already past


def _taking_turns(prepare: Callable[[], bytes], attempts: int = 100) -> bytes:
    """Servers opening one new file together: SQLite refuses a schema change outright (no waiting) when two would
    deadlock, so the loser tries again."""
    for _ in range(attempts - 1):
        try:
            return prepare()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.02)
    return prepare()


def _private_file(path: str) -> None:
    """The database file readable by its owner only (made so, or narrowed when it was not)."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
    except OSError:
        pass  # not ours to change (another user's file): SQLite reports what it cannot open


def _client(row: tuple[Any, ...]) -> Client:
    return Client(
        client_id=row[0],
        auth_method=row[1],
        jwks=json.loads(row[2]) if row[2] else None,
        jwks_uri=row[3],
        scopes=row[4].split(),
        token_lifetime=row[5],
        secret=row[6],
        tenant=row[7],
        extra=json.loads(row[8]),
        active=bool(row[9]),
    )
