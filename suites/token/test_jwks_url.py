"""A client registered by JWKS URL: the server fetches the set, honours its cache headers, follows rotation.

The suite serves the client's JWKS itself (the embedded run always; a real
target when [jwks_host] is configured), so it can rotate keys mid-run. The
whole scenario is one fixture; each check reads one step of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conformance.checking import expect
from conformance.core.recording import Exchange
from conformance.crypto.jose import ClientKey, jwks
from conformance.flows import oauth
from conformance.flows.target import JwksUrlClient, Target


@dataclass
class Rotation:
    client: JwksUrlClient
    first: Exchange
    with_jku: Exchange
    fetches_before_rotation: int
    old_key_after_rotation: Exchange
    new_key_after_rotation: Exchange
    duplicate_kid: Exchange
    jwks_down: Exchange


def _token(
    target: Target, token_url: str, client: JwksUrlClient, key: ClientKey, purpose: str, **header: str
) -> Exchange:
    return oauth.request_token(
        target.http,
        token_url,
        key,
        client_id=client.client_id,
        scope=target.config.scope,
        header=dict(header) or None,
        purpose=purpose,
    )


@pytest.fixture(scope="module")
def rotation(target: Target, token_url: str) -> Rotation:
    client = target.jwks_client
    expect.applicable(client, "no client registered by JWKS URL is configured ([jwks_host] in the target config)")
    assert client is not None
    old, new = client.keys[0], client.spare_key
    client.publish([old])
    first = _token(target, token_url, client, old, "JWKS-URL client: token with its published key")
    with_jku = _token(
        target, token_url, client, old, "JWKS-URL client: jku equal to the registered URL", jku=client.url
    )
    fetches = client.host.fetch_count(client.document)
    client.publish([new])
    old_after = _token(target, token_url, client, old, "JWKS-URL client: the removed key after rotation")
    new_after = _token(target, token_url, client, new, "JWKS-URL client: the added key after rotation")
    impostor = target.attacker_key
    assert impostor is not None
    twin = {**impostor.public_jwk(), "kid": new.kid}
    client.host.publish(client.document, {"keys": [*jwks([new])["keys"], twin]})
    duplicate = _token(target, token_url, client, new, "JWKS-URL client: two keys share the signing kid")
    client.host.break_document(client.document)
    down = _token(target, token_url, client, new, "JWKS-URL client: the JWKS URL answers 500")
    client.publish([old])
    return Rotation(client, first, with_jku, fetches, old_after, new_after, duplicate, down)


def _refused_as_invalid_client(exchange: Exchange, title: str) -> None:
    expect.answered(exchange)
    body = exchange.json_object() or {}
    if (exchange.status is not None and exchange.status < 300) or "access_token" in body:
        expect.fail(title, expected="invalid_client, no token", actual=expect.describe(exchange), exchange=exchange)
    expect.status(exchange, {400, 401}, title)
    if body.get("error") != "invalid_client":
        expect.fail(title, expected="error invalid_client", actual=expect.describe(exchange), exchange=exchange)


@pytest.mark.requirement("SBS-JWKS-06")
def test_client_registered_by_jwks_url_gets_a_token(rotation: Rotation) -> None:
    expect.status(rotation.first, {200}, "a client registered by JWKS URL must get a token")


@pytest.mark.requirement("SBS-TOKEN-12")
def test_jku_equal_to_registered_url_is_accepted(rotation: Rotation) -> None:
    expect.status(rotation.with_jku, {200}, "an assertion whose jku is the registered JWKS URL must be accepted")


@pytest.mark.requirement("SBS-JWKS-01")
def test_server_fetches_the_registered_jwks(rotation: Rotation) -> None:
    expect.answered(rotation.first)
    expect.precondition(rotation.first.status == 200, "the JWKS-URL client got no token")
    if rotation.fetches_before_rotation == 0:
        expect.fail(
            "the server issued a token without fetching the client's JWKS URL",
            expected=f"a GET of {rotation.client.url}",
            actual="no request reached the suite's JWKS host",
            exchange=rotation.first,
        )


@pytest.mark.requirement("SBS-JWKS-02")
def test_removed_key_stops_working(rotation: Rotation) -> None:
    _refused_as_invalid_client(
        rotation.old_key_after_rotation,
        "a key removed from a JWKS served with Cache-Control: no-store must stop working at once",
    )


@pytest.mark.requirement("SBS-JWKS-02N")
def test_added_key_starts_working(rotation: Rotation) -> None:
    expect.status(rotation.new_key_after_rotation, {200}, "a key added to the JWKS must be accepted")


@pytest.mark.requirement("SBS-JWKS-03")
def test_ambiguous_kid_is_refused(rotation: Rotation) -> None:
    _refused_as_invalid_client(rotation.duplicate_kid, "two JWKS keys with the signing kid make key resolution fail")


@pytest.mark.requirement("SBS-JWKS-04")
def test_unavailable_jwks_gives_invalid_client(rotation: Rotation) -> None:
    _refused_as_invalid_client(rotation.jwks_down, "a JWKS URL that fails must give invalid_client, not a 5xx")
