"""results.json: the run's machine-readable record (schema in conformance/schemas/results.schema.json).

One document per run: a schema version, what the run was made from, the exit
status, counts per outcome, every check with its finding, and a rollup per
requirement (its checks and the worst of their outcomes), for CI gates and
certification paperwork alike.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from conformance.checking.requirements import CATALOGUE

SCHEMA_VERSION = 2
"""1: the unversioned file of earlier releases (exitstatus, traffic, checks). 2: this layout."""

OUTCOMES = ("pass", "warning", "waived", "fail", "broken", "skip", "not-applicable", "not-run")
WORST_FIRST = ("fail", "broken", "not-run", "waived", "warning", "skip", "pass", "not-applicable")
"""A requirement's outcome is its worst check's: a failure outweighs everything, a pass only n/a."""

CHECK_FIELDS = (
    "check",
    "nodeid",
    "area",
    "outcome",
    "requirement",
    "level",
    "party",
    "spec_url",
    "message",
    "expected",
    "actual",
    "duration",
    "warning",
    "warning_rule",
    "waiver",
    "waiver_expired",
    "outage",
    "preflight",
    "requests",
    "retries",
    "waited",
    "notes",
)


def counts(checks: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    seen = Counter(str(c.get("outcome")) for c in checks)
    return {outcome: seen.get(outcome, 0) for outcome in OUTCOMES}


def worst(outcomes: Iterable[str]) -> str:
    present = set(outcomes)  # once: a generator is used up by the first test
    ranked = [o for o in WORST_FIRST if o in present]
    return ranked[0] if ranked else "not-run"


def rollup(checks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each requirement that a check of this run enforces, with its checks and their worst outcome."""
    by_requirement: dict[str, list[Mapping[str, Any]]] = {}
    for check in checks:
        if check.get("requirement"):
            by_requirement.setdefault(str(check["requirement"]), []).append(check)
    rows = []
    for rid in sorted(by_requirement):
        requirement = CATALOGUE.get(rid)
        members = by_requirement[rid]
        rows.append(
            {
                "id": rid,
                "level": requirement.level.value if requirement else None,
                "summary": requirement.summary if requirement else None,
                "spec_url": requirement.url if requirement else None,
                "party": requirement.party if requirement else None,
                "outcome": worst(str(c.get("outcome")) for c in members),
                "checks": [{"check": c["check"], "outcome": c.get("outcome")} for c in members],
            }
        )
    return rows


def build(
    checks: list[dict[str, Any]],
    *,
    run: Mapping[str, Any] | None,
    exitstatus: int,
    unjudged_reason: str | None,
    traffic: Mapping[str, Any],
    waivers: Mapping[str, Any] | None = None,
    comparison: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    ordered = sorted(checks, key=lambda c: c["check"])
    return {
        "schema_version": SCHEMA_VERSION,
        "run": dict(run) if run is not None else None,
        "exitstatus": exitstatus,
        "unjudged_reason": unjudged_reason,
        **traffic,
        "counts": counts(ordered),
        "checks": [{name: check.get(name) for name in CHECK_FIELDS} for check in ordered],
        "requirements": rollup(ordered),
        "waivers": dict(waivers) if waivers is not None else {"applied": [], "expired": [], "stale": []},
        "comparison": dict(comparison) if comparison is not None else None,
    }


def write_atomically(path: Path, text: str) -> None:
    """A reader (a CI step, a second run) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write(path: Path, document: Mapping[str, Any]) -> None:
    write_atomically(path, json.dumps(document, indent=1, ensure_ascii=False))


def schema() -> dict[str, Any]:
    """The JSON Schema of this document, shipped in the package."""
    from importlib import resources

    text = resources.files("conformance").joinpath("schemas", "results.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
