"""`conformance diagnose`: the likely cause first, with its evidence, for the failures teams actually meet."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.mock.server import MockServer
from conformance.mock.store import Client
from conformance.mock.systems.cerner_system import TENANT_A
from conformance.profiles import registry as profiles
from conformance.runner.diagnose import diagnose
from conformance.runner.embedded import start_embedded
from tests.test_cli_end_to_end import conformance

SECRET = "s3cret:with+special%chars"


def _cerner(tmp_path: Path, **settings: object) -> tuple[MockServer, Path]:
    server = MockServer(profiles.get("cerner-system-account").server_settings(**settings)).start()  # type: ignore[arg-type]
    server.ctx.store.put_client(
        Client(
            "diag-client",
            auth_method="client_secret_basic",
            secret=SECRET,
            scopes=["system/Patient.read"],
            tenant=TENANT_A,
        )
    )
    config = tmp_path / "target.toml"
    config.write_text(
        f'[target]\nbase_url = "{server.fhir_base}"\nprofile = "client-secret"\npatient_id = "1"\n'
        '[auth]\nclient_id = "diag-client"\nclient_secret_env = "DIAG_SECRET"\nscopes = ["system/Patient.read"]\n'
    )
    return server, config


def test_access_denied_names_the_expired_or_revoked_registration_first(tmp_path: Path) -> None:
    server, config = _cerner(tmp_path, access_denied=True)
    try:
        proc = conformance("diagnose", "--config", str(config), "--json", cwd=tmp_path, env={"DIAG_SECRET": SECRET})
    finally:
        server.stop()
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    first = report["findings"][0]
    assert first["code"] == "access-denied"
    assert "expired or been revoked" in first["causes"][0]
    assert "HTTP 403" in first["evidence"][0]["response"] and "Access denied" in first["evidence"][0]["response"]
    assert SECRET not in proc.stdout and "Basic [redacted]" in proc.stdout


def test_clock_skew_of_ten_minutes_is_named(tmp_path: Path) -> None:
    server, config = _cerner(tmp_path, clock_offset=600.0)
    try:
        proc = conformance("diagnose", "--config", str(config), cwd=tmp_path, env={"DIAG_SECRET": SECRET})
    finally:
        server.stop()
    assert proc.returncode == 0, "a skewed clock does not stop Basic authentication"
    first_line = next(line for line in proc.stdout.splitlines() if line.startswith("1. "))
    assert "clock" in first_line and "ahead of this machine's" in first_line
    seconds = int(first_line.split("is ")[1].split(" s ")[0])
    assert 595 <= seconds <= 605


def test_skew_is_ranked_above_invalid_client_for_assertions() -> None:
    target = start_embedded("smart-backend", mock_settings={"clock_offset": 600.0})
    try:
        codes = [f.code for f in diagnose(target).findings]
    finally:
        target.close()
    assert codes[:2] == ["clock-skew", "invalid-client"]


def test_a_healthy_target_reports_no_problem(tmp_path: Path) -> None:
    server, config = _cerner(tmp_path)
    try:
        proc = conformance("diagnose", "--config", str(config), cwd=tmp_path, env={"DIAG_SECRET": SECRET})
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout
    assert "no problem found" in proc.stdout


def test_wrong_secret_points_at_credentials_and_their_encoding(tmp_path: Path) -> None:
    server, config = _cerner(tmp_path)
    try:
        proc = conformance(
            "diagnose", "--config", str(config), "--json", cwd=tmp_path, env={"DIAG_SECRET": "wrong:secret+"}
        )
    finally:
        server.stop()
    first = json.loads(proc.stdout)["findings"][0]
    assert first["code"] == "invalid-client"
    assert any("form-urlencoded" in cause for cause in first["causes"])


def test_tenant_mismatch_between_token_url_and_fhir_base(tmp_path: Path) -> None:
    server, config = _cerner(tmp_path)
    other = "d075cf8b-3261-481d-97e5-ba6c48d3b41f"
    wrong_token_url = f"{server.settings.auth_url}/tenants/{other}/hosts/x/protocols/oauth2/profiles/smart-v1/token"
    try:
        proc = conformance(
            "diagnose",
            "--config",
            str(config),
            "--json",
            "--token-url",
            wrong_token_url,
            cwd=tmp_path,
            env={"DIAG_SECRET": SECRET},
        )
    finally:
        server.stop()
    codes = [f["code"] for f in json.loads(proc.stdout)["findings"]]
    assert "tenant-mismatch" in codes and "token-url-differs" in codes


def test_an_unreachable_server_is_named_as_such(tmp_path: Path) -> None:
    from tests.test_cli_end_to_end import free_port

    (tmp_path / "target.toml").write_text(
        f'[target]\nbase_url = "http://127.0.0.1:{free_port()}/r4/t"\nprofile = "client-secret"\n'
        '[auth]\nclient_id = "c"\nclient_secret_env = "DIAG_SECRET"\n'
    )
    proc = conformance("diagnose", "--config", "target.toml", "--json", cwd=tmp_path, env={"DIAG_SECRET": SECRET})
    assert proc.returncode == 1
    first = json.loads(proc.stdout)["findings"][0]
    assert first["code"] == "target-unreachable"
    assert "connection refused" in first["explanation"]
