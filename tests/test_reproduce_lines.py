"""The curl line in a failure text runs as printed: a user pastes it into a shell and gets the server's answer."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.core.redaction import Redactor
from tests.conftest import reference_with_suite_client, suite_client_flags, suites_in_pytest

CHECK = "test_no_token_is_issued and missing-jti"


def _flags_for_pytest(flags: list[str]) -> list[str]:
    return [f"--conformance-{flag[2:]}" if flag.startswith("--") else flag for flag in flags]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_printed_curl_line_runs_against_the_reference_server(tmp_path: Path, keys_dir: Path) -> None:
    with reference_with_suite_client(keys_dir, faults=("lenient-required-claims",)) as server:
        proc = suites_in_pytest(
            "-p",
            "no:allure_pytest",
            "--conformance-target-url",
            server.fhir_base,
            *_flags_for_pytest(suite_client_flags(keys_dir)),
            "-k",
            CHECK,
            cwd=tmp_path,
        )
        assert proc.returncode == 1, proc.stdout[-3000:]
        lines = [line.split("reproduce: ", 1)[1] for line in proc.stdout.splitlines() if "reproduce: curl " in line]
        assert lines, proc.stdout[-3000:]
        for line in lines:
            words = shlex.split(line)
            fields = [words[i + 1].split("=", 1)[0] for i, w in enumerate(words) if w == "--data-urlencode"]
            assert fields == ["grant_type", "scope", "client_assertion_type", "client_assertion"], line
            assert "jwt-bearer" in line and "[redacted]" not in line.split("client_assertion=")[0]
            ran = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30)
            assert ran.returncode == 0, f"{line}\n{ran.stderr}"
            status = ran.stdout.splitlines()[0]
            # The signature is masked, so the server refuses the copy: that it answers proves the line is whole.
            assert status.startswith("HTTP/1.1 4"), ran.stdout[:500]
            assert "invalid_client" in ran.stdout


@pytest.mark.parametrize(
    "text",
    [
        "curl --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer "
        "--data-urlencode scope=system/Patient.rs",
        "the 401 has no Bearer challenge",
        "the 401 has no Bearer challenge.",
        "the token response lacks a Bearer access_token",
        "the token response lacks a Bearer token_type.",
        "HTTP Basic credentials.",
        "WWW-Authenticate: Basic realm=fhir-server",
        "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer",
    ],
)
def test_words_after_bearer_are_not_mistaken_for_credentials(text: str) -> None:
    assert Redactor().text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc123def456ghi",
        "authorization: bearer eyJhbGciOiJSUzM4NCJ9x",
        "Basic Y2xpZW50OnNlY3JldA==",
        "Bearer 2YotnFZFEjr1zCsicMWpAA",  # RFC 6749's example access token
        "Bearer abcdef.ghijkl.mnopqr",
    ],
)
def test_credentials_after_the_scheme_are_masked(text: str) -> None:
    assert "[redacted]" in Redactor().text(text)


def test_reports_show_no_password_or_query_secret_of_the_target_url() -> None:
    from conformance.core.redaction import display_url

    shown = display_url("http://alice:S3cretPassw0rd@127.0.0.1:9/fhir?api_key=TOPSECRETKEY123")
    assert "S3cretPassw0rd" not in shown and "TOPSECRETKEY123" not in shown
    assert shown.startswith("http://alice:") and "127.0.0.1:9/fhir?api_key=" in shown
    assert display_url("https://fhir.example.org/r4") == "https://fhir.example.org/r4"
