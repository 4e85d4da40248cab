"""Property-based fuzzing of the reference server: nothing a client sends makes it fail (5xx) or buy a token.

For every profile, the token endpoint, the registration endpoint (where there is one), the CCDE endpoints and the
FHIR reads get what a careless or hostile client might send: random and repeated form parameters, huge and
non-UTF-8 values, JSON that is not an object, is truncated or nests thousands deep, odd Content-Type and
Authorization headers, and JWTs that are random segments, look right but hold garbage, are unsigned (alg none) or
MAC'd with a public key, or are signed correctly by the registered key or certificate while a claim has the wrong
type, is missing or is out of range. A request that is wrong by construction must get a 4xx (and the registered
client must be left as it was); none may get a 5xx or an access token.

The apps run in-process (httpx's ASGI transport on one event loop, no sockets): a request costs well under a
millisecond of transport, so each property sees many examples within CI's budget, and an exception in a handler
reaches the test with the server's traceback. Hypothesis is derandomized and keeps no example database, so every
run (and CI) tries the same examples; `FUZZ_EXAMPLES` bounds them. What the fuzzing found is pinned at the end as
plain cases, which every run checks whatever examples it draws.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import string
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, assume, currently_in_test_context, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from conformance.crypto.jose import ASSERTION_TYPE, PrivateKey, assertion_claims, b64url, b64url_json, jwks
from conformance.crypto.pki import CertifiedKey, issue
from conformance.flows import udap
from conformance.flows.ccde import authorize_parameters, consent_resource
from conformance.flows.oauth import basic_authorization
from conformance.mock.app import create_app
from conformance.mock.assertions import LAST_NUMERIC_DATE, numeric_date
from conformance.mock.context import MockContext
from conformance.mock.data import CERNER_PATIENT_ID, DEFAULT_PATIENT_ID
from conformance.mock.settings import MockSettings
from conformance.mock.store import Client
from conformance.mock.systems.ccde import CcdeState
from conformance.mock.systems.ccde import _state as ccde_state
from conformance.mock.systems.cerner_system import TENANT_A
from conformance.mock.systems.cerner_system import token_url as cerner_token_url
from conformance.mock.systems.udap import UdapServerSettings
from conformance.profiles import registry as profiles
from conformance.profiles.smart_backend import embedded_keys
from tests.conftest import udap_test_members

FUZZ_EXAMPLES = int(os.environ.get("CONFORMANCE_FUZZ_EXAMPLES", "75"))
"""Examples per property: bounded for CI. A deep run by hand: CONFORMANCE_FUZZ_EXAMPLES=2000, and
CONFORMANCE_FUZZ_RANDOM=1 for other examples than CI's (hypothesis then prints how to reproduce a failure)."""
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("CONFORMANCE_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
"""Reproducible: the same examples on every run (derandomized, no example database), unless asked otherwise."""
FUZZ_DEEPER = settings(FUZZ, max_examples=FUZZ_EXAMPLES * 3)
"""For the properties over signed JWTs, where the bugs hide behind a valid signature: more cases to combine."""

FHIR_ORIGIN = "http://127.0.0.1:18080"
AUTH_ORIGIN = "http://127.0.0.1:18081"
"""Origins the in-process apps believe they serve (nothing listens there: the ASGI transport never connects)."""
CLIENT_ID = "fuzz-client"
SECRET = "fuzz-secret-5f8d2c"
PROFILE_NAMES = [p.name for p in profiles.PROFILES]
UDAP_PROFILES = ["udap", "cerner-carequality"]
"""Profiles with UDAP dynamic registration and x5c client assertions."""
ASSERTION_PROFILES = ["smart-backend", *UDAP_PROFILES]
"""Profiles whose token endpoint authenticates a client with a signed JWT."""
REGISTRATION_PROFILES = ["smart-backend", *UDAP_PROFILES]
CCDE = "ccde"


# --- strategies: the raw material ---------------------------------------------------------------------------------

JSON_SPECIALS: list[Any] = [float("nan"), float("inf"), float("-inf"), 10**400, -(10**400), 1e308, 0, -1, "", " "]
"""Values json.dumps writes and Python's json.loads reads back, that break careless arithmetic or tests."""
json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.sampled_from(JSON_SPECIALS)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
deep_json = st.builds(
    lambda opener, depth: opener * depth, st.sampled_from(["[", '{"a":', '[{"b":']), st.integers(1_000, 6_000)
)
"""JSON nested deeper than Python's recursion limit (the parser raises RecursionError, not ValueError)."""
huge_text = st.integers(10_000, 100_000).map(lambda n: "A" * n)


def dumps(value: Any) -> str:
    return json.dumps(value)


json_bodies = st.one_of(
    json_values.map(dumps).map(str.encode),
    deep_json.map(str.encode),
    json_values.map(dumps).map(lambda text: text[: len(text) // 2].encode()),
    st.binary(max_size=64),
    st.binary(max_size=32).map(lambda raw: b'{"a": "\xff\xfe' + raw + b'"}'),
    huge_text.map(lambda text: dumps({"a": text}).encode()),
)
"""Request bodies that claim to be JSON: any JSON value, too deep, truncated, bytes, non-UTF-8, huge."""

URLSAFE = string.ascii_letters + string.digits + "-_"
segments = st.one_of(
    st.text(URLSAFE, max_size=40),
    st.binary(max_size=40).map(b64url),
    json_values.map(b64url_json),
    deep_json.map(lambda text: b64url(text.encode())),
    st.text(max_size=12),
)
"""One dot-separated part of a compact JWS: base64url of anything (JSON or not, too deep, bytes) or not base64url."""
jose_headers = st.fixed_dictionaries(
    {"alg": st.sampled_from(["RS384", "ES384", "RS256", "none", "HS256", "PS256", "EdDSA"]) | json_values},
    optional={"kid": json_values, "typ": json_values, "x5c": json_values, "jku": json_values, "jwk": json_values},
)
garbage_jwts = st.one_of(
    st.lists(segments, max_size=5).map(".".join),
    st.builds(
        lambda header, claims, signature: f"{b64url_json(header)}.{claims}.{signature}",
        jose_headers,
        segments,
        segments,
    ),
    st.builds(lambda header, claims: f"{b64url_json(header)}.{b64url_json(claims)}.", jose_headers, json_values),
    huge_text.map(lambda text: f"{text}.{text}.{text}"),
)
"""Compact JWSs that are not one: wrong part counts, a plausible header over garbage, claims of any JSON type."""

FIELD_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
header_text = st.text(FIELD_CHARS, max_size=60).map(str.strip)
"""Header values uvicorn's HTTP parser lets through to the app (visible ASCII, latin-1 obs-text, inner spaces)."""
HEADER_NAME = st.text(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1, max_size=16)
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "expect"} | {
    "content-type",
    "authorization",
}
"""Framing headers the transport sets (a second one is not what a server sees), and the two drawn on their own."""
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/x-www-form-urlencoded;charset=latin-1",
    "application/json",
    "application/fhir+json",
    "application/json; charset=utf-8",
    "text/plain",
    "multipart/form-data; boundary=xyz",
    "application/jwt",
    ";",
    "",
]
content_types = st.none() | st.sampled_from(CONTENT_TYPES) | header_text
extra_headers = st.lists(
    st.tuples(HEADER_NAME.filter(lambda name: name.lower() not in RESERVED_HEADERS), header_text), max_size=4
) | st.integers(1_000, 8_000).map(lambda n: [("X-Huge", "x" * n)])
"""Headers nobody asked for, or one huge one (within the 16 KiB uvicorn accepts for a request head)."""


def _header_safe(text: str) -> str:
    """A header value uvicorn would pass on: ASCII, no control characters, at most 8 KiB."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:8_000]).strip()


GARBAGE_AUTHORIZATIONS = [
    "",
    "Bearer",
    "Bearer ",
    "Basic",
    "Basic !!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Basic " + base64.b64encode(f"{CLIENT_ID}:wrong".encode()).decode(),
    basic_authorization(CLIENT_ID, SECRET + "x"),
    basic_authorization(CLIENT_ID, SECRET[:-1]),
    "Negotiate abc",
    "bearer  x",
]
authorizations = st.one_of(
    st.none(),
    st.sampled_from(GARBAGE_AUTHORIZATIONS),
    header_text,
    st.builds(
        lambda scheme, value: f"{scheme} {value}", st.sampled_from(["Bearer", "Basic", "bearer", "DPoP"]), header_text
    ),
    st.builds(lambda value: f"Bearer {value}", garbage_jwts.map(_header_safe)),
)
"""Authorization headers that authenticate nobody: no real secret, token or JWT is among them."""


@dataclass(frozen=True)
class Headers:
    """The headers of one fuzzed request."""

    content_type: str | None
    authorization: str | None
    extra: list[tuple[str, str]]

    def raw(self) -> list[tuple[bytes, bytes]]:
        """As latin-1 bytes: what reaches the app."""
        pairs = [("content-type", self.content_type), ("authorization", self.authorization), *self.extra]
        return [(k.encode(), v.encode("latin-1")) for k, v in pairs if v is not None]


def headers(
    content_type: st.SearchStrategy[str | None] = content_types,
    authorization: st.SearchStrategy[str | None] = authorizations,
) -> st.SearchStrategy[Headers]:
    return st.builds(Headers, content_type, authorization, extra_headers)


TOKEN_PARAMETERS = [
    "grant_type",
    "scope",
    "client_assertion_type",
    "client_assertion",
    "client_id",
    "client_secret",
    "udap",
    "foo",
    "",
]
parameter_values = st.one_of(
    st.sampled_from(["client_credentials", "authorization_code", ASSERTION_TYPE, CLIENT_ID, "system/Patient.rs", "1"]),
    st.text(max_size=40),
    st.binary(max_size=40),
    garbage_jwts,
    huge_text,
)
forms = st.lists(
    st.tuples(st.sampled_from(TOKEN_PARAMETERS) | st.text(max_size=10) | st.binary(max_size=8), parameter_values),
    max_size=8,
)
"""Form fields as pairs: known and unknown names, repeated ones, values of any size and bytes (non-UTF-8 too).
In a query they are cut at 8 KB (uvicorn refuses a longer request line before any handler sees it)."""
form_bodies = st.one_of(
    forms.map(lambda pairs: urlencode(pairs).encode()),
    st.text(alphabet="=&%+;a1\x00é☃", max_size=40).map(str.encode),
    st.binary(max_size=128),
    json_bodies,
)


# --- JWTs made to be refused -------------------------------------------------------------------------------------


def raw_jws(header: dict[str, Any], claims: dict[str, Any], key: PrivateKey, alg: str) -> str:
    """A JWS over any header and claims (PyJWT's encode would refuse a non-string kid, say)."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = jwt.get_algorithm_by_name(alg).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


class Marker:
    """A value no strategy draws by chance (a drawn None or string must never stand for the real thing)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


DELETED: Any = Marker("DELETED")
"""A claim or header member to remove."""


@dataclass
class Signer:
    """Who signs one kind of JWT correctly (the registered client's key, or its certificate with x5c), and the
    claims that make it valid: every recipe breaks exactly what it says and keeps the rest right."""

    key: PrivateKey
    alg: str
    header: dict[str, Any]
    claims: Callable[[], dict[str, Any]]
    foreign: dict[str, tuple[PrivateKey, str, dict[str, Any]]] = field(default_factory=dict)
    """Other signers (attacker keys, untrusted or other certificates): key, alg and header."""
    public_bytes: bytes = b""
    """What an algorithm-confusion attacker MACs with: the public key's PEM, or the certificate's DER."""
    certified: CertifiedKey | None = None
    """The certificate behind an x5c signer."""

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        merged = {"alg": self.alg, **self.header, **(header or {})}
        if isinstance(merged.get("x5c"), X5cVariant):
            assert self.certified is not None
            merged["x5c"] = x5c_variant(merged["x5c"].name, self.certified)
            _breaks(merged["x5c"] != self.certified.x5c(), "x5c", merged["x5c"])
        return raw_jws({k: v for k, v in merged.items() if v is not DELETED}, claims, self.key, self.alg)


def _breaks(changed: bool, name: str, value: Any) -> None:
    """A drawn value that happens to be the valid one breaks nothing: hypothesis drops that example (a case
    written out by hand must not be one)."""
    if currently_in_test_context():
        assume(changed)
    else:
        assert changed, f"{name}: {value!r} is the valid value"


@dataclass(frozen=True)
class Garbage:
    token: str

    def build(self, signer: Signer) -> str:
        return self.token


@dataclass(frozen=True)
class Unsigned:
    """alg none over claims that are otherwise right."""

    header: dict[str, Any]

    def build(self, signer: Signer) -> str:
        header = {**signer.header, **self.header, "alg": "none"}
        return f"{b64url_json(header)}.{b64url_json(signer.claims())}."


@dataclass(frozen=True)
class Mac:
    """HS256/HS384 over right claims, keyed with random bytes or the client's public key (key confusion)."""

    alg: str
    secret: bytes | None

    def build(self, signer: Signer) -> str:
        import hashlib
        import hmac

        header = {**signer.header, "alg": self.alg}
        signing_input = f"{b64url_json(header)}.{b64url_json(signer.claims())}"
        digest = hashlib.sha256 if self.alg == "HS256" else hashlib.sha384
        mac = hmac.new(self.secret or signer.public_bytes, signing_input.encode(), digest).digest()
        return f"{signing_input}.{b64url(mac)}"


@dataclass(frozen=True)
class Mutated:
    """Signed by the right key, with claims of the wrong type, missing or out of range (each change alone is
    reason enough to refuse)."""

    changes: dict[str, Any]

    def build(self, signer: Signer) -> str:
        claims = signer.claims()
        for name, value in self.changes.items():
            _breaks(name not in claims or value is DELETED or claims[name] != value, name, value)
            if value is DELETED:
                claims.pop(name, None)
            else:
                claims[name] = value
        return signer.sign(claims)


@dataclass(frozen=True)
class Tampered:
    """Right claims, signed by the right key, with a header member that makes it unverifiable."""

    changes: dict[str, Any]

    def build(self, signer: Signer) -> str:
        valid = {"alg": signer.alg, **signer.header}
        for name, value in self.changes.items():
            _breaks(name not in valid or value is DELETED or valid[name] != value, name, value)
        return signer.sign(signer.claims(), dict(self.changes))


@dataclass(frozen=True)
class Foreign:
    """Right claims, signed by someone else (an attacker key; an untrusted, expired or other certificate)."""

    name: str

    def build(self, signer: Signer) -> str:
        key, alg, header = signer.foreign[self.name]
        return raw_jws({**header, "alg": alg}, signer.claims(), key, alg)


Recipe = Garbage | Unsigned | Mac | Mutated | Tampered | Foreign


def not_a_nonempty_string(values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[Any]:
    return values.filter(lambda v: not (isinstance(v, str) and v))


not_a_numeric_date = json_values.filter(lambda v: numeric_date(v) is None)
long_ago = st.integers(-LAST_NUMERIC_DATE, 10**8) | st.floats(-1e11, 1e8)
far_ahead = st.integers(4 * 10**9, LAST_NUMERIC_DATE)


def other_than(good: str) -> st.SearchStrategy[Any]:
    return json_values.filter(lambda v: v != good)


def not_an_audience(url: str) -> st.SearchStrategy[Any]:
    return json_values.filter(lambda v: v != url and not (isinstance(v, list) and url in v))


bad_b2b = st.one_of(
    json_values.filter(lambda v: v is not None and not isinstance(v, dict)),
    st.builds(lambda v: {"hl7-b2b": v}, json_values.filter(lambda v: v is not None and not isinstance(v, dict))),
    st.builds(lambda v: {"hl7-b2b": {"version": v, "organization_id": "o", "purpose_of_use": ["p"]}}, other_than("1")),
    st.builds(
        lambda v: {"hl7-b2b": {"version": "1", "organization_id": v, "purpose_of_use": ["p"]}}, not_a_nonempty_string()
    ),
    st.builds(
        lambda v: {"hl7-b2b": {"version": "1", "organization_id": "o", "purpose_of_use": v}},
        json_values.filter(lambda v: not (isinstance(v, list) and v and all(isinstance(p, str) for p in v))),
    ),
)
"""An `extensions` claim the hl7-b2b rules refuse whether or not the extension is required."""


@dataclass(frozen=True)
class JwtKind:
    """One kind of JWT a profile's server verifies, and for each claim the values that must make it refuse."""

    claims: dict[str, st.SearchStrategy[Any]]
    header: dict[str, st.SearchStrategy[Any]]
    foreign: tuple[str, ...]

    @cached_property
    def recipes(self) -> st.SearchStrategy[Recipe]:
        changes = st.dictionaries(st.sampled_from(sorted(self.claims)), st.just(None), min_size=1, max_size=2).flatmap(
            lambda chosen: st.fixed_dictionaries({name: self.claims[name] for name in chosen})
        )
        tampering = st.sampled_from(sorted(self.header)).flatmap(
            lambda name: self.header[name].map(lambda value: {name: value})
        )
        return st.one_of(
            garbage_jwts.map(Garbage),
            st.builds(
                Unsigned, st.dictionaries(st.sampled_from(["kid", "typ", "x5c", "crit"]), json_values, max_size=2)
            ),
            st.builds(Mac, st.sampled_from(["HS256", "HS384"]), st.none() | st.binary(min_size=1, max_size=32)),
            changes.map(Mutated),
            changes.map(Mutated),  # twice: a valid signature over bad claims reaches the most code
            tampering.map(Tampered),
            st.sampled_from(self.foreign).map(Foreign),
        )


def smart_assertion_kind(token_url: str, kids: list[str]) -> JwtKind:
    """RFC 7523 / SMART Backend Services assertion rules (conformance.mock.assertions.CLAIM_RULES)."""
    return JwtKind(
        claims={
            "iss": other_than(CLIENT_ID) | st.just(DELETED),
            "sub": other_than(CLIENT_ID) | st.just(DELETED),
            "aud": not_an_audience(token_url) | st.just(DELETED),
            "exp": not_a_numeric_date | long_ago | far_ahead | st.just(DELETED),
            "nbf": not_a_numeric_date | far_ahead,
            "iat": not_a_numeric_date | far_ahead,
            "jti": not_a_nonempty_string() | st.just(DELETED),
        },
        header={
            "kid": json_values.filter(lambda v: v not in kids) | st.just(DELETED),
            "jku": json_values.filter(lambda v: v is not None),
            "alg": st.sampled_from(["RS256", "RS512", "PS384", "ES384", "HS384", "none"]) | json_values,
        },
        foreign=("attacker", "attacker-with-the-clients-kid", "other"),
    )


UDAP_FOREIGN = ("other", "lifecycle", "untrusted", "expired", "self-signed-ec")


@dataclass(frozen=True)
class X5cVariant:
    """A way of breaking the signer's real x5c chain (resolved by Signer.sign, which knows the chain)."""

    name: str


x5c_variants = st.sampled_from(["leaf-only", "reversed", "intermediate-only", "base64url", "pem", "with-garbage"]).map(
    X5cVariant
)


def udap_assertion_kind(client_id: str, token_url: str, require_b2b: bool) -> JwtKind:
    """UDAP JWT client authentication (conformance.mock.systems.udap.authenticate_udap)."""
    claims: dict[str, st.SearchStrategy[Any]] = {
        "iss": other_than(client_id) | st.just(DELETED),
        "sub": other_than(client_id) | st.just(DELETED),
        "aud": not_an_audience(token_url) | st.just(DELETED),
        "exp": not_a_numeric_date | long_ago | far_ahead | st.just(DELETED),
        "nbf": not_a_numeric_date | far_ahead,
        "iat": not_a_numeric_date,
        "jti": not_a_nonempty_string() | st.just(DELETED),
        "extensions": bad_b2b | (st.sampled_from([DELETED, None]) if require_b2b else st.nothing()),
    }
    return JwtKind(claims=claims, header=UDAP_HEADER_TAMPERING, foreign=UDAP_FOREIGN)


def udap_statement_kind(client_uri: str, register_url: str, needs_contact: bool) -> JwtKind:
    """UDAP DCR software statement rules (conformance.mock.systems.udap: _validate_statement_claims and
    _validate_client_metadata). An existing registration is never cancelled: `grant_types: []` is not drawn."""
    supported = set(SUPPORTED_UDAP_SCOPES)
    claims: dict[str, st.SearchStrategy[Any]] = {
        "iss": other_than(client_uri) | st.just(DELETED),
        "sub": other_than(client_uri) | st.just(DELETED),
        "aud": not_an_audience(register_url) | st.just(DELETED),
        "exp": not_a_numeric_date | long_ago | far_ahead | st.just(DELETED),
        "iat": not_a_numeric_date | long_ago | far_ahead | st.just(DELETED),
        "nbf": not_a_numeric_date | far_ahead,
        "jti": not_a_nonempty_string() | st.just(DELETED),
        "grant_types": json_values.filter(lambda v: not isinstance(v, list))
        | st.lists(json_values, min_size=1, max_size=3).filter(lambda v: any(g != "client_credentials" for g in v))
        | st.just(DELETED),
        "token_endpoint_auth_method": other_than("private_key_jwt") | st.just(DELETED),
        "scope": json_values.filter(lambda v: not isinstance(v, str) or not supported & set(v.split()))
        | st.just(DELETED),
        "client_name": not_a_nonempty_string() | st.just(DELETED),
        "redirect_uris": json_values,
        "response_types": json_values,
    }
    if needs_contact:
        claims["contacts"] = json_values.filter(
            lambda v: not (isinstance(v, list) and any(isinstance(c, str) and c.startswith("mailto:") for c in v))
        ) | st.just(DELETED)
    return JwtKind(claims=claims, header=UDAP_HEADER_TAMPERING, foreign=UDAP_FOREIGN)


SUPPORTED_UDAP_SCOPES = ["system/Patient.read", "system/Observation.read", "system/Patient.rs", "system/Observation.rs"]
UDAP_HEADER_TAMPERING: dict[str, st.SearchStrategy[Any]] = {
    "x5c": json_values | st.lists(st.text(max_size=30), min_size=1, max_size=3) | x5c_variants | st.just(DELETED),
    "alg": st.sampled_from(["RS384", "RS512", "PS256", "ES256", "HS256", "none"]) | json_values,
}
"""x5c variants name a way of breaking the real chain (Signer.sign resolves them; see `x5c_variant`)."""


def x5c_variant(name: str, certified: CertifiedKey) -> list[str]:
    chain = certified.x5c()
    pem = certified.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return {
        "leaf-only": chain[:1],
        "reversed": chain[::-1],
        "intermediate-only": chain[1:],
        "base64url": [c.replace("+", "-").replace("/", "_").rstrip("=") for c in chain],
        "pem": [pem, *chain[1:]],
        "with-garbage": [*chain, "AAAA"],
    }[name]


# --- the in-process servers --------------------------------------------------------------------------------------


@dataclass
class CcdeFacts:
    """What a CCDE client obtained legitimately: the target's JWT, a consent and the authorization it gave."""

    jwt: str
    consent_id: str
    authorization_id: str


@dataclass(repr=False)
class Rig:
    """One profile's app in-process, a client it registered, a token it issued that client, and its signers."""

    profile: str
    settings: MockSettings
    app: Starlette
    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient
    token_url: str
    client_id: str = ""
    access_token: str = ""
    assertion: Signer | None = None
    assertion_kind: JwtKind | None = None
    statement: Signer | None = None
    statement_kind: JwtKind | None = None
    udap_client: udap.UdapClient | None = None
    ccde: CcdeFacts | None = None

    def __repr__(self) -> str:
        return f"Rig({self.profile!r})"  # what a failing example names; the rest would bury it

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis prints dataclasses field by field unless told otherwise

    @property
    def ctx(self) -> MockContext:
        ctx: MockContext = self.app.state.ctx
        return ctx

    @property
    def ccde_state(self) -> CcdeState:
        return ccde_state(self.ctx)

    def send(
        self, method: str, url: str, *, content: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
    ) -> httpx.Response:
        request = self.http.request(method, url, content=content, headers=headers or [])
        return self.loop.run_until_complete(request)

    def post_form(
        self, url: str, form: list[tuple[str, str]], headers: list[tuple[bytes, bytes]] | None = None
    ) -> httpx.Response:
        form_type = [(b"content-type", b"application/x-www-form-urlencoded")]
        return self.send("POST", url, content=urlencode(form).encode(), headers=form_type + (headers or []))

    def post_json(self, url: str, body: Any) -> httpx.Response:
        return self.send("POST", url, content=dumps(body).encode(), headers=[(b"content-type", b"application/json")])

    def assertion_form(self, assertion: str) -> list[tuple[str, str]]:
        if self.udap_client is not None:
            return udap.token_form(assertion, self.udap_client.scope)
        return [
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]


def _rig(profile: str, loop: asyncio.AbstractEventLoop, prepare: Callable[[MockSettings], None] | None = None) -> Rig:
    """The profile's app in-process; `prepare` sees the settings first (as MockServer's does)."""
    settings = profiles.get(profile).server_settings()
    settings.public_url = FHIR_ORIGIN
    if settings.separate_auth_server:
        settings.auth_url = AUTH_ORIGIN
    if prepare is not None:
        prepare(settings)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)

    async def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, base_url=FHIR_ORIGIN, timeout=30)

    return Rig(profile, settings, app, loop, loop.run_until_complete(client()), settings.token_url)


def _granted(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert isinstance(token, str) and token
    return token


def _smart_rig(loop: asyncio.AbstractEventLoop, keys_dir: Path) -> Rig:
    keys = embedded_keys(keys_dir)
    key, es_key = keys["client-rs384"], keys["client-es384"]
    rig = _rig("smart-backend", loop)
    rig.client_id, token_url = CLIENT_ID, rig.token_url
    rig.ctx.store.put_client(Client(CLIENT_ID, jwks=jwks([key, es_key]), scopes=["system/Patient.rs"]))
    attacker, other = keys["attacker-rs384"], keys["other-rs384"]
    rig.assertion = Signer(
        key.private_key,
        "RS384",
        {"typ": "JWT", "kid": key.kid},
        lambda: assertion_claims(CLIENT_ID, token_url),
        foreign={
            "attacker": (attacker.private_key, "RS384", {"kid": attacker.kid}),
            "attacker-with-the-clients-kid": (attacker.private_key, "RS384", {"kid": key.kid}),
            "other": (other.private_key, "RS384", {"kid": other.kid}),
        },
        public_bytes=key.public_pem(),
    )
    rig.assertion_kind = smart_assertion_kind(token_url, [key.kid, es_key.kid])
    rig.access_token = _granted(
        rig.post_form(rig.token_url, rig.assertion_form(rig.assertion.sign(rig.assertion.claims())))
    )
    return rig


def _udap_rig(profile: str, loop: asyncio.AbstractEventLoop, keys_dir: Path) -> Rig:
    """A UDAP server trusting the test community; the community client registered (and got a token) first."""
    members, _, client = udap_test_members(keys_dir)
    require_b2b = profile == "udap"  # as the profiles' embedded runs set it

    def prepare(settings: MockSettings) -> None:
        signer = issue(members["intermediate"], common_name="mock", san_uris=[settings.fhir_base])
        settings.udap = UdapServerSettings(
            signer=signer, anchors=[members["root"].certificate], require_b2b=require_b2b
        )

    rig = _rig(profile, loop, prepare)
    rig.udap_client = client
    certified = client.certified
    self_signed = issue(
        None, common_name="self-signed", san_uris=[client.client_uri], key=ec.generate_private_key(ec.SECP256R1())
    )
    foreign: dict[str, tuple[PrivateKey, str, dict[str, Any]]] = {
        name: (members[name].private_key, "RS256", {"typ": "JWT", "x5c": members[name].x5c()})
        for name in ("other", "lifecycle", "untrusted", "expired")
    }
    foreign["self-signed-ec"] = (self_signed.private_key, "ES256", {"typ": "JWT", "x5c": self_signed.x5c()})

    def signer(claims: Callable[[], dict[str, Any]]) -> Signer:
        der = certified.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "x5c": certified.x5c()}
        return Signer(certified.private_key, "RS256", header, claims, foreign, public_bytes=der, certified=certified)

    register_url = rig.settings.register_url
    rig.statement = signer(lambda: udap.software_statement_claims(client, register_url))
    needs_contact = rig.settings.layout.registration_needs_contact
    rig.statement_kind = udap_statement_kind(client.client_uri, register_url, needs_contact)
    registered = rig.post_json(register_url, udap.registration_body(rig.statement.sign(rig.statement.claims())))
    assert registered.status_code == 201, registered.text
    rig.client_id = client_id = registered.json()["client_id"]
    b2b, token_url = client.b2b.extension(), rig.token_url
    rig.assertion = signer(lambda: udap.authentication_claims(client_id, token_url, b2b))
    rig.assertion_kind = udap_assertion_kind(client_id, token_url, require_b2b)
    rig.access_token = _granted(
        rig.post_form(token_url, rig.assertion_form(rig.assertion.sign(rig.assertion.claims())))
    )
    return rig


def _secret_rig(loop: asyncio.AbstractEventLoop) -> Rig:
    """Cerner system accounts: a client with a secret, at the tenant-scoped token URL of the authorization port."""
    profile = profiles.get("client-secret")
    rig = _rig(profile.name, loop)
    assert profile.secret_client is not None
    rig.ctx.store.put_client(
        profile.secret_client(CLIENT_ID, SECRET, ["system/Patient.read", "system/Observation.read"])
    )
    rig.client_id, rig.token_url = CLIENT_ID, cerner_token_url(rig.ctx, TENANT_A)
    basic = [(b"authorization", basic_authorization(CLIENT_ID, SECRET).encode())]
    form = [("grant_type", "client_credentials"), ("scope", "system/Patient.read")]
    rig.access_token = _granted(rig.post_form(rig.token_url, form, basic))
    return rig


def _ccde_rig(loop: asyncio.AbstractEventLoop) -> Rig:
    """CCDE: the target's JWT, a consent, the authorization it gave, and the token for that authorization."""
    rig = _rig(CCDE, loop)
    base = rig.settings.fhir_base
    target_jwt = rig.send("GET", f"{base}/$jwt?source=https%3A%2F%2Fsource.example")
    assert target_jwt.status_code == 200, target_jwt.text
    consent = rig.post_json(f"{base}/Consent", consent_resource(DEFAULT_PATIENT_ID))
    assert consent.status_code == 201, consent.text
    consent_id = consent.json()["id"]
    authorized = rig.post_json(f"{base}/Consent/{consent_id}/$authorize", authorize_parameters(target_jwt.text))
    assert authorized.status_code == 200, authorized.text
    [authorization_id] = [p["valueString"] for p in authorized.json()["parameter"] if p["name"] == "id"]
    rig.ccde = CcdeFacts(target_jwt.text, consent_id, authorization_id)
    bearer = [(b"authorization", f"Bearer {target_jwt.text}".encode())]
    form = [("grant_type", "client_credentials"), ("scope", authorization_id)]
    rig.access_token = _granted(rig.post_form(rig.token_url, form, bearer))
    return rig


class Rigs:
    """One in-process server per profile, made when a test first asks for it, all on one event loop."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self.loop = asyncio.new_event_loop()
        self._made: dict[str, Rig] = {}

    def __getitem__(self, profile: str) -> Rig:
        if profile not in self._made:
            if profile == "smart-backend":
                self._made[profile] = _smart_rig(self.loop, self.keys_dir)
            elif profile in UDAP_PROFILES:
                self._made[profile] = _udap_rig(profile, self.loop, self.keys_dir)
            elif profile == CCDE:
                self._made[profile] = _ccde_rig(self.loop)
            else:
                self._made[profile] = _secret_rig(self.loop)
        return self._made[profile]

    def close(self) -> None:
        for rig in self._made.values():
            self.loop.run_until_complete(rig.http.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def rigs(keys_dir: Path) -> Iterator[Rigs]:
    made = Rigs(keys_dir)
    yield made
    made.close()


@pytest.fixture
def rig(rigs: Rigs, profile: str) -> Rig:
    """The profile's rig, made (once per module) before the examples run, so a rig that cannot be made is one
    setup error, not a failure of every example."""
    return rigs[profile]


@pytest.fixture
def ccde_rig(rigs: Rigs) -> Rig:
    return rigs[CCDE]


# --- what every answer must (not) be --------------------------------------------------------------------------------


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def assert_sound(answer: httpx.Response) -> None:
    """Never a 5xx; never an access token (in any answer, whatever its status)."""
    assert answer.status_code < 500, f"{answer.status_code}: {answer.text[:500]}"
    body = _json(answer)
    assert not (isinstance(body, dict) and "access_token" in body), f"a token for garbage: {answer.text[:500]}"


def assert_refused(
    answer: httpx.Response, statuses: Collection[int] = range(400, 500), errors: Collection[str] = ()
) -> None:
    """A 4xx (of `statuses`), with an OAuth/registration `error` among `errors` when they are given."""
    assert_sound(answer)
    assert answer.status_code in statuses, f"{answer.status_code}: {answer.text[:500]}"
    if errors:
        body = _json(answer)
        assert isinstance(body, dict) and body.get("error") in errors, answer.text[:500]


TOKEN_ERRORS = ("invalid_client", "invalid_grant")
REGISTRATION_ERRORS = ("invalid_software_statement", "invalid_client_metadata", "unapproved_software_statement")


# --- token endpoints ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@FUZZ
@given(method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]), body=form_bodies, sent=headers())
def test_token_endpoint_refuses_malformed_requests(rig: Rig, method: str, body: bytes, sent: Headers) -> None:
    """Random, repeated and huge parameters, bytes that are no form, JSON, non-UTF-8, any Content-Type and an
    Authorization that authenticates nobody: a 4xx, never a 5xx or a token (RFC 6749 §5.2)."""
    assert_refused(rig.send(method, rig.token_url, content=body, headers=sent.raw()))


@pytest.mark.parametrize("profile", ASSERTION_PROFILES)
@FUZZ_DEEPER
@given(data=st.data())
def test_token_endpoint_refuses_every_broken_assertion(rig: Rig, data: st.DataObject) -> None:
    """RFC 7523 §3, SMART Backend Services, UDAP JWT client authentication: an assertion that is garbage, unsigned,
    MAC'd, signed by someone else, carries a broken header, or is signed right but has a claim of the wrong type,
    missing or out of range is invalid_client (or invalid_grant for hl7-b2b), never a 5xx or a token."""
    assert rig.assertion_kind is not None
    check_assertion_refused(rig, data.draw(rig.assertion_kind.recipes, label="assertion"))


def check_assertion_refused(rig: Rig, recipe: Recipe) -> None:
    assert rig.assertion is not None
    answer = rig.post_form(rig.token_url, rig.assertion_form(recipe.build(rig.assertion)))
    assert_refused(answer, {400, 401}, TOKEN_ERRORS)


# --- registration endpoints ---------------------------------------------------------------------------------------

registration_bodies = st.one_of(
    json_bodies,
    st.fixed_dictionaries(
        {},
        optional={
            "software_statement": garbage_jwts | json_values,
            "udap": st.just("1") | json_values,
            "certifications": st.just([]) | json_values,
            "grant_types": st.just(["client_credentials"]) | json_values,
            "token_endpoint_auth_method": st.just("private_key_jwt") | json_values,
            "jwks": st.just({"keys": [{"kty": "RSA"}]}) | json_values,
            "jwks_uri": st.just("https://client.example/jwks") | json_values,
            "scope": st.just("system/Patient.rs") | json_values,
            "client_name": json_values,
        },
    ).map(lambda body: dumps(body).encode()),
)
"""Registration requests: JSON that is no object (or no JSON), and objects with RFC 7591 / UDAP members of any
type; a `software_statement` here is never a validly signed one."""
registration_content_types = st.sampled_from(["application/json", "application/fhir+json"]) | content_types


@dataclass(frozen=True)
class Registered:
    """The rig client's registration as stored: it must survive every refused request unchanged."""

    client_id: str
    active: bool
    scopes: tuple[str, ...]
    name: object

    @classmethod
    def of(cls, rig: Rig) -> Registered:
        client = rig.ctx.store.get_client(rig.client_id)
        assert client is not None, f"the rig's client {rig.client_id} is gone"
        return cls(client.client_id, client.active, tuple(client.scopes), client.extra.get("client_name"))


@pytest.mark.parametrize("profile", REGISTRATION_PROFILES)
@FUZZ
@given(body=registration_bodies, sent=headers(content_type=registration_content_types))
def test_registration_endpoint_survives_malformed_bodies(rig: Rig, body: bytes, sent: Headers) -> None:
    """RFC 7591 §3.2.2 / UDAP DCR: a body that is no JSON object, or whose members have any type, is a 4xx;
    UDAP (which needs a signed software statement) refuses every one and leaves the registered client alone.
    SMART registration may accept metadata it can use (its members are optional): then the client is stored."""
    check_registration_body(rig, body, sent.raw())


def check_registration_body(rig: Rig, body: bytes, raw: list[tuple[bytes, bytes]]) -> None:
    before = Registered.of(rig)
    answer = rig.send("POST", rig.settings.register_url, content=body, headers=raw)
    assert_sound(answer)
    if rig.udap_client is not None or answer.status_code >= 300:
        assert_refused(answer, {400}, REGISTRATION_ERRORS if rig.udap_client is not None else ())
    else:
        assert answer.status_code == 201, answer.text[:500]
        assert rig.ctx.store.get_client(answer.json()["client_id"]) is not None, "a 201 names a stored client"
    assert Registered.of(rig) == before


@dataclass(frozen=True)
class BodyChange:
    """A correctly signed software statement in a registration body with one member of the wrong type."""

    member: str
    value: Any


@pytest.mark.parametrize("profile", UDAP_PROFILES)
@FUZZ_DEEPER
@given(data=st.data())
def test_udap_registration_refuses_every_broken_software_statement(rig: Rig, data: st.DataObject) -> None:
    """UDAP DCR §5.2: a statement that is garbage, unsigned, MAC'd, signed by an untrusted, expired or other
    certificate, with a broken x5c, or signed right with a claim of the wrong type, missing or out of range (and a
    body whose `udap` or `certifications` is wrong) is a 400 with a registration error; the existing registration
    of the same client is neither changed nor cancelled."""
    assert rig.statement is not None and rig.statement_kind is not None
    accepted = rig.settings.layout.registration_udap_values
    change = data.draw(
        rig.statement_kind.recipes.map(lambda recipe: (recipe, None))
        | st.builds(
            BodyChange,
            st.just("udap"),
            json_values.filter(lambda v: v not in accepted or isinstance(v, bool)),  # true is not the number 1
        ).map(lambda body: (None, body))
        | st.builds(BodyChange, st.just("certifications"), json_values.filter(lambda v: not isinstance(v, list))).map(
            lambda body: (None, body)
        ),
        label="change",
    )
    check_statement_refused(rig, *change)


def check_statement_refused(rig: Rig, recipe: Recipe | None, body_change: BodyChange | None) -> None:
    assert rig.statement is not None
    statement = recipe.build(rig.statement) if recipe is not None else rig.statement.sign(rig.statement.claims())
    body = udap.registration_body(statement)
    if body_change is not None:
        body[body_change.member] = body_change.value
    before = Registered.of(rig)
    assert_refused(rig.post_json(rig.settings.register_url, body), {400}, REGISTRATION_ERRORS)
    assert Registered.of(rig) == before


# --- FHIR reads and searches --------------------------------------------------------------------------------------

PATIENTS = {"cerner-carequality": CERNER_PATIENT_ID, "client-secret": "1"}
"""The patient each profile's data serves under its own id (DEFAULT_PATIENT_ID elsewhere)."""
fhir_paths = st.one_of(
    st.sampled_from(["Patient/{patient}", "Observation/{patient}", "Patient", "Observation", "Practitioner/1"]),
    st.sampled_from(["metadata", "Patient/{patient}/$everything", ".well-known/smart-configuration"]),
    st.lists(st.text(max_size=12).map(lambda text: quote(text, safe="")), min_size=1, max_size=3).map("/".join),
)
fhir_queries = st.lists(
    st.tuples(
        st.sampled_from(["_format", "_id", "patient", "subject", "_count"]) | st.text(max_size=8), parameter_values
    ),
    max_size=4,
).map(lambda pairs: urlencode(pairs)[:8_000])
ACCEPTS = [
    "application/fhir+json",
    "application/json",
    "application/fhir+xml",
    "*/*",
    "application/json+fhir",
    "application/fhir+json; fhirVersion=3.0",
    "application/fhir+json;q=abc, */*;q=0",
    "text/html;q=0",
]
TOKEN_USES = ["real", "appended", "truncated", "as-basic"]
"""How a FHIR request carries the token the rig was issued: as it is, or broken (then it is no token)."""


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@FUZZ
@given(
    path=fhir_paths,
    query=fhir_queries,
    accept=st.none() | st.sampled_from(ACCEPTS) | header_text,
    token_use=st.none() | st.sampled_from(TOKEN_USES),
    sent=headers(content_type=st.none()),
)
def test_fhir_reads_survive_odd_requests(
    rig: Rig, path: str, query: str, accept: str | None, token_use: str | None, sent: Headers
) -> None:
    """Any path below the FHIR base, any query, Accept and Authorization: never a 5xx; and without the token the
    server issued, no Patient or Observation data (RFC 6750 §3: 401, or 400/403/404/406 for what comes first)."""
    check_fhir(rig, path, query, accept, token_use, sent.raw())


def check_fhir(
    rig: Rig, path: str, query: str, accept: str | None, token_use: str | None, raw: list[tuple[bytes, bytes]]
) -> httpx.Response:
    path = path.format(patient=PATIENTS.get(rig.profile, DEFAULT_PATIENT_ID))
    raw = [pair for pair in raw if pair[0] != b"authorization"] if token_use else list(raw)
    if token_use is not None:
        value = {
            "real": f"Bearer {rig.access_token}",
            "appended": f"Bearer {rig.access_token}x",
            "truncated": f"Bearer {rig.access_token[:-1]}",
            "as-basic": f"Basic {rig.access_token}",
        }[token_use]
        raw.append((b"authorization", value.encode()))
    if accept is not None:
        raw.append((b"accept", accept.encode("latin-1")))
    answer = rig.send("GET", f"{rig.settings.fhir_base}/{path}?{query}", headers=raw)
    assert_sound(answer)
    if token_use != "real" and path.split("/")[0] in ("Patient", "Observation"):
        assert answer.status_code >= 400, f"data without a token: {answer.text[:300]}"
    return answer


# --- CCDE: $jwt, $connect, Consent, $authorize and its token endpoint ------------------------------------------------


@FUZZ
@given(query=forms.map(urlencode).map(lambda query: query[:8_000]), sent=headers())
def test_ccde_jwt_endpoint_survives_odd_queries(ccde_rig: Rig, query: str, sent: Headers) -> None:
    """$jwt?source=…: whatever the query (repeated, empty, huge, non-UTF-8 escapes), a JWT or a 4xx, never a 5xx."""
    rig = ccde_rig
    answer = rig.send("GET", f"{rig.settings.fhir_base}/$jwt?source=x&{query}", headers=sent.raw())
    assert_sound(answer)


@FUZZ
@given(body=form_bodies, sent=headers())
def test_ccde_connect_survives_malformed_bodies(ccde_rig: Rig, body: bytes, sent: Headers) -> None:
    """$connect with any body: accepted or a 4xx, never a 5xx."""
    rig = ccde_rig
    assert_sound(rig.send("POST", f"{rig.settings.fhir_base}/$connect", content=body, headers=sent.raw()))


CONSENT_RULES: dict[str, st.SearchStrategy[Any]] = {
    "resourceType": other_than("Consent"),
    "status": other_than("active"),
    "patient": json_values.filter(
        lambda v: not (isinstance(v, dict) and str(v.get("reference", "")).startswith("Patient/"))
    ),
    "policyRule": json_values,
    "provision": json_values.filter(lambda v: not (isinstance(v, dict) and v.get("type") == "permit")),
}
"""Consent members the CCDE server checks, and values it must refuse (`policyRule` loses simple-oauth)."""
broken_consents = st.sampled_from(sorted(CONSENT_RULES)).flatmap(
    lambda name: CONSENT_RULES[name].map(lambda value: {**consent_resource(DEFAULT_PATIENT_ID), name: value})
)


@FUZZ
@given(body=json_bodies | broken_consents.map(lambda consent: dumps(consent).encode()), sent=headers())
def test_ccde_consent_endpoint_refuses_malformed_consents(ccde_rig: Rig, body: bytes, sent: Headers) -> None:
    """POST Consent: no JSON, JSON that is no Consent, or a Consent whose status, patient, policy or provision
    has the wrong type or value is a 4xx OperationOutcome, never a 5xx."""
    rig = ccde_rig
    assert_refused(rig.send("POST", f"{rig.settings.fhir_base}/Consent", content=body, headers=sent.raw()))


UCUM_UNITS = {"s", "min", "h", "d", "wk", "mo", "a"}
bad_durations = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.builds(
        lambda value: {"value": value, "unit": "s", "code": "s"},
        json_values.filter(lambda v: not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v <= 10**9)
        | st.sampled_from([float("nan"), float("inf"), 10**400, 1e308]),
    ),
    st.builds(
        lambda unit: {"value": 3, "unit": unit, "code": unit}, json_values.filter(lambda v: str(v) not in UCUM_UNITS)
    ),
)
"""valueDurations to refuse: no Quantity, a value that is no positive finite number a clock can reach, no UCUM unit."""
JWT_USES = ["appended", "truncated", "swapped-case"]


REAL_JWT: Any = Marker("REAL_JWT")
GOOD_DURATION: Any = Marker("GOOD_DURATION")


@dataclass(frozen=True)
class AuthorizeBody:
    """$authorize Parameters with a broken duration (and the real JWT), or a good duration and a JWT that is not
    the one the server issued (a JWT_USES change of it, or any value)."""

    duration: Any
    jwt: Any

    def build(self, facts: CcdeFacts) -> dict[str, Any]:
        jwt_value = self.jwt
        if self.jwt is REAL_JWT or (isinstance(self.jwt, str) and self.jwt in JWT_USES):
            jwt_value = _broken_jwt(facts.jwt, None if self.jwt is REAL_JWT else self.jwt)
        body = authorize_parameters(jwt_value)
        if self.duration is not GOOD_DURATION:
            body["parameter"][0]["valueDuration"] = self.duration
        return body


def _broken_jwt(real: str, use: str | None) -> str:
    """The server's JWT as it is (None) or changed so that it is not the server's any more."""
    if use == "appended":
        return real + "x"
    if use == "truncated":
        return real[:-2]
    if use == "swapped-case":
        return real.swapcase()
    return real


authorize_bodies = st.one_of(
    st.builds(AuthorizeBody, bad_durations, st.just(REAL_JWT)),
    st.builds(AuthorizeBody, st.just(GOOD_DURATION), st.sampled_from(JWT_USES) | garbage_jwts | json_values),
)


@FUZZ_DEEPER
@given(
    body=json_bodies | authorize_bodies,
    consent=st.none() | st.text(max_size=20).map(lambda text: quote(text, safe="")),
    sent=headers(),
)
def test_ccde_authorize_refuses_malformed_parameters(
    ccde_rig: Rig, body: bytes | AuthorizeBody, consent: str | None, sent: Headers
) -> None:
    """Consent/{id}/$authorize: an unknown consent is a 404; Parameters that are no Parameters, a duration that is
    no positive finite UCUM Quantity, or a JWT the server did not issue are a 400 — never a 5xx, never an
    authorization for ever."""
    check_authorize_refused(ccde_rig, body, consent, sent.raw())


def check_authorize_refused(
    rig: Rig, body: bytes | AuthorizeBody, consent: str | None, raw: list[tuple[bytes, bytes]]
) -> None:
    assert rig.ccde is not None
    content = dumps(body.build(rig.ccde)).encode() if isinstance(body, AuthorizeBody) else body
    url = f"{rig.settings.fhir_base}/Consent/{consent or rig.ccde.consent_id}/$authorize"
    assert_refused(rig.send("POST", url, content=content, headers=raw))
    assert len(rig.ccde_state.authorizations) == 1, "only the rig's own authorization was ever granted"


AUTHORIZATION_ID = "<the authorization id>"
"""Stands for the real authorization id in drawn forms (it is made at run time, after the strategies)."""


@FUZZ
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["grant_type", "scope", "client_id", ""]) | st.text(max_size=6),
            st.just(AUTHORIZATION_ID) | parameter_values,
        ),
        max_size=5,
    ),
    bearer=st.none() | st.sampled_from(["real", *JWT_USES]),
    sent=headers(content_type=st.just("application/x-www-form-urlencoded") | content_types),
)
def test_ccde_token_endpoint_refuses_what_is_not_the_authorized_jwt(
    ccde_rig: Rig, pairs: list[tuple[str | bytes, str | bytes]], bearer: str | None, sent: Headers
) -> None:
    """The CCDE token endpoint issues a token only for the JWT $authorize was given with its authorization id:
    the real JWT with another scope, a changed JWT with the real authorization id, or neither, is a 4xx."""
    rig = ccde_rig
    assert rig.ccde is not None
    facts = rig.ccde
    uses_id = any(value == AUTHORIZATION_ID for _, value in pairs)
    assume(not (bearer == "real" and uses_id))  # that pair, with client_credentials, is the legitimate request
    form = [(name, facts.authorization_id if value == AUTHORIZATION_ID else value) for name, value in pairs]
    raw = sent.raw()
    if bearer is not None:
        jwt_value = _broken_jwt(facts.jwt, None if bearer == "real" else bearer)
        raw = [pair for pair in raw if pair[0] != b"authorization"] + [
            (b"authorization", f"Bearer {jwt_value}".encode())
        ]
    assert_refused(rig.send("POST", rig.token_url, content=urlencode(form).encode(), headers=raw))


