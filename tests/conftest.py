"""Fixtures shared by the project's own tests."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.embedded import embedded_keys

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's tests talk to 127.0.0.1 only; any other connection attempt fails the test."""
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            try:
                allowed = ipaddress.ip_address(host).is_loopback
            except ValueError:
                allowed = host == "localhost"
            if not allowed:
                raise OSError(f"tests may only connect to loopback addresses, not {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys generated once and shared by every embedded run of the session."""
    directory = tmp_path_factory.mktemp("keys")
    embedded_keys(directory)
    return directory


def run_suites(
    out_dir: Path,
    *args: str,
    profile: str = "smart-backend",
    keys_dir: Path | None = None,
    faults: tuple[str, ...] = (),
    timeout: float = 600,
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    """Run the suites in a subprocess (no Allure, no JUnit) and return outcomes by check id."""
    results = out_dir / "results.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(SUITES),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:allure_pytest",
        "-p",
        "no:junitxml",
        "-p",
        "no:randomly",
        "--profile",
        profile,
        "--conformance-results",
        str(results),
    ]
    if keys_dir is not None:
        command += ["--embedded-keys", str(keys_dir)]
    for fault in faults:
        command += ["--mock-fault", fault]
    command += list(args)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=out_dir)
    if not results.exists():
        raise AssertionError(
            f"the suites wrote no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    checks = json.loads(results.read_text())["checks"]
    return proc, {c["check"]: c for c in checks}
