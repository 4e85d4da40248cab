"""The plugin's pytest options cannot clash with other plugins: `--profile` and `--config` are taken by common ones
(pytest-profiling, for one), and a clash breaks every pytest run in the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import SUITES

CLASHING_PLUGIN = """
def pytest_addoption(parser):
    parser.addoption("--profile", action="store_true", help="another plugin's --profile")
    parser.addoption("--config", help="another plugin's --config")
    parser.addoption("--target-url", help="another plugin's --target-url")
"""


def _install_clashing_plugin(where: Path) -> dict[str, str]:
    """A plugin registered through the pytest11 entry point, as `pip install` would, on PYTHONPATH."""
    (where / "clashing_plugin.py").write_text(CLASHING_PLUGIN)
    info = where / "clashing_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clashing-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nclashing = clashing_plugin\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")])}


def test_every_option_of_the_plugin_is_namespaced(tmp_path: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    ).stdout
    group = listed.split("FHIR B2B conformance target:", 1)[1].split("\n\n", 1)[0]
    names = re.findall(r"^  (--[\w-]+)", group, re.MULTILINE)
    assert len(names) > 10 and all(name.startswith("--conformance-") for name in names), names


def test_suites_and_conformance_run_work_beside_a_plugin_that_defines_profile(tmp_path: Path) -> None:
    env = _install_clashing_plugin(tmp_path)
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert "another plugin's --profile" in listed.stdout, (
        "the clashing plugin must be active for this test to mean much"
    )
    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITES), "-q", "-p", "no:cacheprovider", "-k", "discovery", "--profile"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert pytest_run.returncode == 0, pytest_run.stdout[-2000:] + pytest_run.stderr[-2000:]
    cli_run = subprocess.run(
        [sys.executable, "-m", "conformance.runner.cli", "run", "-q", "--profile", "ccde", "--reports", "out"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert cli_run.returncode == 0, cli_run.stdout[-2000:] + cli_run.stderr[-2000:]
    assert "profile ccde" in cli_run.stdout
