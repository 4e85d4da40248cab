"""The reference server under concurrent load: replays, many registrations at once, one client registering many times.

Handlers of the reference server run on one event loop, but a request waits for its body (and, under the latency
setting, for its delay) before the handler's work: a check-then-act over the store that spans an await, or a
store that is not atomic, would show up here as two tokens for one assertion, a lost or duplicated registration,
or a registration that mixes two requests. Every burst goes over real loopback connections, all in flight at
once (one connection per request), to a `MockServer` on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.crypto.jose import client_assertion, jwks
from conformance.crypto.pki import CertifiedKey, issue
from conformance.flows import udap
from conformance.flows.oauth import assertion_form
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings
from conformance.mock.store import Client, Store
from conformance.profiles import registry as profiles
from conformance.profiles.smart_backend import embedded_keys
from tests.conftest import udap_test_members

REPLAYS = 500
FLEET = 200
SAME_CLIENT = 100
COMMUNITY = "urn:conformance:test-community"
"""The community of `UdapServerSettings` by default (tests/conftest.py's `prepare` keeps it)."""
FLEET_SAN = "https://conformance.example.org/fleet/{index}"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, reduced to what the assertions need."""

    status: int
    body: Any


TLS = ssl.create_default_context()
"""Never used (every URL is http on loopback), but made once: httpx would otherwise build one per client."""


async def _send(request: tuple[str, dict[str, Any]]) -> Answer:
    """POST on a client (so a connection) of its own, as a crowd of separate clients would."""
    url, kwargs = request
    async with httpx.AsyncClient(verify=TLS, timeout=60, trust_env=False) as client:
        response = await client.post(url, **kwargs)
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return Answer(response.status_code, body)


async def _burst(requests: Sequence[tuple[str, dict[str, Any]]]) -> list[Answer]:
    # One client per request rather than one pool of len(requests) connections: httpcore's pool reassigns
    # waiting requests to connections in O(connections) per event, so a 500-wide pool spends seconds on itself.
    return list(await asyncio.gather(*(_send(request) for request in requests)))


def burst(requests: Sequence[tuple[str, dict[str, Any]]]) -> list[Answer]:
    """Send every request at once (all in flight together) and return the answers in request order."""
    return asyncio.run(_burst(requests))


def _error(answer: Answer) -> str | None:
    return answer.body.get("error") if isinstance(answer.body, dict) else None


def _access_token(answer: Answer) -> str | None:
    token = answer.body.get("access_token") if isinstance(answer.body, dict) else None
    return token if isinstance(token, str) and token else None


# --- one assertion, replayed 500 times at once ------------------------------------------------------------------


@contextmanager
def _smart_backend_replay(keys_dir: Path) -> Iterator[tuple[MockServer, dict[str, str]]]:
    """A SMART Backend server with one private_key_jwt client, and one valid token request of that client."""
    key = embedded_keys(keys_dir)["client-rs384"]
    with MockServer(profiles.get("smart-backend").server_settings()) as server:
        server.ctx.store.put_client(Client("replay-client", jwks=jwks([key]), scopes=["system/Patient.rs"]))
        assertion = client_assertion(key, client_id="replay-client", audience=server.settings.token_url)
        yield server, dict(assertion_form(assertion, "system/Patient.rs"))


@contextmanager
def _udap_replay(keys_dir: Path) -> Iterator[tuple[MockServer, dict[str, str]]]:
    """A UDAP server the community client registered with, and one valid x5c token request of that client."""
    _, prepare, client = udap_test_members(keys_dir)
    with MockServer(profiles.get("udap").server_settings(), prepare=prepare) as server:
        [registered] = burst([_registration(server, client)])
        assert registered.status == 201, registered.body
        claims = udap.authentication_claims(
            registered.body["client_id"], server.settings.token_url, client.b2b.extension()
        )
        yield server, dict(udap.token_form(udap.jwt_with_x5c(client.certified, claims), client.scope))


REPLAY_RIGS: dict[str, Callable[[Path], AbstractContextManager[tuple[MockServer, dict[str, str]]]]] = {
    "smart-backend": _smart_backend_replay,
    "udap": _udap_replay,
}


@pytest.mark.parametrize("profile", sorted(REPLAY_RIGS))
def test_one_assertion_replayed_500_times_at_once_buys_exactly_one_token(profile: str, keys_dir: Path) -> None:
    """RFC 7523 §3 (jti) and SMART Backend Services: an assertion is good for one token. The jti is remembered
    atomically, so however the burst interleaves, one request wins and every other is a replay (invalid_client)."""
    with REPLAY_RIGS[profile](keys_dir) as (server, form):
        answers = burst([(server.settings.token_url, {"data": form})] * REPLAYS)
        issued = server.ctx.store.issued_tokens()
    statuses = Counter(a.status for a in answers)
    assert all(a.status < 500 for a in answers), statuses
    granted = [a for a in answers if a.status == 200]
    assert len(granted) == 1, statuses
    token = _access_token(granted[0])
    assert token is not None, granted[0].body
    refused = [a for a in answers if a.status != 200]
    assert all(a.status in (400, 401) and _error(a) == "invalid_client" for a in refused), statuses
    assert all("replay" in str(a.body.get("error_description")) for a in refused), refused[0].body
    assert issued == [token], "the store holds exactly the one token that was answered"


# --- UDAP dynamic registration: 200 distinct clients at once, and a restart -----------------------------------------


def _registration(server: MockServer, client: udap.UdapClient) -> tuple[str, dict[str, Any]]:
    """A valid UDAP registration request of `client` (a fresh software statement, so a fresh jti)."""
    register_url = server.settings.register_url
    statement = udap.jwt_with_x5c(client.certified, udap.software_statement_claims(client, register_url))
    return register_url, {"json": udap.registration_body(statement)}


def _token_request(server: MockServer, client: udap.UdapClient, client_id: str) -> tuple[str, dict[str, Any]]:
    token_url = server.settings.token_url
    claims = udap.authentication_claims(client_id, token_url, client.b2b.extension())
    return token_url, {"data": dict(udap.token_form(udap.jwt_with_x5c(client.certified, claims), client.scope))}


def _fleet(members: dict[str, CertifiedKey], template: udap.UdapClient, count: int) -> list[udap.UdapClient]:
    """`count` distinct community members: each its own certificate whose SAN URI is its identity.

    UDAP identifies a registration by the statement's iss, which must be a SAN of the certificate, together with
    the community: distinct SANs are distinct clients, the only way to have 200 legitimately. The certificates
    share one key pair (issuing is then a signature each, not a key generation each); the key is not the identity.
    """
    key = members["client"].private_key
    fleet = []
    for index in range(count):
        san = FLEET_SAN.format(index=index)
        certified = issue(members["intermediate"], common_name=f"fleet client {index}", san_uris=[san], key=key)
        fleet.append(dataclasses.replace(template, certified=certified, client_uri=san, client_name=f"fleet {index}"))
    return fleet


def _udap_settings(db_path: str = ":memory:") -> MockSettings:
    return profiles.get("udap").server_settings(db_path=db_path)


def _registrations(store: Store) -> dict[str, tuple[str, bool, str, str]]:
    """Every UDAP registration in the store: registration key (iss|community) -> client_id, active, name, scope."""
    kept: dict[str, tuple[str, bool, str, str]] = {}
    for client in store.clients():
        key = client.extra.get("registration_key")
        if client.auth_method == "udap" and isinstance(key, str):
            assert key not in kept, f"two client rows for the registration {key}"
            kept[key] = (client.client_id, client.active, str(client.extra.get("client_name")), " ".join(client.scopes))
    return kept


def test_200_concurrent_registrations_are_all_kept_and_survive_a_restart(keys_dir: Path, tmp_path: Path) -> None:
    """UDAP DCR §5.1: each new client gets its own client_id (201). With a database file (`--db`) the 200
    registrations outlive the process: a restarted server has every one and lets every client authenticate."""
    members, prepare, template = udap_test_members(keys_dir)
    fleet = _fleet(members, template, FLEET)
    db_path = str(tmp_path / "mock.sqlite")
    with MockServer(_udap_settings(db_path), prepare=prepare) as server:
        answers = burst([_registration(server, client) for client in fleet])
        stored = _registrations(server.ctx.store)
    server.ctx.store.close()

    statuses = Counter(a.status for a in answers)
    assert statuses == {201: FLEET}, statuses
    issued = {client.client_uri: answer.body["client_id"] for client, answer in zip(fleet, answers, strict=True)}
    assert len(set(issued.values())) == FLEET, "every new client has a client_id of its own"
    expected = {f"{san}|{COMMUNITY}": (client_id, True) for san, client_id in issued.items()}
    assert {key: row[:2] for key, row in stored.items()} == expected

    with MockServer(_udap_settings(db_path), prepare=prepare) as restarted:
        kept = _registrations(restarted.ctx.store)
        tokens = burst([_token_request(restarted, client, issued[client.client_uri]) for client in fleet])
        [again] = burst([_registration(restarted, fleet[0])])
    restarted.ctx.store.close()
    assert kept == stored, "the restarted server has every registration, unchanged"
    assert all(a.status == 200 and _access_token(a) for a in tokens), Counter(a.status for a in tokens)
    assert again.status == 200, again.body
    assert again.body["client_id"] == issued[fleet[0].client_uri], "re-registration keeps the client_id"


# --- one client, 100 registrations at once ----------------------------------------------------------------------


def test_100_concurrent_registrations_of_one_client_keep_one_registration(keys_dir: Path) -> None:
    """UDAP DCR §5.1: a registration with the iss (and community) of an existing one updates it and returns the
    same client_id. A burst of such requests must neither make two clients nor store a mix of two requests: the
    one row is one submission whole (its client_name and scope come from the same request), and every answer
    names that row's client_id. Exactly one answer is 201 (the registration that created it)."""
    _, prepare, client = udap_test_members(keys_dir)
    scopes = ("system/Patient.read", "system/Observation.read")
    submissions = [
        dataclasses.replace(client, client_name=f"same client {index}", scope=scopes[index % 2])
        for index in range(SAME_CLIENT)
    ]
    with MockServer(_udap_settings(), prepare=prepare) as server:
        answers = burst([_registration(server, submission) for submission in submissions])
        stored = _registrations(server.ctx.store)

    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 201} and statuses[201] == 1, statuses
    assert list(stored) == [f"{client.client_uri}|{COMMUNITY}"], "one client row, however many registered at once"
    client_id, active, name, scope = stored[f"{client.client_uri}|{COMMUNITY}"]
    assert active
    assert {a.body["client_id"] for a in answers} == {client_id}
    assert (name, scope) in {(s.client_name, s.scope) for s in submissions}, "the stored row is one whole submission"
    for submission, answer in zip(submissions, answers, strict=True):
        assert (answer.body["client_name"], answer.body["scope"]) == (submission.client_name, submission.scope)
