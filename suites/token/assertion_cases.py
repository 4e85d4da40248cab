"""Bad token requests: each case breaks exactly one thing in an otherwise valid request.

A case says what to send (built from the valid private_key_jwt request), which
requirement it probes, which error codes the specs allow, and whether the
server may accept it (latitude). The checks in test_assertion_errors.py read
the recorded answers; no case is sent twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.checking import expect
from conformance.checking.requirements import Level
from conformance.core.recording import Exchange
from conformance.crypto.jose import (
    ClientKey,
    assertion_claims,
    b64url,
    b64url_json,
    client_assertion,
    decode_unverified,
    hmac_jwt,
    jwks,
    sign,
    unsigned_jwt,
)
from conformance.flows import oauth
from conformance.flows.target import Target

CLIENT_ERRORS = frozenset({"invalid_client", "invalid_request"})
MALFORMED_ERRORS = CLIENT_ERRORS
"""An assertion that is no JWT: the client is not authenticated, and the request is malformed [RFC 6749 §5.2]."""


@dataclass
class Kit:
    """What a case needs to build its request."""

    target: Target
    token_url: str
    client_id: str
    key: ClientKey

    @property
    def scope(self) -> str:
        return self.target.config.scope

    def assertion(self, claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None) -> str:
        return client_assertion(
            self.key, client_id=self.client_id, audience=self.token_url, claims=claims, header=header
        )

    def form(self, assertion: str, *, drop: tuple[str, ...] = (), **override: str) -> list[tuple[str, str]]:
        fields = dict(oauth.assertion_form(assertion, self.scope))
        for name in drop:
            fields.pop(name, None)
        fields.update(override)
        return list(fields.items())

    def post(self, form: list[tuple[str, str]], purpose: str, headers: dict[str, str] | None = None) -> Exchange:
        return oauth.post_token(self.target.http, self.token_url, form, purpose=purpose, headers=headers)

    def send(
        self, purpose: str, *, claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None
    ) -> Exchange:
        return self.post(self.form(self.assertion(claims, header)), purpose)


@dataclass
class Outcome:
    """The answer to a case: the exchange the checks judge, plus any exchange that set it up."""

    exchange: Exchange
    setup: list[Exchange] = field(default_factory=list)

    def __evidence__(self) -> list[Exchange]:
        return [*self.setup, self.exchange]


@dataclass(frozen=True)
class Case:
    id: str
    requirement: str
    what: str
    build: Callable[[Kit], Outcome]
    codes: frozenset[str] = frozenset({"invalid_client"})
    tolerated: frozenset[str] = frozenset()
    statuses: frozenset[int] = frozenset({400, 401})
    level: Level | None = None
    may_accept: bool = False
    oauth_error: bool = True
    """False where an HTTP-level refusal (405, 415) needs no OAuth error body."""


def _simple(purpose: str, **kwargs: Any) -> Callable[[Kit], Outcome]:
    return lambda kit: Outcome(kit.send(purpose, **kwargs))


def _form_case(purpose: str, *, drop: tuple[str, ...] = (), **override: str) -> Callable[[Kit], Outcome]:
    return lambda kit: Outcome(kit.post(kit.form(kit.assertion(), drop=drop, **override), purpose))


def _now() -> int:
    return int(time.time())


def _alg_none(kit: Kit) -> Outcome:
    header = {"typ": "JWT", "kid": kit.key.kid}
    token = unsigned_jwt(header, assertion_claims(kit.client_id, kit.token_url))
    return Outcome(kit.post(kit.form(token), "assertion with alg none"))


def _hs256_confusion(kit: Kit) -> Outcome:
    header = {"typ": "JWT", "kid": kit.key.kid}
    token = hmac_jwt(header, assertion_claims(kit.client_id, kit.token_url), kit.key.public_pem())
    return Outcome(kit.post(kit.form(token), "assertion MAC'd HS256 with the client's public key"))


def _unregistered_key(kit: Kit) -> Outcome:
    attacker = kit.target.attacker_key
    expect.precondition(attacker, "no unregistered key is available")
    assert attacker is not None
    forged = ClientKey(kit.key.kid, attacker.alg, attacker.private_key)
    token = client_assertion(forged, client_id=kit.client_id, audience=kit.token_url)
    return Outcome(kit.post(kit.form(token), "assertion signed by an unregistered key under the client's kid"))


def _other_client_kid(kit: Kit) -> Outcome:
    other = kit.target.other_client_key
    expect.precondition(other, "no second client key is configured (auth.other_client_key)")
    assert other is not None
    token = client_assertion(other, client_id=kit.client_id, audience=kit.token_url)
    return Outcome(kit.post(kit.form(token), "assertion signed by another client's key (its kid)"))


def _kty_mismatch(kit: Kit) -> Outcome:
    rsa_key = kit.target.config.key_for("RS384")
    ec_key = kit.target.config.key_for("ES384")
    expect.precondition(rsa_key and ec_key, "an RS384 and an ES384 key must both be configured")
    assert rsa_key is not None and ec_key is not None
    token = sign(assertion_claims(kit.client_id, kit.token_url), rsa_key, header={"kid": ec_key.kid}, alg="RS384")
    return Outcome(kit.post(kit.form(token), "RS384 assertion whose kid names the client's EC key"))


def _foreign_jku(kit: Kit) -> Outcome:
    attacker = kit.target.attacker_key
    expect.precondition(attacker, "no unregistered key is available")
    assert attacker is not None
    host = kit.target.attacker_host
    url = host.publish("attacker", jwks([attacker])) if host else "https://attacker.invalid/jwks.json"
    token = client_assertion(attacker, client_id=kit.client_id, audience=kit.token_url, header={"jku": url})
    return Outcome(kit.post(kit.form(token), "assertion whose jku points at a JWKS the client never registered"))


def _replayed(kit: Kit) -> Outcome:
    token = kit.assertion()
    first = kit.post(kit.form(token), "first use of an assertion")
    expect.answered(first)
    expect.precondition(
        first.status == 200, f"the first use of the assertion was refused ({expect.describe(first, 120)})"
    )
    return Outcome(kit.post(kit.form(token), "the same assertion again (replay)"), [first])


def _reused_jti(kit: Kit) -> Outcome:
    jti = uuid.uuid4().hex
    first = kit.send("assertion with a fresh jti", claims={"jti": jti})
    expect.answered(first)
    expect.precondition(first.status == 200, f"the first assertion was refused ({expect.describe(first, 120)})")
    second = kit.send("new assertion reusing that jti", claims={"jti": jti, "exp": _now() + 290, "iat": _now() - 1})
    return Outcome(second, [first])


def _malformed(token: str, purpose: str) -> Callable[[Kit], Outcome]:
    return lambda kit: Outcome(kit.post(kit.form(token), purpose))


def _header_not_json(kit: Kit) -> Outcome:
    valid = kit.assertion()
    _, payload, signature = valid.split(".")
    token = f"{b64url(b'this is not json')}.{payload}.{signature}"
    return Outcome(kit.post(kit.form(token), "assertion whose header is not JSON"))


def _truncated(kit: Kit) -> Outcome:
    return Outcome(kit.post(kit.form(kit.assertion()[:-12]), "assertion with a truncated signature"))


def _tampered(kit: Kit) -> Outcome:
    valid = kit.assertion()
    _header, claims = decode_unverified(valid)
    claims["jti"] = uuid.uuid4().hex
    head, _, signature = valid.split(".")
    token = f"{head}.{b64url_json(claims)}.{signature}"
    return Outcome(kit.post(kit.form(token), "assertion with changed claims and the original signature"))


def _json_body(kit: Kit) -> Outcome:
    body = dict(kit.form(kit.assertion()))
    exchange = kit.target.http.request(
        "POST",
        kit.token_url,
        purpose="token request sent as JSON",
        json_body=body,
        headers={"Accept": "application/json"},
    )
    return Outcome(exchange)


def _get_request(kit: Kit) -> Outcome:
    exchange = kit.target.http.request(
        "GET",
        kit.token_url,
        purpose="token request as GET with query parameters",
        params=kit.form(kit.assertion()),
        follow_redirects=False,
    )
    return Outcome(exchange)


def _basic_and_assertion(kit: Kit) -> Outcome:
    basic = "Basic " + b64url(f"{kit.client_id}:not-a-secret".encode()).replace("-", "+").replace("_", "/")
    return Outcome(
        kit.post(kit.form(kit.assertion()), "Basic header and client assertion together", {"Authorization": basic})
    )


def _repeated_parameter(kit: Kit) -> Outcome:
    form = [*kit.form(kit.assertion()), ("scope", kit.scope)]
    return Outcome(kit.post(form, "token request with the scope parameter twice"))


def _other_client_id_param(kit: Kit) -> Outcome:
    other = kit.target.config.other_client_id or f"someone-else-{uuid.uuid4().hex[:8]}"
    return Outcome(
        kit.post([*kit.form(kit.assertion()), ("client_id", other)], "assertion plus a client_id naming another client")
    )


def _iss_sub_other_client(kit: Kit) -> Outcome:
    other = kit.target.config.other_client_id
    expect.precondition(other, "no second client id is configured (auth.other_client_id)")
    return Outcome(
        kit.send(
            "assertion claiming to be another client, signed with this client's key",
            claims={"iss": other, "sub": other},
        )
    )


CASES: list[Case] = [
    Case(
        "wrong-assertion-type",
        "SBS-AERR-01",
        "client_assertion_type is not the jwt-bearer URN",
        _form_case("wrong client_assertion_type", client_assertion_type="urn:example:not-an-assertion-type"),
        CLIENT_ERRORS,
    ),
    Case(
        "missing-assertion-type",
        "SBS-AERR-02",
        "client_assertion_type is left out",
        _form_case("no client_assertion_type", drop=("client_assertion_type",)),
        CLIENT_ERRORS,
    ),
    Case(
        "missing-assertion",
        "SBS-AERR-03",
        "client_assertion is left out (client_id sent instead)",
        lambda kit: Outcome(
            kit.post([*kit.form("x", drop=("client_assertion",)), ("client_id", kit.client_id)], "no client_assertion")
        ),
        CLIENT_ERRORS,
    ),
    Case(
        "missing-grant-type",
        "SBS-AERR-05",
        "grant_type is left out",
        _form_case("no grant_type", drop=("grant_type",)),
        frozenset({"invalid_request"}),
        frozenset({"unsupported_grant_type"}),
    ),
    Case(
        "grant-type-password",
        "SBS-AERR-04",
        "grant_type=password with a username and password",
        lambda kit: Outcome(
            kit.post(
                kit.form(kit.assertion(), grant_type="password", username="u", password="p"), "grant_type password"
            )
        ),
        frozenset({"unsupported_grant_type", "unauthorized_client"}),
        frozenset({"invalid_request"}),
    ),
    Case(
        "grant-type-authorization-code",
        "SBS-AERR-04",
        "grant_type=authorization_code without a code",
        _form_case("grant_type authorization_code without code", grant_type="authorization_code"),
        frozenset({"invalid_request", "invalid_grant", "unsupported_grant_type", "unauthorized_client"}),
    ),
    Case(
        "unknown-grant-type",
        "SBS-AERR-04",
        "grant_type is not a grant type",
        _form_case("unknown grant_type", grant_type="not_a_grant_type"),
        frozenset({"unsupported_grant_type"}),
    ),
    Case("alg-none", "SBS-AERR-09", "alg none with an empty signature", _alg_none),
    Case(
        "hs256-public-key",
        "SBS-AERR-10",
        "HS256 keyed with the client's public key (algorithm confusion)",
        _hs256_confusion,
    ),
    Case(
        "unregistered-key",
        "SBS-AERR-08",
        "signed by a key that is not registered, under the registered kid",
        _unregistered_key,
    ),
    Case(
        "unknown-kid",
        "SBS-AERR-12",
        "kid matches no registered key",
        _simple("assertion with an unknown kid", header={"kid": "conformance-unknown-kid"}),
    ),
    Case("no-kid", "SBS-AERR-11", "the header has no kid", _simple("assertion without kid", header={"kid": None})),
    Case(
        "kid-of-other-client",
        "SBS-AERR-12",
        "signed by another client's key, named by that key's kid",
        _other_client_kid,
    ),
    Case("kty-mismatch", "SBS-AERR-13", "alg RS384 while the kid names an EC key", _kty_mismatch),
    Case("jku-elsewhere", "SBS-AERR-14", "jku names a JWKS URL the client never registered", _foreign_jku),
    Case(
        "expired",
        "SBS-AERR-23",
        "exp ten minutes in the past (beyond any usual clock-skew leeway)",
        lambda kit: Outcome(kit.send("expired assertion", claims={"exp": _now() - 600, "iat": _now() - 900})),
    ),
    Case(
        "exp-too-far-ahead",
        "SBS-AERR-25",
        "exp an hour ahead",
        lambda kit: Outcome(kit.send("assertion expiring in an hour", claims={"exp": _now() + 3600})),
    ),
    Case(
        "iat-in-future",
        "SBS-AERR-26I",
        "iat four minutes in the future",
        lambda kit: Outcome(
            kit.send("assertion issued in the future", claims={"iat": _now() + 240, "exp": _now() + 295})
        ),
    ),
    Case(
        "nbf-in-future",
        "SBS-AERR-26",
        "nbf ten minutes in the future (beyond any usual clock-skew leeway)",
        lambda kit: Outcome(kit.send("assertion not valid before ten minutes from now", claims={"nbf": _now() + 600})),
    ),
    Case(
        "aud-other-host",
        "SBS-AERR-19",
        "aud is another server's token URL",
        _simple("assertion for another audience", claims={"aud": "https://authorization.example.org/token"}),
    ),
    Case(
        "aud-fhir-base",
        "SBS-AERR-22",
        "aud is the FHIR base URL, not the token URL",
        lambda kit: Outcome(kit.send("assertion with the FHIR base URL as aud", claims={"aud": kit.target.base_url})),
        may_accept=True,
    ),
    Case("missing-aud", "SBS-AERR-20", "aud is left out", _simple("assertion without aud", claims={"aud": None})),
    # aud may be an array of audiences [RFC 7519 §4.1.3]: one holding the token URL may be accepted or refused
    # (SMART shows the token URL as a string); one that does not hold it must be refused.
    Case(
        "aud-array-with-token-url",
        "SBS-AERR-19A",
        "aud is an array that holds the token URL",
        lambda kit: Outcome(
            kit.send(
                "assertion whose aud is an array holding the token URL",
                claims={"aud": [kit.token_url, "https://authorization.example.org/token"]},
            )
        ),
        may_accept=True,
    ),
    Case(
        "aud-array-without-token-url",
        "SBS-AERR-19",
        "aud is an array that does not hold the token URL",
        lambda kit: Outcome(
            kit.send(
                "assertion whose aud is an array without the token URL",
                claims={"aud": ["https://authorization.example.org/token", "https://other.example.org/fhir"]},
            )
        ),
    ),
    Case(
        "iss-not-sub",
        "SBS-AERR-15",
        "iss differs from sub and the client_id",
        _simple("assertion with a foreign iss", claims={"iss": "https://wrong-issuer.example.org"}),
    ),
    Case(
        "sub-not-iss",
        "SBS-AERR-16",
        "sub differs from iss and the client_id",
        _simple("assertion with a foreign sub", claims={"sub": "wrong-sub"}),
    ),
    Case(
        "iss-sub-other-client",
        "SBS-AERR-15",
        "iss = sub = another registered client, signed with this client's key",
        _iss_sub_other_client,
    ),
    Case(
        "unknown-client",
        "SBS-AERR-15",
        "iss = sub = a client id nobody registered",
        lambda kit: Outcome(
            kit.send(
                "assertion from an unknown client",
                claims={"iss": "conformance-unknown-client", "sub": "conformance-unknown-client"},
            )
        ),
    ),
    Case("missing-iss", "SBS-AERR-18", "iss is left out", _simple("assertion without iss", claims={"iss": None})),
    Case("missing-sub", "SBS-AERR-17", "sub is left out", _simple("assertion without sub", claims={"sub": None})),
    Case("missing-exp", "SBS-AERR-24", "exp is left out", _simple("assertion without exp", claims={"exp": None})),
    Case("missing-jti", "SBS-AERR-27", "jti is left out", _simple("assertion without jti", claims={"jti": None})),
    Case("replayed-assertion", "SBS-AERR-28", "the same assertion sent twice", _replayed),
    Case("reused-jti", "SBS-AERR-28", "a new assertion reusing a jti already seen", _reused_jti),
    Case(
        "client-id-param-mismatch",
        "SBS-AERR-31",
        "a client_id parameter names another client",
        _other_client_id_param,
        CLIENT_ERRORS,
    ),
    # Not a JWT at all: invalid_client (the client did not authenticate) or invalid_request (RFC 6749 §5.2:
    # the request is "otherwise malformed") both fit.
    Case(
        "malformed-two-parts",
        "SBS-AERR-06",
        "the assertion has two parts",
        _malformed("eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJ4In0", "assertion with two parts"),
        MALFORMED_ERRORS,
    ),
    Case(
        "malformed-bad-base64",
        "SBS-AERR-06",
        "the assertion is not base64url",
        _malformed("!!!not.base64url.at-all***", "assertion that is not base64url"),
        MALFORMED_ERRORS,
    ),
    Case(
        "malformed-header-not-json",
        "SBS-AERR-06",
        "the JOSE header is not JSON",
        _header_not_json,
        MALFORMED_ERRORS,
    ),
    Case("signature-truncated", "SBS-AERR-07", "the signature is cut short", _truncated),
    Case("tampered-claims", "SBS-AERR-07", "claims changed after signing", _tampered),
    Case(
        "json-body",
        "SBS-AERR-33",
        "the request is JSON, not form-encoded",
        _json_body,
        frozenset({"invalid_request"}),
        statuses=frozenset(range(400, 500)),
        oauth_error=False,
    ),
    Case(
        "get-request",
        "SBS-AERR-34",
        "GET with the parameters in the query",
        _get_request,
        frozenset({"invalid_request"}),
        statuses=frozenset(range(400, 500)),
        oauth_error=False,
    ),
    Case(
        "basic-and-assertion",
        "SBS-AERR-30",
        "a Basic header next to the client assertion",
        _basic_and_assertion,
        frozenset({"invalid_request"}),
        frozenset({"invalid_client"}),
    ),
    # RFC 6749 §3.2 forbids repeating a parameter; when the repeated one is scope, invalid_scope fits as well.
    Case(
        "repeated-parameter",
        "SBS-AERR-32",
        "the scope parameter appears twice",
        _repeated_parameter,
        frozenset({"invalid_request", "invalid_scope"}),
    ),
]
