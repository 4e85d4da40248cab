"""The proof that every check can fail: each reference-server fault kills exactly its listed checks.

For every fault the suites run against the embedded server with that fault on.
The checks the fault lists must fail (or warn, for checks below SHALL); every
other check must pass, or be skipped because a killed check was its
precondition. Against the clean server every check must pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.mock.faults import FAULTS
from conformance.runner.fault_coverage import coverage, run_profile
from conformance.runner.verdict import verdict
from tests.conftest import SUITES, SuiteWorker, run_suites

KILLED = ("fail", "warning")
SPARED = ("pass", "skip", "not-applicable", "not-run")
PROFILES = sorted({p for fault in FAULTS.values() for p in fault.profiles})


@pytest.mark.parametrize("profile", PROFILES)
def test_clean_server_passes_every_check(
    profile: str, keys_dir: Path, tmp_path: Path, suite_worker: SuiteWorker
) -> None:
    proc, results = run_suites(tmp_path, profile=run_profile(profile), keys_dir=keys_dir, worker=suite_worker)
    not_passing = {check: r["outcome"] for check, r in results.items() if r["outcome"] != "pass"}
    assert not not_passing, f"checks not passing on the clean server: {not_passing}\n{proc.stdout[-4000:]}"
    assert proc.returncode == 0


CASES = [(fault.name, profile) for fault in FAULTS.values() for profile in fault.profiles]


@pytest.mark.parametrize(("fault", "profile"), CASES, ids=[f"{f}@{p}" for f, p in CASES])
def test_fault_kills_exactly_its_checks(
    fault: str, profile: str, keys_dir: Path, tmp_path: Path, suite_worker: SuiteWorker
) -> None:
    # A fault that stops the server kills the requests in flight beside the killing one: only one at a time names it.
    one_at_a_time = ("--conformance-concurrency", "1") if FAULTS[fault].takes_the_server_down else ()
    proc, results = run_suites(
        tmp_path,
        *one_at_a_time,
        profile=run_profile(profile),
        keys_dir=keys_dir,
        faults=(fault,),
        settings=FAULTS[fault].settings,
        worker=suite_worker,
    )
    listed = {check for check in results if FAULTS[fault].kills_check(check)}
    assert listed, f"fault {fault} lists no check that exists in profile {profile}"
    survivors = {c: results[c]["outcome"] for c in sorted(listed) if results[c]["outcome"] not in KILLED}
    collateral = {c: r["outcome"] for c, r in sorted(results.items()) if c not in listed and r["outcome"] not in SPARED}
    assert not survivors and not collateral, (
        f"fault {fault}: listed checks that did not fail: {survivors}; unlisted checks that failed: {collateral}"
    )
    # The exit code follows the outcomes (conformance.runner.verdict): a fault that takes the server down, or one
    # that leaves most checks unjudged, ends 3; a failed check 1.
    outage = next((r["outage"] for r in results.values() if r.get("outage")), None)
    assert proc.returncode == verdict(results.values(), outage=outage).code


def test_every_check_is_killed_by_some_fault() -> None:
    report = coverage(SUITES)
    assert report["check_count"] > 0
    assert not report["uncovered"], "checks no fault kills:\n" + "\n".join(report["uncovered"])
    assert not report["dead_patterns"], "kill patterns that match no check:\n" + "\n".join(report["dead_patterns"])
