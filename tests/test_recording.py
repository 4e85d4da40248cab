"""The HTTP layer records every exchange and turns network trouble into clear messages, never exceptions."""

from __future__ import annotations

import httpx
import pytest
from pytest_httpx import HTTPXMock

from conformance.core.outcomes import NoResponse
from conformance.core.recording import HttpRecorder, capturing


def test_records_request_and_response(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://fhir.example/metadata", json={"resourceType": "CapabilityStatement"}, headers={"X-A": "1"}
    )
    recorder = HttpRecorder(extra_headers={"X-Client": "suite"})
    exchange = recorder.request(
        "GET", "https://fhir.example/metadata", purpose="read", headers={"Accept": "application/fhir+json"}
    )
    assert exchange.status == 200
    assert exchange.json_object() == {"resourceType": "CapabilityStatement"}
    assert exchange.response_header("x-a") == "1"
    assert exchange.request_header("accept") == "application/fhir+json"
    assert exchange.request_header("x-client") == "suite"
    assert exchange.elapsed_ms >= 0
    assert recorder.requests_sent == 1
    sent = httpx_mock.get_request()
    assert sent is not None and sent.headers["x-client"] == "suite"


def test_form_bodies_keep_repeated_fields_in_order(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST", url="https://as.example/token", status_code=400, json={"error": "invalid_request"}
    )
    exchange = HttpRecorder().request(
        "POST", "https://as.example/token", purpose="t", form=[("scope", "a"), ("scope", "b")]
    )
    assert exchange.request_body == b"scope=a&scope=b"
    assert exchange.request_header("content-type") == "application/x-www-form-urlencoded"


def test_timeout_becomes_a_message(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"))
    exchange = HttpRecorder(timeout=10).request("GET", "https://slow.example/metadata", purpose="read")
    assert exchange.status is None
    assert exchange.error == "no complete answer within 10 s (https://slow.example/metadata)"
    with pytest.raises(NoResponse, match="within 10 s"):
        exchange.require_response()


def test_refused_connection_becomes_a_message(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("[Errno 111] Connection refused"))
    exchange = HttpRecorder().request("GET", "http://127.0.0.1:9/fhir/metadata", purpose="read")
    assert exchange.error == "could not connect to http://127.0.0.1:9: connection refused (is the server running?)"


def test_tls_failure_says_how_to_fix_it(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))
    exchange = HttpRecorder().request("GET", "https://self-signed.example/metadata", purpose="read")
    assert exchange.error is not None and "http.ca_bundle" in exchange.error


def test_credentials_are_not_sent_to_another_host_on_redirect(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://fhir.example/Patient/1", status_code=302, headers={"Location": "https://other.example/p"}
    )
    httpx_mock.add_response(url="https://other.example/p", json={"ok": True})
    exchange = HttpRecorder().request(
        "GET", "https://fhir.example/Patient/1", purpose="read", headers={"Authorization": "Bearer t"}
    )
    assert exchange.status == 200
    assert exchange.redirects == ["302 -> https://other.example/p"]
    second = httpx_mock.get_requests()[1]
    assert "authorization" not in second.headers


def test_same_host_redirects_keep_credentials(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://fhir.example/a", status_code=307, headers={"Location": "/b"})
    httpx_mock.add_response(url="https://fhir.example/b", json={})
    HttpRecorder().request("GET", "https://fhir.example/a", purpose="read", headers={"Authorization": "Bearer t"})
    assert httpx_mock.get_requests()[1].headers["authorization"] == "Bearer t"


def test_posts_are_never_redirected(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url="https://as.example/token",
        status_code=307,
        headers={"Location": "https://evil.example/token"},
    )
    exchange = HttpRecorder().request("POST", "https://as.example/token", purpose="t", form={"client_secret": "x"})
    assert exchange.status == 307
    assert len(httpx_mock.get_requests()) == 1


def test_a_body_over_the_limit_is_no_answer_to_judge(httpx_mock: HTTPXMock) -> None:
    """A cut body is not the server's answer: judging it would blame the server for what the suite did not read."""
    httpx_mock.add_response(url="https://big.example/x", content=b"a" * 500_000)
    exchange = HttpRecorder(max_body_bytes=100_000).request("GET", "https://big.example/x", purpose="read")
    assert exchange.status is None and exchange.failure == "truncated" and exchange.partial_status == 200
    assert exchange.truncated and len(exchange.response_body) == 64 * 1024, "only a slice is kept as evidence"
    assert exchange.error is not None and "http.max_body_bytes (100000 bytes)" in exchange.error
    with pytest.raises(NoResponse, match="HTTP 200 headers arrived"):
        exchange.require_response()


def test_html_is_recorded_not_parsed(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://h.example/x", html="<html>oops</html>", status_code=500)
    exchange = HttpRecorder().request("GET", "https://h.example/x", purpose="read")
    assert exchange.status == 500
    assert exchange.json_object() is None
    assert exchange.media_type == "text/html"


def test_capturing_collects_exchanges_made_inside(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://c.example/1")
    recorder = HttpRecorder()
    with capturing() as captured:
        exchange = recorder.request("GET", "https://c.example/1", purpose="read")
    assert captured == [exchange]


def test_the_test_suite_refuses_non_loopback_connections() -> None:
    import socket

    with socket.socket() as sock, pytest.raises(OSError, match="only connect to loopback"):
        sock.connect(("192.0.2.1", 80))


def test_cross_origin_redirects_carry_only_harmless_headers(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://fhir.example/a", status_code=302, headers={"Location": "https://other.example/b"}
    )
    httpx_mock.add_response(url="https://other.example/b", json={})
    HttpRecorder(extra_headers={"X-Api-Key": "gateway-key"}).request(
        "GET", "https://fhir.example/a", purpose="read", headers={"Accept": "application/json"}
    )
    forwarded = httpx_mock.get_requests()[1].headers
    assert "x-api-key" not in forwarded and forwarded["accept"] == "application/json"


def test_a_redirect_is_not_followed_when_the_query_holds_credentials(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://as.example/token?client_assertion=abc",
        status_code=302,
        headers={"Location": "https://evil.example/"},
    )
    exchange = HttpRecorder().request("GET", "https://as.example/token?client_assertion=abc", purpose="t")
    assert exchange.error is not None and "carries credentials" in exchange.error
    assert len(httpx_mock.get_requests()) == 1


def test_an_invalid_url_is_an_error_not_an_exception() -> None:
    exchange = HttpRecorder().request("GET", "http://127.0.0.1:1/\x00bad", purpose="read")
    assert exchange.status is None and exchange.error is not None


def test_unusable_advertised_urls_resolve_to_none() -> None:
    from conformance.flows.discovery import resolve

    assert resolve("https://fhir.example/r4", "http://[::1/token") is None
    assert resolve("https://fhir.example/r4", "/token") == "https://fhir.example/token"
