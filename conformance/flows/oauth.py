"""Token-request flows the suites use: build a client_credentials request, send it, read the answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conformance.core.recording import Exchange, HttpRecorder
from conformance.crypto.jose import ASSERTION_TYPE, ClientKey, client_assertion

Form = list[tuple[str, str]]


def assertion_form(assertion: str, scope: str | None, *, extra: Sequence[tuple[str, str]] = ()) -> Form:
    form: Form = [("grant_type", "client_credentials")]
    if scope is not None:
        form.append(("scope", scope))
    form += [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]
    return form + list(extra)


def post_token(
    http: HttpRecorder, token_url: str, form: Form, *, purpose: str, headers: dict[str, str] | None = None
) -> Exchange:
    return http.request(
        "POST",
        token_url,
        purpose=purpose,
        form=form,
        headers={"Accept": "application/json", **(headers or {})},
    )


def request_token(
    http: HttpRecorder,
    token_url: str,
    key: ClientKey,
    *,
    client_id: str,
    scope: str | None,
    purpose: str,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> Exchange:
    """A client_credentials request with a (possibly tweaked) private_key_jwt assertion."""
    assertion = client_assertion(key, client_id=client_id, audience=token_url, claims=claims, header=header)
    return post_token(http, token_url, assertion_form(assertion, scope, extra=extra), purpose=purpose)


@dataclass
class TokenGrant:
    """A token response, parsed as far as it goes."""

    exchange: Exchange
    body: dict[str, Any] | None

    @classmethod
    def of(cls, exchange: Exchange) -> TokenGrant:
        return cls(exchange, exchange.json_object() if exchange.status == 200 else None)

    @property
    def access_token(self) -> str | None:
        token = (self.body or {}).get("access_token")
        return token if isinstance(token, str) and token else None

    @property
    def scope(self) -> str | None:
        scope = (self.body or {}).get("scope")
        return scope if isinstance(scope, str) else None

    @property
    def expires_in(self) -> Any:
        return (self.body or {}).get("expires_in")

    def __evidence__(self) -> list[Exchange]:
        return [self.exchange]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic_authorization(client_id: str, secret: str, *, scheme: str = "Basic", encode: bool = True) -> str:
    """RFC 6749 §2.3.1: form-urlencode the id and the secret, join with ':', then base64."""
    import base64
    from urllib.parse import quote_plus

    user, password = (quote_plus(client_id), quote_plus(secret)) if encode else (client_id, secret)
    return f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request_token_basic(
    http: HttpRecorder,
    token_url: str,
    client_id: str,
    secret: str,
    *,
    scope: str | None,
    purpose: str,
    form: Sequence[tuple[str, str]] = (),
    authorization: str | None = None,
) -> Exchange:
    """A client_credentials request authenticated with HTTP Basic (or an explicit Authorization value)."""
    fields: Form = [("grant_type", "client_credentials")] + ([("scope", scope)] if scope is not None else [])
    header = authorization if authorization is not None else basic_authorization(client_id, secret)
    return post_token(http, token_url, fields + list(form), purpose=purpose, headers={"Authorization": header})