# --- the controls: what the fuzz breaks is accepted when it is not broken --------------------------------------------


@pytest.mark.parametrize("profile", ASSERTION_PROFILES)
def test_the_fuzzed_signers_are_accepted_when_nothing_is_broken(rig: Rig) -> None:
    """Each refusal above is the recipe's doing: the same signer, claims and form, unbroken, buy a token (and a
    UDAP re-registration keeps the client_id), and that token reads the patient."""
    assert rig.assertion is not None
    answer = rig.post_form(rig.token_url, rig.assertion_form(rig.assertion.sign(rig.assertion.claims())))
    token = _granted(answer)
    if rig.statement is not None:
        again = rig.post_json(
            rig.settings.register_url, udap.registration_body(rig.statement.sign(rig.statement.claims()))
        )
        assert again.status_code == 200 and again.json()["client_id"] == rig.client_id, again.text
    patient = PATIENTS.get(rig.profile, DEFAULT_PATIENT_ID)
    read = rig.send(
        "GET",
        f"{rig.settings.fhir_base}/Patient/{patient}",
        headers=[(b"authorization", f"Bearer {token}".encode()), (b"accept", b"application/fhir+json")],
    )
    assert read.status_code == 200, read.text


# --- what the fuzz found: the cases pinned, so every run checks them whatever examples it draws ------------------------

