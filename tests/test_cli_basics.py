"""The command's basics: --version, --help naming the environment, init, shell completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance import __version__
from conformance.core.catalogues import catalogue_version
from conformance.runner.cli import main
from conformance.runner.configuration import ENVIRONMENT, load_config

CONFORMANCE = [sys.executable, "-m", "conformance.runner.cli"]


def test_version_names_the_suite_and_its_catalogues() -> None:
    proc = subprocess.run([*CONFORMANCE, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"conformance {__version__} (catalogues {catalogue_version()})"


def test_help_lists_every_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    for name, option in ENVIRONMENT.items():
        assert f"  {name}" in shown and option in shown
    assert "CONFORMANCE_CONFIG" in shown and "${NAME}" in shown


def test_init_writes_a_configuration_that_loads_once_filled_in(tmp_path: Path, keys_dir: Path) -> None:
    proc = subprocess.run([*CONFORMANCE, "init"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and "wrote target.toml" in proc.stdout
    written = (tmp_path / "target.toml").read_text()
    assert "[target]" in written and "base_url" in written
    again = subprocess.run([*CONFORMANCE, "init"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert again.returncode == 2 and "target.toml exists; pass --force" in again.stderr
    config = load_config(
        tmp_path / "target.toml",
        {"target.base_url": "https://fhir.example.org/r4", "auth.private_keys": [str(keys_dir / "client-rs384.pem")]},
        environ={},
    )
    assert config.base_url == "https://fhir.example.org/r4"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_completes_commands_flags_and_choices(shell: str, tmp_path: Path) -> None:
    script = subprocess.run([*CONFORMANCE, "completion", shell], capture_output=True, text=True, timeout=60).stdout
    (tmp_path / "c.sh").write_text(script)
    if shell == "zsh":
        assert script.splitlines()[1] == "autoload -U +X bashcompinit && bashcompinit"
        script = "\n".join(line for line in script.splitlines() if "bashcompinit" not in line)
        (tmp_path / "c.sh").write_text(script)

    def complete(*words: str) -> list[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        probe = (
            f'source c.sh; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _conformance; echo "${{COMPREPLY[@]}}"'
        )
        return subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path).stdout.split()

    assert complete("conformance", "re") == ["report", "requirements"]
    assert "--fail-on" in complete("conformance", "run", "--fa")
    assert complete("conformance", "run", "--fail-on", "") == ["failure", "regression"]
    assert complete("conformance", "requirements", "--format", "c") == ["csv"]


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    proc = subprocess.run(
        f"{sys.executable} -m conformance.runner.cli faults | head -1", shell=True, capture_output=True, text=True
    )
    assert proc.stdout.strip() and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("flag", ["--waivers", "--baseline"])
def test_an_endless_input_file_is_one_line(flag: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CONFORMANCE, "run", flag, "/dev/zero"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "larger than" in proc.stderr, proc.stderr
