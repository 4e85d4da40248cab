"""Cerner system accounts: client_secret_basic on a tenant-scoped authorization server.

Judged by RFC 6749 and the catalogue's levels: Cerner's own error shape (an
error_uri with a reason code, a correlation id) is de-facto, so a miss warns;
the RFC's rules fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from conformance.checking import expect
from conformance.core.config import ProtectedRead
from conformance.core.outcomes import SpecWarning, note
from conformance.core.recording import Exchange
from conformance.flows import oauth
from conformance.flows.oauth import TokenGrant
from conformance.flows.scopes import beyond, split_scopes
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead
from suites.conftest import ReadWith

TENANT_IN_TOKEN_URL = re.compile(r"/tenants/([^/]+)/")


@pytest.fixture(scope="session")
def client_secret(target: Target) -> str:
    expect.precondition(target.config.client_secret, "no client secret is configured (auth.client_secret_env)")
    assert target.config.client_secret is not None
    return target.config.client_secret


@pytest.fixture(scope="module")
def basic_grant(target: Target, token_url: str, client_id: str, client_secret: str) -> TokenGrant:
    exchange = oauth.request_token_basic(
        target.http, token_url, client_id, client_secret, scope=target.config.scope, purpose="token with HTTP Basic"
    )
    return TokenGrant.of(exchange)


@pytest.fixture(scope="module")
def basic_token(basic_grant: TokenGrant) -> str:
    expect.answered(basic_grant.exchange)
    expect.precondition(
        basic_grant.access_token, f"no token with HTTP Basic ({expect.describe(basic_grant.exchange, 120)})"
    )
    assert basic_grant.access_token is not None
    return basic_grant.access_token


# --- discovery -----------------------------------------------------------------------------------------


@pytest.mark.requirement("SBS-BASIC-01D")
def test_discovery_advertises_basic_on_this_tenant(
    smart_config: dict[str, Any], smart_config_exchange: Exchange, target: Target
) -> None:
    expect.array_contains(
        smart_config,
        "token_endpoint_auth_methods_supported",
        "client_secret_basic",
        smart_config_exchange,
        "token_endpoint_auth_methods_supported must offer client_secret_basic",
    )
    token = str(smart_config.get("token_endpoint", ""))
    match = TENANT_IN_TOKEN_URL.search(urlsplit(token).path)
    if match and match.group(1) not in target.base_url:
        expect.fail(
            "the advertised token URL names another tenant than the FHIR base URL",
            expected=f"a token URL for the tenant in {target.base_url}",
            actual=token,
            exchange=smart_config_exchange,
        )
    note("token URL tenant", match.group(1) if match else "none in the path")


# --- success -------------------------------------------------------------------------------------------


@pytest.mark.requirement("SBS-BASIC-01")
def test_basic_authentication_gets_a_token(basic_grant: TokenGrant) -> None:
    expect.status(basic_grant.exchange, {200}, "client_secret_basic must get a token")
    expect.media_type(basic_grant.exchange, {"application/json"}, "the token response must be application/json")
    body = expect.json_object(basic_grant.exchange, "the token response must be JSON")
    problems = []
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        problems.append("no access_token")
    if str(body.get("token_type", "")).lower() != "bearer":
        problems.append(f"token_type {body.get('token_type')!r}")
    note("token_type", body.get("token_type"))
    expires = body.get("expires_in")
    note("expires_in", expires)
    if isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= 0:
        problems.append(f"expires_in {expires!r}")
    if problems:
        expect.fail(
            "the token response is incomplete",
            expected="access_token, token_type Bearer, positive expires_in",
            actual="; ".join(problems),
            exchange=basic_grant.exchange,
        )
    note("expires_in", expires)


@pytest.mark.requirement("SBS-TOKEN-03")
def test_token_response_is_not_cached(basic_grant: TokenGrant) -> None:
    expect.precondition(basic_grant.exchange.status == 200, "no token")
    expect.header_has_token(
        basic_grant.exchange, "Cache-Control", "no-store", "token responses must carry Cache-Control: no-store"
    )


@pytest.mark.requirement("SBS-TOKEN-03P")
def test_token_response_has_pragma(basic_grant: TokenGrant) -> None:
    expect.precondition(basic_grant.exchange.status == 200, "no token")
    expect.header_has_token(basic_grant.exchange, "Pragma", "no-cache", "token responses should carry Pragma: no-cache")


@pytest.mark.requirement("SBS-SCOPE-02")
def test_granted_scope_is_stated_and_within_request(basic_grant: TokenGrant, target: Target) -> None:
    expect.precondition(basic_grant.exchange.status == 200, "no token")
    granted = split_scopes(basic_grant.scope)
    if not granted:
        expect.fail(
            "the token response does not state the granted scope",
            expected="a scope member",
            actual=repr(basic_grant.scope),
            exchange=basic_grant.exchange,
        )
    outside = beyond(granted, target.config.scopes)
    if outside:
        expect.fail(
            "scopes were granted that were not requested",
            expected=f"within {target.config.scope}",
            actual=" ".join(outside),
            exchange=basic_grant.exchange,
            requirement="SBS-SCOPE-02W",
        )


@pytest.fixture(scope="module")
def two_reads(read_protected: ReadWith, basic_token: str, protected_read: ProtectedRead) -> list[Exchange]:
    return [
        read_protected(f"Bearer {basic_token}", f"{protected_read.path} with the token ({n})")
        for n in ("first use", "reuse")
    ]


@pytest.mark.requirement("SBS-TOKEN-09")
def test_token_reads_the_configured_read(two_reads: list[Exchange], protected_read: ProtectedRead) -> None:
    expect.answered(two_reads[0])
    expect.applicable(
        two_reads[0].status != 404, f"the configured read {protected_read.path} answers 404 (set target.reads)"
    )
    expect.status(two_reads[0], {200}, f"the token must read {protected_read.path}")


@pytest.mark.requirement("SBS-TOKEN-09R")
def test_token_is_reused_until_it_expires(two_reads: list[Exchange]) -> None:
    expect.precondition(two_reads[0].status == 200, "the first read failed")
    expect.status(two_reads[1], {200}, "the same token must keep working until expires_in")


@pytest.mark.requirement("SBS-BASIC-07")
def test_secret_with_special_characters_is_form_urlencoded(target: Target, token_url: str) -> None:
    client, secret = target.config.special_client_id, target.config.special_client_secret
    expect.applicable(
        client and secret, "no client with a special-character secret is configured (auth.special_client_id)"
    )
    assert client is not None and secret is not None
    exchange = oauth.request_token_basic(
        target.http,
        token_url,
        client,
        secret,
        scope=target.config.scope,
        purpose="token for a secret with ':', '+', '%' and non-ASCII, encoded as RFC 6749 2.3.1 says",
    )
    expect.status(exchange, {200}, "credentials form-urlencoded before base64 must be accepted")


@pytest.mark.requirement("SBS-BASIC-10")
def test_basic_scheme_is_case_insensitive(target: Target, token_url: str, client_id: str, client_secret: str) -> None:
    exchange = oauth.request_token_basic(
        target.http,
        token_url,
        client_id,
        client_secret,
        scope=target.config.scope,
        purpose="token with 'basic' in lower case",
        authorization=oauth.basic_authorization(client_id, client_secret, scheme="basic"),
    )
    expect.status(exchange, {200}, "the scheme name 'basic' must be accepted")


# --- refusals ------------------------------------------------------------------------------------------


@dataclass
class Kit:
    target: Target
    token_url: str
    client_id: str
    secret: str
    advertised_methods: list[str]

    def send(
        self,
        purpose: str,
        *,
        authorization: str | None = None,
        form: list[tuple[str, str]] | None = None,
        scope: str | None = None,
        token_url: str | None = None,
        omit_header: bool = False,
    ) -> Exchange:
        fields = [("grant_type", "client_credentials"), ("scope", scope or self.target.config.scope)] + (form or [])
        headers = (
            {}
            if omit_header
            else {"Authorization": authorization or oauth.basic_authorization(self.client_id, self.secret)}
        )
        return oauth.post_token(self.target.http, token_url or self.token_url, fields, purpose=purpose, headers=headers)


@dataclass(frozen=True)
class Case:
    id: str
    requirement: str
    what: str
    build: Callable[[Kit], Exchange]
    codes: frozenset[str]
    statuses: frozenset[int] = frozenset({401})
    basic_challenge: bool = True


def _client_secret_post(kit: Kit) -> Exchange:
    expect.applicable("client_secret_post" not in kit.advertised_methods, "the server advertises client_secret_post")
    return kit.send(
        "token with client_secret_post",
        omit_header=True,
        form=[("client_id", kit.client_id), ("client_secret", kit.secret)],
    )


def _other_tenant(kit: Kit) -> Exchange:
    url = kit.token_url
    match = TENANT_IN_TOKEN_URL.search(url)
    other = kit.target.config.other_tenant_base_url
    expect.applicable(match and other, "no second tenant is configured (target.other_tenant_base_url)")
    assert match is not None and other is not None
    other_tenant = other.rstrip("/").rsplit("/", 1)[-1]
    return kit.send("token from another tenant's token URL", token_url=url.replace(match.group(1), other_tenant))


CASES = [
    Case(
        "wrong-secret",
        "SBS-BASIC-02",
        "the secret is wrong",
        lambda kit: kit.send(
            "token with a wrong secret", authorization=oauth.basic_authorization(kit.client_id, "not-the-secret")
        ),
        frozenset({"invalid_client"}),
    ),
    Case(
        "unknown-client",
        "SBS-BASIC-04",
        "the client id is unknown",
        lambda kit: kit.send(
            "token for an unknown client", authorization=oauth.basic_authorization("conformance-unknown-client", "x")
        ),
        frozenset({"invalid_client"}),
    ),
    Case(
        "no-credentials",
        "SBS-BASIC-05",
        "no Authorization header",
        lambda kit: kit.send("token without credentials", omit_header=True),
        frozenset({"invalid_client"}),
        frozenset({400, 401}),
        basic_challenge=False,
    ),
    Case(
        "not-base64",
        "SBS-BASIC-03",
        "the Basic value is not base64",
        lambda kit: kit.send("token with a Basic value that is not base64", authorization="Basic !!not-base64!!"),
        frozenset({"invalid_client"}),
    ),
    Case(
        "no-colon",
        "SBS-BASIC-03",
        "the decoded Basic value has no colon",
        lambda kit: kit.send("token with a Basic value without a colon", authorization="Basic Y29uZm9ybWFuY2U="),
        frozenset({"invalid_client"}),
    ),
    Case(
        "client-secret-post",
        "SBS-BASIC-08",
        "client_id and client_secret in the body (not advertised)",
        _client_secret_post,
        frozenset({"invalid_client"}),
        frozenset({400, 401}),
        basic_challenge=False,
    ),
    Case(
        "header-and-body-secret",
        "SBS-BASIC-09",
        "a Basic header and client_secret in the body",
        lambda kit: kit.send("token with Basic and client_secret in the body", form=[("client_secret", kit.secret)]),
        frozenset({"invalid_request"}),
        frozenset({400}),
        basic_challenge=False,
    ),
    Case(
        "other-tenant",
        "SBS-BASIC-11",
        "another tenant's token URL",
        _other_tenant,
        frozenset({"invalid_grant", "invalid_client", "unauthorized_client"}),
        frozenset({400, 401}),
        basic_challenge=False,
    ),
]


@pytest.fixture(scope="module")
def kit(
    target: Target,
    token_url: str,
    client_id: str,
    client_secret: str,
    basic_grant: TokenGrant,
    smart_config_exchange: Exchange,
) -> Kit:
    methods = (smart_config_exchange.json_object() or {}).get("token_endpoint_auth_methods_supported")
    return Kit(target, token_url, client_id, client_secret, methods if isinstance(methods, list) else [])


@pytest.fixture(scope="module")
def refused(kit: Kit, send_ahead: SendAhead) -> Callable[[Case], Exchange]:
    """Each case sent once (the group side by side); every check reads the recorded answer."""
    return send_ahead(lambda case: case.build(kit))


def _params(own: bool) -> list[Any]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.requirement(c.requirement)] if own else []) for c in CASES]


@pytest.mark.parametrize("case", _params(True))
def test_request_is_refused(case: Case, refused: Callable[[Case], Exchange]) -> None:
    exchange = expect.answered(refused(case))
    expect.no_server_error(exchange, case.what)
    if (exchange.status or 0) < 300 or "access_token" in (exchange.json_object() or {}):
        expect.fail(
            f"a token was issued although {case.what}",
            expected=" or ".join(sorted(case.codes)),
            actual=expect.describe(exchange),
            exchange=exchange,
        )
    status = expect.status(exchange, case.statuses, f"refusal when {case.what}")
    body = expect.json_object(exchange, "token errors must be JSON")
    if body.get("error") not in case.codes:
        expect.fail(
            f"wrong error when {case.what}",
            expected=" or ".join(sorted(case.codes)),
            actual=repr(body.get("error")),
            exchange=exchange,
        )
    if (
        case.basic_challenge
        and status == 401
        and not (exchange.response_header("www-authenticate") or "").lower().startswith("basic")
    ):
        expect.fail(
            "a 401 after Basic authentication must challenge with WWW-Authenticate: Basic",
            expected="WWW-Authenticate: Basic …",
            actual=exchange.response_header("www-authenticate") or "(absent)",
            exchange=exchange,
        )
    note("answer", f"HTTP {status} {body.get('error')}")


@pytest.mark.requirement("SBS-BASIC-12")
@pytest.mark.parametrize("case", _params(False))
def test_error_carries_reason_and_correlation_id(case: Case, refused: Callable[[Case], Exchange]) -> None:
    exchange = expect.answered(refused(case))
    body = exchange.json_object()
    expect.precondition(body and 400 <= (exchange.status or 0) < 500, f"the {case.id} request got no JSON refusal")
    assert body is not None
    uri = str(body.get("error_uri", ""))
    reason = unquote(uri).split("oauth2:token:")[-1].split("/")[0] if "oauth2:token:" in unquote(uri) else None
    if not reason:
        expect.fail(
            "the error has no error_uri with a reason code",
            expected="error_uri …oauth2:token:<reason>",
            actual=expect.short_json(body),
            exchange=exchange,
        )
    if not exchange.response_header("cerner-correlation-id"):
        raise SpecWarning("no Cerner-Correlation-Id header to quote to support", exchange=exchange)
    note("reason", reason)
    note("error_description", body.get("error_description") or "none")


# --- scopes and the FHIR side ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scope_answers(kit: Kit) -> dict[str, Exchange]:
    unauthorized = kit.target.config.unauthorized_scope
    return {
        "narrowed": kit.send(
            "token asking for an extra, unauthorized scope", scope=f"{kit.target.config.scope} {unauthorized}"
        ),
        "only-unauthorized": kit.send("token asking only for an unauthorized scope", scope=unauthorized),
    }


@pytest.mark.requirement("SBS-SCOPE-01")
def test_unauthorized_scope_is_dropped_or_refused(scope_answers: dict[str, Exchange], target: Target) -> None:
    exchange = expect.answered(scope_answers["narrowed"])
    if exchange.status == 200:
        granted = split_scopes((exchange.json_object() or {}).get("scope"))
        if target.config.unauthorized_scope in granted:
            expect.fail(
                "an unauthorized scope was granted",
                expected=f"no {target.config.unauthorized_scope}",
                actual=" ".join(granted),
                exchange=exchange,
            )
        note("server chose", "dropping the scope silently")
        return
    expect.status(exchange, {400}, "refusing the request must be a 400 invalid_scope")
    note("server chose", "refusing the request")


@pytest.mark.requirement("SBS-SCOPE-12")
def test_only_unauthorized_scopes_get_nothing(scope_answers: dict[str, Exchange], target: Target) -> None:
    exchange = expect.answered(scope_answers["only-unauthorized"])
    expect.no_server_error(exchange, "a request for only unauthorized scopes")
    body = exchange.json_object() or {}
    if exchange.status == 200 and split_scopes(body.get("scope")):
        expect.fail(
            "a token request for only unauthorized scopes was granted scopes",
            expected="invalid_scope, or an empty grant",
            actual=repr(body.get("scope")),
            exchange=exchange,
        )
    if exchange.status != 200:
        expect.status(exchange, {400}, "the refusal must be a 400")
    note("answer", f"HTTP {exchange.status} {body.get('error', '')}")


@pytest.fixture(scope="module")
def fhir_answers(target: Target, basic_token: str, protected_read: ProtectedRead) -> dict[str, Exchange]:
    bearer = oauth.bearer(basic_token)
    answers = {
        "no-json-request": target.http.request(
            "GET",
            f"{target.base_url}/{protected_read.path}",
            purpose="read without asking for JSON",
            headers=bearer,
        ),
    }
    if target.config.other_tenant_base_url:
        answers["other-tenant"] = target.http.request(
            "GET",
            f"{target.config.other_tenant_base_url}/Patient?_count=1",
            purpose="read another tenant with this tenant's token",
            headers={"Accept": "application/fhir+json", **bearer},
        )
    return answers


@pytest.mark.requirement("SBS-BEARER-08")
def test_token_cannot_read_another_tenant(fhir_answers: dict[str, Exchange]) -> None:
    expect.applicable("other-tenant" in fhir_answers, "no second tenant is configured (target.other_tenant_base_url)")
    exchange = expect.answered(fhir_answers["other-tenant"])
    expect.no_server_error(exchange, "a read of another tenant")
    entries = (exchange.json_object() or {}).get("entry")
    if exchange.status == 200 and entries:
        expect.fail(
            "a token of one tenant read another tenant's data",
            expected="401 or 403",
            actual=expect.describe(exchange, 120),
            exchange=exchange,
        )
    if exchange.status not in (401, 403):
        raise SpecWarning(
            "inconclusive: the other tenant answered without data but did not refuse the token",
            expected="401 or 403",
            actual=expect.describe(exchange, 120),
            exchange=exchange,
        )


@pytest.mark.requirement("SBS-FMT-04C")
def test_reads_that_do_not_ask_for_json_get_406(fhir_answers: dict[str, Exchange]) -> None:
    exchange = fhir_answers["no-json-request"]
    expect.status(exchange, {406}, "a read without Accept: application/fhir+json (or _format=json) must get 406")
    if exchange.response_body:
        note("body", "present (Cerner documents an empty 406)")
