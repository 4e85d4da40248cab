"""Fixtures shared by the project's own tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.embedded import embedded_keys

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"


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