DEEP_HEADER = Garbage(f"{b64url(b'[' * 5_000)}.{b64url_json({})}.x")
"""A JWS whose header nests deeper than json can parse: RecursionError (not ValueError) was a 500."""


@pytest.mark.parametrize(
    ("profile", "recipe"),
    [
        ("smart-backend", Mutated({"aud": {"a": 1}})),  # aud went into a set(): TypeError (unhashable), a 500
        ("udap", Mutated({"aud": [{}]})),
        ("cerner-carequality", Mutated({"aud": {}})),
        ("smart-backend", DEEP_HEADER),
        ("udap", DEEP_HEADER),
    ],
    ids=["smart-aud-object", "udap-aud-holds-object", "carequality-aud-object", "smart-deep-json", "udap-deep-json"],
)
def test_found_assertions_stay_refused(rig: Rig, recipe: Recipe) -> None:
    """Assertions signed by the registered client whose aud is a JSON object, and a header nested too deep."""
    check_assertion_refused(rig, recipe)


@pytest.mark.parametrize(
    ("profile", "recipe", "body_change"),
    [
        ("udap", Mutated({"grant_types": None}), None),  # `or []` cancelled the client's registration (200)
        ("udap", Mutated({"grant_types": 0}), None),
        ("cerner-carequality", Mutated({"grant_types": {}}), None),
        ("cerner-carequality", None, BodyChange("udap", True)),  # True == 1 registered the client
        ("udap", DEEP_HEADER, None),
    ],
    ids=["grant-types-null", "grant-types-zero", "grant-types-object", "udap-true", "deep-json"],
)
def test_found_software_statements_stay_refused(
    rig: Rig, recipe: Recipe | None, body_change: BodyChange | None
) -> None:
    """A statement whose grant_types is null, 0 or {} is invalid metadata, not a cancellation (UDAP cancels with
    an empty array); `udap: true` is no version; a header nested too deep is no JWS."""
    check_statement_refused(rig, recipe, body_change)


