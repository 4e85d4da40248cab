"""`conformance run` and `pytest suites` end with the same codes (README, Exit codes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.misbehaving_target import MisbehavingTarget

PYTEST = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-q", "-p", "no:cacheprovider"]
CONFORMANCE_RUN = [sys.executable, "-m", "conformance.runner.cli", "run", "-q", "--reports", "out"]


@pytest.mark.parametrize("command", [PYTEST, CONFORMANCE_RUN], ids=["pytest", "conformance-run"])
def test_ctrl_c_ends_a_run_with_130(command: list[str], tmp_path: Path, keys_dir: Path) -> None:
    target = MisbehavingTarget("hang")  # keeps the run busy on its first request

    def flag(name: str) -> str:
        """The pytest plugin's options are namespaced; `conformance run` keeps the short forms."""
        return f"--conformance-{name}" if command is PYTEST else f"--{name}"

    try:
        proc = subprocess.Popen(
            [
                *command,
                flag("target-url"),
                f"{target.origin}/fhir",
                flag("client-id"),
                "c",
                flag("private-key"),
                str(keys_dir / "client-rs384.pem"),
                flag("request-timeout") if command is PYTEST else "--timeout",
                "30",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not target.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.received, "the run never reached the target"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        target.stop()
    assert proc.returncode == 130, output[-2000:]
    assert "Traceback" not in output


def test_a_misconfigured_run_under_xdist_exits_2_with_its_message(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*PYTEST, "-n", "2", "--conformance-profile", "nope"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "target.profile from --conformance-profile must be one of" in proc.stdout + proc.stderr
    assert "[gw" not in proc.stdout, "the workers were started (and crashed) before the error was shown"
