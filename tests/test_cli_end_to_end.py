"""`conformance` end to end: certify the embedded server, report, fail clearly, keep secrets out of reports."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conformance.crypto.jose import jwks, load_key
from conformance.mock.server import MockServer
from conformance.mock.store import Client
from conformance.profiles import registry as profiles
from conformance.profiles.smart_backend import CLIENT_ID, CLIENT_SCOPES, embedded_keys
from tests.conftest import suites_in_pytest

CONFORMANCE = [sys.executable, "-m", "conformance.runner.cli"]


def conformance(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [*CONFORMANCE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_certifies_the_embedded_server_with_one_allure_result_per_check(tmp_path: Path) -> None:
    proc = conformance("run", "-q", "--reports", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "out/results.json").read_text())["checks"]
    assert len(results) > 300
    assert {r["outcome"] for r in results} == {"pass"}
    allure = [json.loads(p.read_text()) for p in (tmp_path / "out/allure-results").glob("*-result.json")]
    assert len(allure) == len(results)
    assert all(r["status"] == "passed" for r in allure)
    assert all(r.get("steps") and r["steps"][0].get("attachments") for r in allure if "check_id" in str(r["labels"]))
    labels = {label["name"] for r in allure for label in r["labels"]}
    assert {"requirement", "level", "check_id"} <= labels
    assert (tmp_path / "out/junit.xml").exists()
    assert "conformance summary" in proc.stdout


def test_unreachable_target_fails_with_a_clear_message(tmp_path: Path, keys_dir: Path) -> None:
    port = free_port()
    proc = conformance(
        "run",
        "-q",
        "--reports",
        "out",
        "--target-url",
        f"http://127.0.0.1:{port}/fhir",
        "--client-id",
        "c",
        "--private-key",
        str(keys_dir / "client-rs384.pem"),
        cwd=tmp_path,
    )
    assert proc.returncode == 3, "a target that could not be judged is neither a pass nor a failure"
    message = f"could not connect to http://127.0.0.1:{port}: connection refused"
    results = json.loads((tmp_path / "out/results.json").read_text())["checks"]
    assert {r["outcome"] for r in results} <= {"broken", "skip", "not-applicable", "not-run"}
    assert message in (tmp_path / "out/junit.xml").read_text()
    assert message in proc.stdout
    assert "Traceback" not in proc.stdout


def test_configuration_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    proc = conformance("run", "--config", "missing.toml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "conformance: error: config file missing.toml does not exist"
    (tmp_path / "t.toml").write_text(
        '[target]\nbase_url = "https://x.example"\n[auth]\nclient_id = "c"\nprivate_key = "./key.pem"\n'
    )
    proc = conformance("run", "--config", "t.toml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "private key file ./key.pem" in proc.stderr and "auth.private_key in t.toml" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_pytest_entry_point_reports_config_errors_with_exit_2(tmp_path: Path) -> None:
    proc = suites_in_pytest("--conformance-profile", "oauth1", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "target.profile from --conformance-profile must be one of" in proc.stdout + proc.stderr


def test_reports_contain_no_secret(tmp_path: Path, keys_dir: Path) -> None:
    keys = embedded_keys(keys_dir)
    # As a user would: the kids are the RFC 7638 thumbprints the suite derives from the PEM files.
    loaded = {name: load_key(keys_dir / f"{name}.pem") for name in keys}
    settings = profiles.DEFAULT.server_settings()
    with MockServer(settings) as server:
        main = [loaded["client-rs384"], loaded["client-es384"]]
        server.ctx.store.put_client(Client(CLIENT_ID, jwks=jwks(main), scopes=CLIENT_SCOPES))
        server.ctx.store.put_client(Client("other", jwks=jwks([loaded["other-rs384"]]), scopes=CLIENT_SCOPES))
        (tmp_path / "target.toml").write_text(
            f'[target]\nbase_url = "{server.fhir_base}"\npatient_id = "example"\n'
            f'[auth]\nclient_id = "{CLIENT_ID}"\nprivate_keys = ["{keys_dir}/client-rs384.pem", "{keys_dir}/client-es384.pem"]\n'
            f'other_client_id = "other"\nother_client_key = "{keys_dir}/other-rs384.pem"\n'
            'scopes = ["system/Patient.read", "system/Observation.read"]\n'
            '[http]\nheaders = { "X-Api-Key" = "api-key-value-7f3a9" }\nsecret_headers = ["X-Api-Key"]\n'
        )
        proc = conformance("run", "-q", "--config", "target.toml", "--reports", "out", cwd=tmp_path)
        tokens = server.ctx.store.issued_tokens()
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert len(tokens) > 10
    secrets = [*tokens, "api-key-value-7f3a9"]
    for key in keys.values():
        secrets += [line for line in key.private_pem().decode().splitlines() if "PRIVATE KEY" not in line]
        secrets += key.secret_strings()[1:]
    report_text = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file())
    report_text += proc.stdout + proc.stderr
    leaked = [s for s in secrets if s in report_text]
    assert not leaked, f"{len(leaked)} secret values found in reports, e.g. {leaked[0][:12]}…"
    signed_jwt = re.compile(r"eyJ[\w-]+\.eyJ[\w-]*\.[\w-]{20,}")
    assert not signed_jwt.search(report_text), "a JWT with its signature reached the reports"
    assert "[signature-redacted]" in report_text and "[redacted]" in report_text


def test_faults_command_shows_no_check_without_a_fault(tmp_path: Path) -> None:
    proc = conformance("faults", "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "accept-alg-none" in proc.stdout
    assert "0 checks are killed by no fault" in proc.stdout


def test_mock_command_serves_a_registered_client(tmp_path: Path, keys_dir: Path) -> None:
    keys = embedded_keys(keys_dir)
    (tmp_path / "jwks.json").write_text(json.dumps(jwks([keys["client-rs384"]])))
    port = free_port()
    proc = subprocess.Popen(
        [
            *CONFORMANCE,
            "mock",
            "--port",
            str(port),
            "--register-client",
            "demo",
            "--jwks",
            "jwks.json",
            "--fault",
            "token-type-mac",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/fhir" in first
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 200
        assert response.json()["resourceType"] == "CapabilityStatement"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_mock_command_rejects_an_unknown_fault(tmp_path: Path) -> None:
    proc = conformance("mock", "--fault", "no-such-fault", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown fault(s): no-such-fault" in proc.stderr


def test_keys_generate_then_print_the_jwks_to_register(tmp_path: Path, capsys: object) -> None:
    from conformance.runner.cli import main

    assert main(["keys", "generate", str(tmp_path / "k")]) == 0
    assert (tmp_path / "k/client-rs384.pem").stat().st_mode & 0o077 == 0
    published = json.loads((tmp_path / "k/jwks.json").read_text())
    assert [k["alg"] for k in published["keys"]] == ["RS384", "ES384"]
    assert all("d" not in k for k in published["keys"])
    assert main(["keys", "generate", str(tmp_path / "k")]) == 2
    assert main(["keys", "jwks", "--private-key", str(tmp_path / "k/client-es384.pem")]) == 0


import pytest  # noqa: E402


@pytest.mark.parametrize("profile", ["udap", "cerner-carequality", "client-secret", "ccde"])
def test_run_certifies_every_profile_of_the_embedded_server(profile: str, tmp_path: Path) -> None:
    proc = conformance("run", "-q", "--profile", profile, "--reports", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "out/results.json").read_text())["checks"]
    assert results and {r["outcome"] for r in results} == {"pass"}
    assert len(list((tmp_path / "out/allure-results").glob("*-result.json"))) == len(results)


def test_user_mistakes_exit_2_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bundle.pem").write_text("not a certificate")
    (tmp_path / "secret-dir").mkdir()
    (tmp_path / "a-file").write_text("x")
    proc = conformance("run", "--fault", "no-such-fault", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown fault(s): no-such-fault" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "t.toml").write_text('[target]\nbase_url = "https://x.example"\n[http]\nca_bundle = "bundle.pem"\n')
    proc = conformance("run", "--config", "t.toml", cwd=tmp_path)
    assert proc.returncode == 2 and "not a PEM CA bundle" in proc.stderr and "http.ca_bundle in t.toml" in proc.stderr
    (tmp_path / "s.toml").write_text(
        '[target]\nbase_url = "https://x.example"\nprofile = "client-secret"\n[auth]\nclient_id = "c"\nclient_secret_file = "secret-dir"\n'
    )
    proc = conformance("run", "--config", "s.toml", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    proc = conformance("keys", "generate", "a-file/sub", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot write keys" in proc.stderr


def test_a_target_serving_odd_json_gets_failures_not_harness_errors(tmp_path: Path, keys_dir: Path) -> None:
    import http.server
    import threading

    documents = {
        "/fhir/metadata": {"resourceType": "CapabilityStatement", "format": 3, "rest": "x", "status": "active"},
        "/fhir/.well-known/smart-configuration": {
            "token_endpoint": "http://[::1/token",
            "capabilities": 5,
            "scopes_supported": 7,
            "grant_types_supported": "client_credentials",
        },
    }

    class Odd(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(documents.get(self.path.split("?")[0], {"resourceType": "OperationOutcome"})).encode()
            self.send_response(200 if self.path.split("?")[0] in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = conformance(
            "run",
            "-q",
            "--reports",
            "out",
            "--target-url",
            f"http://127.0.0.1:{server.server_address[1]}/fhir",
            "--client-id",
            "c",
            "--private-key",
            str(keys_dir / "client-rs384.pem"),
            "--patient-id",
            "p",
            cwd=tmp_path,
        )
    finally:
        server.shutdown()
    results = json.loads((tmp_path / "out/results.json").read_text())["checks"]
    assert proc.returncode == 1
    assert not [r["check"] for r in results if r["outcome"] == "broken"], proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout
    assert any(r["outcome"] == "fail" for r in results)


def test_token_checks_judge_a_target_with_no_read_configured(tmp_path: Path, keys_dir: Path) -> None:
    """The token endpoint is judged whether or not a FHIR read is configured: with none, only the checks that read
    are not run (a token-request group once depended on the read and skipped everything, so faults passed)."""
    import dataclasses

    from conformance.mock.faults import FaultSet

    keys = embedded_keys(keys_dir)
    loaded = {name: load_key(keys_dir / f"{name}.pem") for name in keys}
    settings = dataclasses.replace(profiles.DEFAULT.server_settings(), faults=FaultSet(["reject-unknown-params"]))
    with MockServer(settings) as server:
        main = [loaded["client-rs384"], loaded["client-es384"]]
        server.ctx.store.put_client(Client(CLIENT_ID, jwks=jwks(main), scopes=CLIENT_SCOPES))
        (tmp_path / "target.toml").write_text(
            f'[target]\nbase_url = "{server.fhir_base}"\n'
            f'[auth]\nclient_id = "{CLIENT_ID}"\nprivate_keys = ["{keys_dir}/client-rs384.pem", "{keys_dir}/client-es384.pem"]\n'
            'scopes = ["system/Patient.read", "system/Observation.read"]\n'
        )
        proc = conformance(
            "run", "-q", "--config", "target.toml", "--reports", "out", "-k", "test_token_success", cwd=tmp_path
        )
    outcomes = {
        c["check"].split("::")[1]: c["outcome"]
        for c in json.loads((tmp_path / "out/results.json").read_text())["checks"]
    }
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert outcomes["test_unknown_parameters_are_ignored"] == "fail"
    assert outcomes["test_valid_assertion_gets_a_token[RS384]"] == "pass"
    assert outcomes["test_token_reads_the_configured_read[RS384]"] == "skip"
