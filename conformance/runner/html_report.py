"""The HTML report: Allure Report 3 (the npm package `allure`) over the run's allure-results.

Allure 3 is a Node program, so it is not a Python dependency: `conformance
report --install` puts a pinned version in the user's cache with npm, or a
user points CONFORMANCE_ALLURE at their own. History (trends, "fixed" and
"regressed" marks) lives in reports/history.jsonl, one line per report built,
and is carried from report to report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conformance.runner.allure_output import CATEGORIES

ALLURE_VERSION = "3.18.0"
"""Pinned: report layout, history format and config keys change between minor versions."""
NODE_NEEDED = "Node.js 20.19 or newer with npm"


class ReportError(Exception):
    """The report cannot be built; the message says what to install or fix, on one line."""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fhir-b2b-conformance" / f"allure-{ALLURE_VERSION}"


def install_command() -> list[str]:
    return ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache_dir()), f"allure@{ALLURE_VERSION}"]


def find_allure() -> Path | None:
    """CONFORMANCE_ALLURE, else the copy `conformance report --install` made."""
    configured = os.environ.get("CONFORMANCE_ALLURE")
    if configured:
        path = Path(configured)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ReportError(f"CONFORMANCE_ALLURE={configured} is not an executable file (Allure 3's `allure`)")
        return path
    installed = cache_dir() / "node_modules" / ".bin" / "allure"
    return installed if installed.is_file() else None


def install() -> Path:
    """Install the pinned Allure 3 into the cache with npm; returns the executable."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise ReportError(f"installing Allure Report 3 needs {NODE_NEEDED} (e.g. `apt-get install nodejs npm`)")
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        done = subprocess.run(install_command(), capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ReportError(f"`{' '.join(install_command())}` did not finish within 10 minutes") from None
    except OSError as exc:
        raise ReportError(f"cannot install Allure Report 3 into {cache_dir()}: {exc.strerror or exc}") from None
    allure = cache_dir() / "node_modules" / ".bin" / "allure"
    if done.returncode != 0 or not allure.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReportError(f"`{' '.join(install_command())}` failed: {last}")
    return allure


def not_installed_message() -> str:
    return (
        f"Allure Report 3 is not installed: run `conformance report --install` (runs `{' '.join(install_command())}`;"
        f" needs {NODE_NEEDED}), or set CONFORMANCE_ALLURE to an Allure 3 `allure` executable"
    )


def config(reports: Path, single_file: bool, name: str) -> dict[str, object]:
    """allurerc for this report: history beside the reports, the suite's categories, grouped by system/area/rule."""
    return {
        "name": name,
        "historyPath": str((reports / "history.jsonl").resolve()),
        "categories": [
            {key: rule[key] for key in ("name", "matchedStatuses", "messageRegex") if key in rule}
            for rule in CATEGORIES
        ],
        "plugins": {
            "awesome": {
                "options": {
                    "singleFile": single_file,
                    "reportName": name,
                    "groupBy": ["epic", "feature", "story"],
                }
            }
        },
    }


def build(reports: Path, *, single_file: bool = False, output: Path | None = None) -> Path:
    """Build the report from reports/allure-results into reports/html (or `output`); returns index.html."""
    results = reports / "allure-results"
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(f"no Allure results in {results}: run `conformance run --reports {reports}` first")
    target = output or reports / "html"
    _check_room(target, reports)  # a bad --output is said first, whether or not Allure is installed
    allure = find_allure()
    if allure is None:
        raise ReportError(not_installed_message())
    if shutil.which("node") is None:
        raise ReportError(f"the HTML report needs {NODE_NEEDED}; `node` is not on PATH")
    _make_room(target, reports)
    name = _report_name(results)
    rc = reports / ".allurerc.json"
    try:
        rc.write_text(json.dumps(config(reports, single_file, name), indent=1), encoding="utf-8")
        done = subprocess.run(
            [str(allure), "generate", str(results), "-o", str(target), "-c", str(rc)],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "NO_COLOR": "1"},
        )
    except subprocess.TimeoutExpired:
        raise ReportError("Allure Report 3 did not finish within 10 minutes") from None
    except OSError as exc:
        raise ReportError(f"cannot run Allure Report 3 ({allure}): {exc.strerror or exc}") from None
    finally:
        rc.unlink(missing_ok=True)
    index = target / "index.html"
    if done.returncode != 0 or not index.is_file():
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise ReportError(f"Allure Report 3 could not build the report (exit {done.returncode}): {last}")
    return index


def _make_room(target: Path, reports: Path) -> None:
    """Replace an earlier report, never anything else: the output directory must be new, empty, or a report."""
    if _check_room(target, reports):
        shutil.rmtree(target)


def _check_room(target: Path, reports: Path) -> bool:
    """Whether `target` holds an earlier report to replace; a ReportError when it may not be written at all."""
    if target.exists() and not target.is_dir():
        raise ReportError(f"--output {target} is a file, not a directory")
    resolved = target.resolve()
    if resolved == reports.resolve() or resolved in reports.resolve().parents:
        raise ReportError(f"--output {target} would overwrite the reports in {reports}; name another directory")
    if target.is_dir() and any(target.iterdir()):
        if not (target / "index.html").is_file():
            raise ReportError(f"--output {target} is not empty and holds no earlier report; name a new directory")
        return True
    return False


def _report_name(results: Path) -> str:
    """'FHIR B2B conformance: <system> @ <target>' from the run's environment.properties."""
    facts: dict[str, str] = {}
    environment = results / "environment.properties"
    if environment.is_file():
        for line in environment.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                facts[key.replace("\\", "")] = value.replace("\\\\", "\\")
    system, target = facts.get("system"), facts.get("target")
    return f"FHIR B2B conformance: {system} @ {target}" if system and target else "FHIR B2B conformance"