@pytest.mark.parametrize("profile", REGISTRATION_PROFILES)
def test_found_registration_bodies_stay_refused(rig: Rig) -> None:
    """A registration body nested deeper than json can parse (RecursionError was a 500)."""
    check_registration_body(rig, b"[" * 5_000, [(b"content-type", b"application/json")])


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "body",
    [
        AuthorizeBody({"value": NAN, "unit": "s", "code": "s"}, REAL_JWT),  # granted an authorization for ever
        AuthorizeBody({"value": INF, "unit": "s", "code": "s"}, REAL_JWT),
        AuthorizeBody({"value": 10**400, "unit": "s", "code": "s"}, REAL_JWT),  # float() overflowed: a 500
        AuthorizeBody({"value": 1e308, "unit": "a", "code": "a"}, REAL_JWT),
        AuthorizeBody({"value": True, "unit": "s", "code": "s"}, REAL_JWT),
        b'{"resourceType": "Parameters", "parameter": 5}',  # iterated an int: a 500
        b"[" * 5_000,
    ],
    ids=["nan", "infinity", "10e400", "1e308-years", "true", "parameter-number", "deep-json"],
)
def test_found_authorize_bodies_stay_refused(ccde_rig: Rig, body: bytes | AuthorizeBody) -> None:
    """$authorize with a duration that is no positive finite number, or Parameters whose parameter is a number."""
    check_authorize_refused(ccde_rig, body, None, [(b"content-type", b"application/fhir+json")])


