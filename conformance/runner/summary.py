"""reports/summary.md: the run in a few lines of Markdown, ready to append to a CI step summary as is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLUMNS = (("pass", "pass"), ("warning", "warning"), ("waived", "waived"), ("fail", "fail"), ("broken", "broken"))
SKIPPED = ("skip", "not-run")
VERDICTS = {0: "passed", 1: "failed", 2: "configuration error", 3: "could not be judged", 130: "interrupted"}


def _cell(text: object) -> str:
    """Table cells and list items stay one line: pipes escaped, newlines folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def render(document: Mapping[str, Any]) -> str:
    run = document.get("run") or {}
    checks = list(document.get("checks") or [])
    code = int(document.get("exitstatus", 3))
    lines = [
        f"## FHIR B2B conformance: {_cell(run.get('system', run.get('profile', '?')))}",
        "",
        f"**{VERDICTS.get(code, f'exit {code}')}** (exit {code}) · target `{_cell(run.get('target', '?'))}` · "
        f"profile `{run.get('profile', '?')}` · client `{_cell(run.get('client_id') or '-')}` · "
        f"suite {run.get('suite_version', '?')} (catalogue {run.get('catalogue_version', '?')}) · "
        f"{run.get('started', '')}",
    ]
    if document.get("unjudged_reason"):
        lines += ["", f"The target could not be judged: {_cell(document['unjudged_reason'])}"]
    lines += [
        "",
        "| area | pass | warning | waived | fail | broken | skip | n/a |",
        "|---|---|---|---|---|---|---|---|",
    ]
    areas: dict[str, dict[str, int]] = {}
    for check in checks:
        row = areas.setdefault(str(check.get("area") or "other"), {})
        outcome = str(check.get("outcome"))
        key = "skip" if outcome in SKIPPED else "n/a" if outcome == "not-applicable" else outcome
        row[key] = row.get(key, 0) + 1
    totals: dict[str, int] = {}
    for area in sorted(areas):
        row = areas[area]
        for key, value in row.items():
            totals[key] = totals.get(key, 0) + value
        lines.append(_row(area, row))
    lines.append(_row("**all**", totals))
    lines += _findings("Failures", [c for c in checks if c.get("outcome") in ("fail", "broken")])
    lines += _findings("Waived failures", [c for c in checks if c.get("outcome") == "waived"])
    lines += _findings(
        "Warnings (SHOULD-level misses; these checks passed)", [c for c in checks if c.get("outcome") == "warning"]
    )
    waivers = document.get("waivers") or {}
    for title, key in (
        ("Expired waivers (no longer applied)", "expired"),
        ("Stale waivers (their checks pass)", "stale"),
    ):
        if waivers.get(key):
            lines += ["", f"### {title}", ""]
            lines += [f"- {_cell(w['waiver'])}: {_cell(w['detail'])}" for w in waivers[key]]
    comparison = document.get("comparison")
    if comparison:
        lines += ["", "### Compared with the baseline", ""]
        for key, title in (
            ("regressions", "regressions"),
            ("fixed", "fixed"),
            ("new_checks", "new checks"),
            ("missing", "missing checks"),
        ):
            items = comparison.get(key) or []
            lines.append(
                f"- {len(items)} {title}" + (": " + ", ".join(f"`{_cell(i)}`" for i in items[:20]) if items else "")
            )
    return "\n".join(lines) + "\n"


def _row(area: str, row: Mapping[str, int]) -> str:
    cells = [row.get(key, 0) for key in ("pass", "warning", "waived", "fail", "broken", "skip", "n/a")]
    return f"| {area} | " + " | ".join(str(c) for c in cells) + " |"


def _findings(title: str, checks: list[Mapping[str, Any]]) -> list[str]:
    if not checks:
        return []
    lines = ["", f"### {title}", ""]
    for check in checks:
        finding = check.get("warning") if check.get("outcome") == "warning" else check.get("message")
        waiver = f" (waived: {_cell(check['waiver'])})" if check.get("waiver") else ""
        lines.append(
            f"- **{check.get('requirement') or '-'}** ({check.get('level') or '-'}) `{_cell(check['check'])}`: "
            f"{_cell(finding or check.get('outcome'))}{waiver}"
        )
    return lines
