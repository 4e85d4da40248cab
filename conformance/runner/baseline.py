"""Comparing a run with an earlier one (`--baseline`): regressions, fixed checks, new checks.

A regression is a check that fails now and did not fail in the baseline, a
check new since the baseline included (the baseline never accepted its
failure). `--fail-on regression` then fails the run only for those: a CI gate
for a target with known, accepted failures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from conformance.core.config import ConfigError, read_small_file

FAILED = frozenset({"fail"})
FINE = frozenset({"pass", "warning", "waived"})


def load_baseline(path: Path) -> dict[str, str]:
    """Check id → outcome from an earlier results.json (schema 1 or 2)."""
    if not path.exists():
        raise ConfigError(f"baseline {path} does not exist (copy an earlier run's results.json there)")
    text = read_small_file(path, "baseline", limit=200 * 1024 * 1024)  # a results.json of thousands of checks
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"baseline {path} cannot be read as results.json: {exc}") from None
    checks = document.get("checks") if isinstance(document, dict) else None
    if not isinstance(checks, list) or not all(isinstance(c, dict) and "check" in c for c in checks):
        raise ConfigError(f"baseline {path} is not a results.json (no checks list)")
    return {str(c["check"]): str(c.get("outcome")) for c in checks}


def compare(baseline: Mapping[str, str], current: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    now = {str(c["check"]): str(c.get("outcome")) for c in current}
    regressions = sorted(c for c, o in now.items() if o in FAILED and baseline.get(c) not in FAILED)
    fixed = sorted(c for c, o in now.items() if o in FINE and baseline.get(c) in FAILED)
    new_checks = sorted(c for c in now if c not in baseline)
    gone = sorted(c for c in baseline if c not in now)
    return {"regressions": regressions, "fixed": fixed, "new_checks": new_checks, "missing": gone}
