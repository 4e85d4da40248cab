"""`conformance requirements`: traceability from each requirement to its checks and their last result.

For certification paperwork: which rule is enforced by which check, what the
last run said, and which SHALL rules have no check (with the catalogue's reason
when a rule cannot be tested from outside the server).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.checking.requirements import CATALOGUE, Level, Requirement
from conformance.profiles import registry as profiles
from conformance.runner.results_document import worst


@dataclass(frozen=True)
class Trace:
    requirement: Requirement
    checks: list[tuple[str, str, str]]
    """(profile, check id, last outcome or "not run")."""

    @property
    def outcome(self) -> str:
        ran = [outcome for _, _, outcome in self.checks if outcome != "not run"]
        return worst(ran) if ran else ("no check" if not self.checks else "not run")


class _Collector:
    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from conformance.runner.pytest_plugin import check_id, requirement_of

        for item in session.items:
            rid, _ = requirement_of(item)
            if rid is not None:
                self.found.append((check_id(item), rid))


def checks_by_profile(suites: Path, names: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """(check id, requirement id) of every check, per profile, from collecting the suites (nothing runs)."""
    found = {}
    for name in names:
        collector = _Collector()
        args = [str(suites), "--collect-only", "-q", "-p", "no:cacheprovider", "--conformance-profile", name]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = pytest.main(args, plugins=[collector])
        if code != pytest.ExitCode.OK:
            raise RuntimeError(f"collecting {suites} for profile {name} failed with exit code {code}")
        found[name] = collector.found
    return found


def last_outcomes(results: Path | None) -> tuple[str | None, dict[str, str]]:
    """The profile and check outcomes of a results.json (none when there is no such file)."""
    if results is None or not results.is_file():
        return None, {}
    try:
        document = json.loads(results.read_text(encoding="utf-8"))
        run = document.get("run") or {}
        return run.get("profile"), {str(c["check"]): str(c["outcome"]) for c in document["checks"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, {}


def trace(suites: Path, results: Path | None, profile: str | None = None) -> list[Trace]:
    names = [profiles.get(profile).name] if profile else [p.name for p in profiles.PROFILES]
    collected = checks_by_profile(suites, names)
    ran_profile, outcomes = last_outcomes(results)
    by_requirement: dict[str, list[tuple[str, str, str]]] = {rid: [] for rid in CATALOGUE}
    for name, pairs in collected.items():
        for check, rid in pairs:
            outcome = outcomes.get(check, "not run") if name == ran_profile else "not run"
            by_requirement.setdefault(rid, []).append((name, check, outcome))
    return [Trace(CATALOGUE[rid], by_requirement[rid]) for rid in sorted(CATALOGUE)]


def untested_shall(traces: Iterable[Trace]) -> list[Trace]:
    return [t for t in traces if t.requirement.level is Level.SHALL and not t.checks]


def render_text(traces: list[Trace], results: Path | None) -> str:
    lines = []
    for entry in traces:
        requirement = entry.requirement
        lines.append(f"{requirement.id} [{requirement.level.value}] {requirement.summary}  -> {entry.outcome}")
        for name, check, outcome in entry.checks:
            lines.append(f"    {check} ({name}): {outcome}")
    uncovered = untested_shall(traces)
    with_reason = [t for t in uncovered if t.requirement.untested]
    lines.append("")
    checked = sum(1 for t in traces if t.checks)
    lines.append(f"{len(traces)} requirements, {checked} with checks; last results from {results or 'no run'}")
    lines.append(f"SHALL requirements with no check: {len(uncovered)} ({len(with_reason)} with a stated reason)")
    for entry in uncovered:
        why = entry.requirement.untested or "NO CHECK and no reason stated"
        lines.append(f"  {entry.requirement.id}: {entry.requirement.summary} ({why})")
    return "\n".join(lines) + "\n"


def render_csv(traces: list[Trace]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["requirement", "level", "party", "summary", "spec_url", "profile", "check", "last_outcome", "untested_reason"]
    )
    for entry in traces:
        r = entry.requirement
        rows = entry.checks or [("", "", "no check")]
        for name, check, outcome in rows:
            writer.writerow([r.id, r.level.value, r.party, r.summary, r.url, name, check, outcome, r.untested or ""])
    return out.getvalue()
