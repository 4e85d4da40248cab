"""UDAP and Carequality end to end: the README walk-through against `conformance mock`, and state across restarts."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from conformance.core.recording import HttpRecorder
from conformance.flows import oauth, udap
from conformance.mock.server import MockServer
from conformance.mock.systems.carequality import CERNER_TENANT
from conformance.profiles import registry as profiles
from tests.conftest import udap_test_members
from tests.test_cli_end_to_end import CONFORMANCE, conformance, free_port


def _wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.ConnectError:
            assert process.poll() is None, process.stderr.read() if process.stderr else "mock exited"
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.05)


def test_carequality_walkthrough_against_conformance_mock(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/beta/{CERNER_TENANT}"
    proc = conformance(
        "pki", "init", "pki", "--client-uri", "https://client.example.org/app", "--server-uri", base, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    mock = subprocess.Popen(
        [
            *CONFORMANCE,
            "mock",
            "--profile",
            "cerner-carequality",
            "--port",
            str(port),
            "--pki",
            "pki",
            "--db",
            "mock.sqlite",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(f"{base}/metadata", mock)
        (tmp_path / "target.toml").write_text(
            f'[target]\nbase_url = "{base}"\nprofile = "cerner-carequality"\npatient_id = "1316024"\n'
            '[udap]\ncert_chain = "pki/client-cert.pem"\nprivate_key = "pki/client-key.pem"\n'
            'trust_anchors = ["pki/community-root.pem"]\n'
            'other_cert_chain = "pki/other-client-cert.pem"\nother_private_key = "pki/other-client-key.pem"\n'
            'expired_cert_chain = "pki/expired-client-cert.pem"\nexpired_private_key = "pki/expired-client-key.pem"\n'
            'untrusted_cert_chain = "pki/untrusted-client-cert.pem"\nuntrusted_private_key = "pki/untrusted-client-key.pem"\n'
        )
        run = conformance("run", "-q", "--config", "target.toml", "--reports", "out", cwd=tmp_path)
    finally:
        mock.terminate()
        mock.wait(timeout=10)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "not-applicable" in run.stdout  # the lifecycle checks need a second certificate
    assert "checks:" in run.stdout and " 0 fail" in run.stdout


def test_registered_clients_survive_a_restart(tmp_path: Path, keys_dir: Path) -> None:
    _, prepare, client = udap_test_members(keys_dir)
    db = str(tmp_path / "mock.sqlite")
    http = HttpRecorder()
    port = free_port()
    with MockServer(profiles.get("udap").server_settings(db_path=db), port=port, prepare=prepare) as first:
        statement = udap.jwt_with_x5c(
            client.certified, udap.software_statement_claims(client, first.settings.register_url)
        )
        registered = udap.register(
            http, first.settings.register_url, udap.registration_body(statement), purpose="register"
        )
        assert registered.status == 201, registered.text
        client_id = udap.Registration(registered, statement).client_id
        assert client_id
    with MockServer(profiles.get("udap").server_settings(db_path=db), port=port, prepare=prepare) as second:
        token_url = second.settings.token_url
        assertion = udap.jwt_with_x5c(
            client.certified, udap.authentication_claims(client_id, token_url, client.b2b.extension())
        )
        answer = oauth.post_token(
            http, token_url, udap.token_form(assertion, client.scope), purpose="token after restart"
        )
        assert answer.status == 200, answer.text
        assert second.ctx.store.get_client(client_id) is not None
    http.close()