@pytest.mark.parametrize(
    "change",
    [{"patient": True}, {"patient": "Patient/example"}, {"provision": [1]}],
    ids=["patient-true", "patient-string", "provision-array"],
)
def test_found_consents_stay_refused(ccde_rig: Rig, change: dict[str, Any]) -> None:
    """A Consent whose patient or provision is no object (`.get` on them was a 500)."""
    body = dumps({**consent_resource(DEFAULT_PATIENT_ID), **change}).encode()
    rig = ccde_rig
    assert_refused(rig.send("POST", f"{rig.settings.fhir_base}/Consent", content=body), {400})


@pytest.mark.parametrize("profile", ["smart-backend", "client-secret"])
@pytest.mark.parametrize(
    "resource_type", ["%C4%80", "%22%5C%22", "a%0D%0AX-Injected:%201"], ids=["non-latin-1", "quotes", "crlf"]
)
def test_found_challenges_stay_well_formed(rig: Rig, resource_type: str) -> None:
    """A token that does not cover the path's resource type gets 403 with a WWW-Authenticate naming the type: a
    character outside latin-1 there failed to encode (a 500); quotes and CR/LF must not reach the header either."""
    answer = check_fhir(rig, f"{resource_type}/1", "", "application/fhir+json", "real", [])
    assert answer.status_code in (403, 404), answer.text  # 404: a router that matches no type with CR/LF in it
    assert answer.status_code == 403 or "%0D" in resource_type, answer.text
    challenge = answer.headers.get("www-authenticate", "")
    assert challenge.isascii() and challenge.isprintable(), challenge
    assert challenge.count('"') % 2 == 0 and "\\" not in challenge, challenge
