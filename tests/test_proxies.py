"""Proxies: http.proxy / --proxy, else HTTPS_PROXY / HTTP_PROXY / NO_PROXY; the redirect and credential rules
hold through a proxy. The end-to-end tests run the suite through a forward proxy on loopback."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conformance.core.proxies import proxy_mounts, proxy_settings
from conformance.core.recording import HttpRecorder
from tests.conftest import reference_with_suite_client, suite_client_flags
from tests.misbehaving_target import MisbehavingTarget
from tests.test_cli_end_to_end import conformance


class ForwardProxy:
    """A plain-HTTP forward proxy (absolute-form requests) that records what passes through it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "host")}
                proxy.seen.append((self.command, self.path, headers))
                with httpx.Client(trust_env=False, timeout=30) as client:
                    answer = client.request(self.command, self.path, headers=headers, content=body)
                self.send_response(answer.status_code)
                for name, value in answer.headers.multi_items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    proxy = ForwardProxy()
    yield proxy
    proxy.stop()


def test_environment_proxies_follow_the_usual_conventions() -> None:
    environ = {"HTTPS_PROXY": "http://corp:3128", "http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2"}
    proxies, bypass = proxy_settings(None, {**environ, "NO_PROXY": "internal.example, .corp.example,10.0.0.1"})
    assert proxies == {"https": "http://corp:3128", "http": "http://lower:1"}, "lower-case names win"
    assert bypass == ["internal.example", ".corp.example", "10.0.0.1"]
    assert proxy_settings(None, {"ALL_PROXY": "http://all:9"})[0] == {"http": "http://all:9", "https": "http://all:9"}
    assert proxy_settings(None, {**environ, "no_proxy": "*"}) == ({}, [])
    assert proxy_settings("none", environ) == ({}, []), "http.proxy = none ignores the environment"
    assert proxy_settings("http://explicit:8", environ)[0] == {
        "http": "http://explicit:8",
        "https": "http://explicit:8",
    }


def test_loopback_and_no_proxy_hosts_go_direct_with_environment_proxies() -> None:
    mounts = proxy_mounts(
        None, lambda url: httpx.HTTPTransport(proxy=url), {"HTTPS_PROXY": "http://corp:3128", "NO_PROXY": "a.example"}
    )
    assert mounts["all://127.0.0.1"] is None and mounts["all://localhost"] is None
    assert mounts["all://*a.example"] is None
    assert isinstance(mounts["https://"], httpx.HTTPTransport)
    assert "all://127.0.0.1" not in proxy_mounts("http://p:1", lambda url: httpx.HTTPTransport(proxy=url), {})


def test_a_proxy_password_is_a_secret(tmp_path: Path) -> None:
    from conformance.core.config import TargetConfig
    from conformance.flows.target import make_http, make_redactor

    config = TargetConfig(base_url="http://t.example/fhir", profile="smart-backend", proxy="http://u:pr0xy-pw@p:1")
    redactor = make_redactor(config)
    make_http(config, redactor).close()
    assert "pr0xy-pw" not in redactor.text("proxy http://u:pr0xy-pw@p:1 refused")


def test_credentials_stay_home_on_a_redirect_through_a_proxy(forward_proxy: ForwardProxy) -> None:
    elsewhere = MisbehavingTarget("echo")
    origin = MisbehavingTarget("redirect-elsewhere", elsewhere=elsewhere.origin)
    try:
        recorder = HttpRecorder(proxy=forward_proxy.url, timeout=5)
        read = recorder.request(
            "GET", f"{origin.origin}/fhir/Patient/1", purpose="r", headers={"Authorization": "Bearer t0k"}
        )
        post = recorder.request("POST", f"{origin.origin}/token", purpose="t", form={"client_secret": "s3cret"})
    finally:
        origin.stop()
        elsewhere.stop()
    assert read.redirects and read.status == 400, "the read followed the redirect (through the proxy)"
    assert post.status == 302, "a POST is never redirected"
    assert all("authorization" not in json.dumps(r.headers).lower() for r in elsewhere.received)
    assert any(elsewhere.origin in url for _, url, _ in forward_proxy.seen), "the redirect went through the proxy"


def test_a_run_through_an_explicit_proxy_passes(forward_proxy: ForwardProxy, tmp_path: Path, keys_dir: Path) -> None:
    with reference_with_suite_client(keys_dir) as server:
        proc = conformance(
            "run",
            "-q",
            "--reports",
            "out",
            "--target-url",
            server.fhir_base,
            *suite_client_flags(keys_dir),
            "--proxy",
            forward_proxy.url,
            cwd=tmp_path,
        )
    assert proc.returncode == 0, proc.stdout[-3000:]
    document = json.loads((tmp_path / "out/results.json").read_text())
    assert len(forward_proxy.seen) >= document["requests"] * 0.9, "the run's requests went through the proxy"
