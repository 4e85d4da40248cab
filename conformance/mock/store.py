"""Persistent state of the reference server, in stdlib SQLite.

Clients, issued access tokens and seen assertion ids live here. With a file
path the server keeps its registered clients across restarts; the default is an
in-memory database.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

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
create table if not exists tokens (
    token text primary key,
    client_id text not null,
    scope text not null,
    expires_at real not null,
    extra text not null default '{}'
);
create table if not exists seen_jti (
    issuer text not null,
    jti text not null,
    expires_at real not null,
    primary key (issuer, jti)
);
create index if not exists seen_jti_by_expiry on seen_jti (expires_at);
create index if not exists clients_by_registration_key on clients (json_extract(extra, '$.registration_key'));
create index if not exists tokens_by_expiry on tokens (expires_at);
"""
CLIENT_COLUMNS = "client_id, auth_method, jwks, jwks_uri, scopes, token_lifetime, secret, tenant, extra, active"
SWEEP_EVERY = 5.0
"""Seconds between sweeps of expired jtis and tokens: a request never pays for what the server issued before."""
TOKEN_KEPT_AFTER_EXPIRY = 600.0
"""An expired token stays known this long (an expired token is refused as expired, not as unknown)."""


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


class Store:
    """Thread-safe access to the server's SQLite database."""

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("pragma journal_mode=wal")  # a token per request must not wait for an fsync each
            self._db.execute("pragma synchronous=normal")
        self._db.executescript(SCHEMA)
        self._next_sweep = 0.0

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
        """Drop expired jtis and long-expired tokens, at most every SWEEP_EVERY seconds (by index: cheap)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY
        self._db.execute("delete from seen_jti where expires_at < ?", (now,))
        self._db.execute("delete from tokens where expires_at < ?", (now - TOKEN_KEPT_AFTER_EXPIRY,))

    def add_token(self, token: AccessToken, now: float | None = None) -> None:
        with self._lock:
            if now is not None:
                self._sweep(now)
            self._db.execute(
                "insert into tokens (token, client_id, scope, expires_at, extra) values (?, ?, ?, ?, ?)",
                (token.token, token.client_id, token.scope, token.expires_at, json.dumps(token.extra)),
            )

    def get_token(self, token: str) -> AccessToken | None:
        with self._lock:
            row = self._db.execute(
                "select token, client_id, scope, expires_at, extra from tokens where token = ?", (token,)
            ).fetchone()
        if row is None:
            return None
        return AccessToken(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("select token from tokens").fetchall()]

    def revoke_tokens(self, predicate_key: str, value: str) -> None:
        """Expire every token whose `extra[predicate_key]` equals value."""
        with self._lock:
            rows = self._db.execute("select token, extra from tokens").fetchall()
            for token, extra in rows:
                if json.loads(extra).get(predicate_key) == value:
                    self._db.execute("update tokens set expires_at = 0 where token = ?", (token,))

    def remember_jti(self, issuer: str, jti: str, expires_at: float, now: float) -> bool:
        """Record an assertion id; False when it was already seen and is still live."""
        with self._lock:
            self._sweep(now)
            try:
                self._db.execute(
                    "insert into seen_jti (issuer, jti, expires_at) values (?, ?, ?)",
                    (issuer, jti, expires_at),
                )
            except sqlite3.IntegrityError:
                # Seen before: a replay while the first is live; an expired entry the sweep has not reached yet
                # is a jti that may be used again.
                row = self._db.execute(
                    "select expires_at from seen_jti where issuer = ? and jti = ?", (issuer, jti)
                ).fetchone()
                if row is None or row[0] >= now:
                    return False
                self._db.execute(
                    "update seen_jti set expires_at = ? where issuer = ? and jti = ?", (expires_at, issuer, jti)
                )
        return True


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
