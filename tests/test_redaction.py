"""Secrets never leave memory: headers, form fields, JSON members, JWT signatures, PEM keys, known values."""

from __future__ import annotations

import json

from conformance.checking.evidence import curl_command, render_request, render_response
from conformance.core.recording import Exchange
from conformance.core.redaction import MASK, Redactor, mask_signature
from conformance.crypto.jose import client_assertion, generate_rsa, private_jwk


def test_authorization_keeps_the_scheme_and_masks_the_value() -> None:
    redactor = Redactor()
    assert redactor.header("Authorization", "Basic Y2xpZW50OnNlY3JldA==") == f"Basic {MASK}"
    assert redactor.header("authorization", "Bearer abc.def") == f"Bearer {MASK}"
    assert redactor.header("Cookie", "session=1") == MASK
    assert redactor.header("Accept", "application/json") == "application/json"


def test_configured_secret_headers_are_masked() -> None:
    assert Redactor(extra_secret_headers=["X-Tenant-Key"]).header("x-tenant-key", "k-123456") == MASK


def test_form_fields_are_masked_and_assertions_lose_only_their_signature() -> None:
    key = generate_rsa()
    assertion = client_assertion(key, client_id="c", audience="https://as/token")
    body = f"grant_type=client_credentials&client_secret=hunter22&client_assertion={assertion}".encode()
    shown = Redactor().body(body, "application/x-www-form-urlencoded")
    header, claims, signature = assertion.split(".")
    assert "hunter22" not in shown
    assert signature not in shown
    assert f"{header}.{claims}." in shown


def test_json_token_fields_and_private_jwk_members_are_masked() -> None:
    key = generate_rsa()
    document = {
        "access_token": "tok-123456789",
        "token_type": "Bearer",
        "jwks": {"keys": [private_jwk(key.private_key)]},
    }
    shown = Redactor().body(json.dumps(document).encode(), "application/json")
    assert "tok-123456789" not in shown
    assert private_jwk(key.private_key)["d"] not in shown
    assert '"token_type": "Bearer"' in shown


def test_known_secrets_and_pem_keys_are_masked_in_any_text() -> None:
    redactor = Redactor()
    redactor.add_secret("the-access-token-value")
    key = generate_rsa()
    text = f"got the-access-token-value and\n{key.private_pem().decode()}"
    shown = redactor.text(text)
    assert "the-access-token-value" not in shown
    assert "PRIVATE KEY-----" in shown
    assert key.private_pem().decode().splitlines()[1] not in shown


def test_jwt_signatures_are_masked_in_free_text() -> None:
    token = client_assertion(generate_rsa(), client_id="c", audience="a")
    assert token.split(".")[2] not in Redactor().text(f"error: {token} was bad")
    assert mask_signature("a.b") == "a.b"


def test_query_secrets_are_masked() -> None:
    shown = Redactor().url("https://fhir.example/Patient?access_token=abcdefgh&_id=1")
    assert "abcdefgh" not in shown
    assert "_id=1" in shown


def test_rendered_evidence_and_curl_are_redacted() -> None:
    redactor = Redactor()
    redactor.add_secret("issued-token-0001")
    exchange = Exchange(
        purpose="token",
        method="POST",
        url="https://as.example/token",
        request_headers=[("Authorization", "Basic c2VjcmV0"), ("Content-Type", "application/x-www-form-urlencoded")],
        request_body=b"grant_type=client_credentials&client_secret=s3cr3t-value",
        status=200,
        response_headers=[("Content-Type", "application/json")],
        response_body=b'{"access_token": "issued-token-0001", "expires_in": 300}',
    )
    for text in (
        render_request(exchange, redactor),
        render_response(exchange, redactor),
        curl_command(exchange, redactor),
    ):
        assert "s3cr3t-value" not in text
        assert "issued-token-0001" not in text
        assert "c2VjcmV0" not in text
    assert "--data-urlencode grant_type=client_credentials" in curl_command(exchange, redactor)


def test_tokens_in_form_encoded_or_bom_prefixed_responses_are_learned() -> None:
    from conformance.checking.expect import describe
    from conformance.core.redaction import activate
    from conformance.flows.target import observe_secrets

    redactor = Redactor()
    form = Exchange(
        "t",
        "POST",
        "https://as/token",
        [],
        status=200,
        response_headers=[("Content-Type", "application/x-www-form-urlencoded")],
        response_body=b"access_token=FORM-TOKEN-123456&token_type=bearer",
    )
    bom = Exchange(
        "t",
        "POST",
        "https://as/token",
        [],
        status=200,
        response_headers=[("Content-Type", "application/json")],
        response_body='\ufeff{"access_token": "BOM-TOKEN-123456"}'.encode(),
    )
    for exchange in (form, bom):
        observe_secrets(redactor, exchange)
    activate(redactor)
    try:
        shown = describe(form) + describe(bom) + render_response(bom, redactor)
    finally:
        activate(None)
    assert "FORM-TOKEN-123456" not in shown and "BOM-TOKEN-123456" not in shown


def test_basic_and_bearer_values_are_masked_in_free_text() -> None:
    shown = Redactor().text(
        "locals: ('Authorization', 'Basic ZGVtb2NsaWVudDpzM2NyM3Q=') then Bearer abcdef.ghijkl.mnopqr"
    )
    assert "ZGVtb2NsaWVudDpzM2NyM3Q=" not in shown and "mnopqr" not in shown
    assert Redactor().text('WWW-Authenticate: Basic realm="tenant"') == 'WWW-Authenticate: Basic realm="tenant"'


def test_jwts_with_whitespace_in_their_header_lose_their_signature() -> None:
    import base64

    head = base64.urlsafe_b64encode(b'{\n  "alg": "RS256"}').decode().rstrip("=")
    token = f"{head}.eyJpc3MiOiJ4In0.c2lnbmF0dXJlLXZhbHVlLWhlcmU"
    assert "c2lnbmF0dXJlLXZhbHVlLWhlcmU" not in Redactor().text(token)
    assert (
        Redactor().text("conformance.runner.pytest_plugin.something_long_here")
        == "conformance.runner.pytest_plugin.something_long_here"
    )


def test_exchange_repr_holds_no_headers_or_bodies() -> None:
    exchange = Exchange(
        "t", "POST", "https://as/token", [("Authorization", "Basic c2VjcmV0")], request_body=b"client_secret=x"
    )
    assert "c2VjcmV0" not in repr(exchange) and "client_secret" not in repr(exchange)


def test_a_secret_is_masked_in_every_encoding_it_is_sent_in() -> None:
    """A target may echo the form-encoded, percent-encoded, base64 or JSON-escaped rendering, not the raw value."""
    import base64
    import json as json_module
    from urllib.parse import quote, quote_plus

    from conformance.core.redaction import Redactor

    secret = 'p:a+s%s wörd=&"/'
    redactor = Redactor()
    redactor.add_secret(secret)
    renderings = [
        quote_plus(secret),
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        json_module.dumps(secret)[1:-1],
    ]
    for rendering in renderings:
        assert "[redacted]" in redactor.text(f"echo: {rendering} end"), rendering
        assert rendering not in redactor.text(f"echo: {rendering} end")
