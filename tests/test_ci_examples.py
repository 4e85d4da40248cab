"""The CI examples run as far as they can here: their commands, against the reference server on loopback.

What cannot run here is left out and named: the CI services' own steps (checkout, artifact upload) and the
install lines (pip, npm, apt), which need the registries; the suite and Allure are already installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.profiles.smart_backend import CLIENT_ID
from conformance.runner import html_report
from tests.conftest import ROOT, reference_with_suite_client

INSTALLS = re.compile(r"^(pip install|conformance report --install|apt-get )")


def github_run_blocks(path: Path) -> list[str]:
    """The `run: |` blocks of a workflow, in order (a YAML subset: literal blocks, as the example writes them)."""
    blocks: list[str] = []
    current: list[str] | None = None
    indent = 0
    for line in path.read_text().splitlines():
        if current is not None:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                blocks.append("\n".join(current))
                current = None
            else:
                current.append(line.strip())
                continue
        match = re.match(r"^(\s*)run: \|$", line)
        if match:
            current, indent = [], len(match.group(1))
    if current is not None:
        blocks.append("\n".join(current))
    return blocks


def gitlab_script(path: Path, section: str) -> list[str]:
    """The `- command` lines of one section of the job."""
    text = path.read_text()
    body = text.split(f"  {section}:\n", 1)[1]
    commands = []
    for line in body.splitlines():
        if not line.startswith("    - "):
            break
        commands.append(line[len("    - ") :])
    return commands


def _run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    shown = "\n".join(line for line in script.splitlines() if not INSTALLS.match(line))
    return subprocess.run(["bash", "-euo", "pipefail", "-c", shown], env=env, cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def ci_env(tmp_path: Path) -> dict[str, str]:
    import os

    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
        "CONFORMANCE_CLIENT_ID": CLIENT_ID,
        "CONFORMANCE_PROFILE": "smart-backend",
    }


def test_the_github_workflow_commands_run_and_gate_on_regressions(
    tmp_path: Path, keys_dir: Path, ci_env: dict[str, str]
) -> None:
    blocks = github_run_blocks(ROOT / "examples/ci/github-actions.yml")
    assert len(blocks) == 3 and "conformance run" in blocks[1], blocks
    summary = tmp_path / "step-summary.md"
    (tmp_path / "runner").mkdir()
    with reference_with_suite_client(keys_dir) as server:
        env = {
            **ci_env,
            "CONFORMANCE_TARGET_URL": server.fhir_base,
            "CLIENT_KEY_PEM": (keys_dir / "client-rs384.pem").read_text(),
            "RUNNER_TEMP": str(tmp_path / "runner"),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        for attempt in ("first", "with a baseline"):
            for block in blocks:
                done = _run(block, env, tmp_path)
                assert done.returncode == 0, f"{attempt}:\n{block}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            if attempt == "first":
                shutil.copy(tmp_path / "reports/results.json", tmp_path / "reports/baseline.json")
    document = json.loads((tmp_path / "reports/results.json").read_text())
    assert document["run"]["target"] == server.fhir_base and document["comparison"] is not None
    assert summary.read_text().count("## FHIR B2B conformance") == 2
    if html_report.find_allure() is not None:
        assert (tmp_path / "reports/html/index.html").is_file()


def test_the_gitlab_job_commands_run(tmp_path: Path, keys_dir: Path, ci_env: dict[str, str]) -> None:
    config = ROOT / "examples/ci/gitlab-ci.yml"
    script = gitlab_script(config, "script")
    assert any(line.startswith("conformance run") for line in script), script
    assert [line for line in gitlab_script(config, "before_script") if not INSTALLS.match(line)] == []
    with reference_with_suite_client(keys_dir) as server:
        env = {
            **ci_env,
            "STAGING_FHIR_URL": server.fhir_base,
            "CONFORMANCE_TARGET_URL": server.fhir_base,  # the job's `variables:` mapping
            "CLIENT_KEY_PEM": str(keys_dir / "client-rs384.pem"),  # a GitLab "File" variable is a path
        }
        done = _run("\n".join(script), env, tmp_path)
        after = _run("\n".join(gitlab_script(config, "after_script")), env, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| area | pass |" in after.stdout
    assert (tmp_path / "reports/junit.xml").is_file()
