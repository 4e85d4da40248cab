"""The proof that no check fails a compliant server: each variation the reference server can choose passes every check.

The mirror of the fault matrix. For every variation and every profile it
applies to, the suites run against the embedded server with the variation on.
No check may fail or break; every check the variation lists must record the
server's choice (a note, or a warning where the alternative misses a SHOULD).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.mock.variations import VARIATIONS
from tests.conftest import SuiteWorker, run_suites

CASES = [(variation.name, profile) for variation in VARIATIONS.values() for profile in variation.profiles]


def test_there_are_enough_variations_to_matter() -> None:
    assert len(VARIATIONS) >= 30, f"only {len(VARIATIONS)} variations"
    assert all(v.allowed_by and v.records for v in VARIATIONS.values())


@pytest.mark.parametrize(("variation", "profile"), CASES, ids=[f"{v}@{p}" for v, p in CASES])
def test_variation_fails_no_check(
    variation: str, profile: str, keys_dir: Path, tmp_path: Path, suite_worker: SuiteWorker
) -> None:
    proc, results = run_suites(
        tmp_path, profile=profile, keys_dir=keys_dir, variations=(variation,), worker=suite_worker
    )
    failing = {c: r["outcome"] for c, r in sorted(results.items()) if r["outcome"] in ("fail", "broken", "not-run")}
    assert not failing, (
        f"variation {variation} (compliant) made checks fail: {failing}; fix the checks\n{proc.stdout[-3000:]}"
    )
    listed = {c: r for c, r in results.items() if VARIATIONS[variation].records_check(c)}
    assert listed, f"variation {variation} lists no check that exists in profile {profile}"
    silent = {c: r["outcome"] for c, r in sorted(listed.items()) if not (r["notes"] or r["outcome"] == "warning")}
    assert not silent, f"variation {variation}: listed checks that did not record the server's choice: {silent}"
    assert proc.returncode == 0
