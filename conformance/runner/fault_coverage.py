"""Which checks each reference-server fault kills, and which checks no fault kills.

Collects the suites (without running them) once per profile and matches the
collected check ids against the fault table's patterns.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from conformance.mock.faults import FAULTS, pattern_matches
from conformance.profiles import registry as profiles


class _Collector:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from conformance.runner.pytest_plugin import check_id

        self.ids = [check_id(item) for item in session.items]


def collect_check_ids(suites: Path, profile: str) -> list[str]:
    """Check ids the suites hold for one run profile."""
    collector = _Collector()
    args = [str(suites), "--collect-only", "-q", "-p", "no:cacheprovider", "--conformance-profile", profile]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = pytest.main(args, plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise RuntimeError(f"collecting {suites} for profile {profile} failed with exit code {code}")
    return collector.ids


def run_profile(name: str) -> str:
    """The canonical name the suites run under, for a profile name or alias."""
    return profiles.get(name).name


def coverage(suites: Path) -> dict[str, Any]:
    names = sorted({p for fault in FAULTS.values() for p in fault.profiles})
    checks = {p: collect_check_ids(suites, run_profile(p)) for p in names}
    faults = []
    dead_patterns = []
    for fault in FAULTS.values():
        killed = sorted({c for p in fault.profiles for c in checks.get(p, []) if fault.kills_check(c)})
        for pattern in fault.kills:
            if not any(pattern_matches(pattern, c) for p in fault.profiles for c in checks.get(p, [])):
                dead_patterns.append(f"{fault.name}: {pattern}")
        faults.append(
            {
                "name": fault.name,
                "description": fault.description,
                "profiles": list(fault.profiles),
                "checks": killed,
            }
        )
    uncovered = []
    for profile, ids in checks.items():
        for check in ids:
            if not any(profile in f.profiles and f.kills_check(check) for f in FAULTS.values()):
                uncovered.append(f"{profile}: {check}")
    return {
        "faults": faults,
        "check_count": sum(len(ids) for ids in checks.values()),
        "uncovered": uncovered,
        "dead_patterns": dead_patterns,
    }
