"""A run's exit code: did the target pass, fail, or could it not be judged?

A run that judged nothing is not a pass: a CI job with the wrong key must not
stay green. `conformance run` and the pytest plugin both end with these codes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNJUDGED = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
"""Ctrl-C: the shell's convention (128 + SIGINT)."""

JUDGED = frozenset({"pass", "fail", "warning", "waived", "not-applicable"})
"""Outcomes that say something about the target (not-applicable: it does not claim the feature; waived: a
failure the user accepted for now)."""
MOST = 0.5
"""Below this share of judged checks, the run could not judge the target."""


@dataclass(frozen=True)
class Verdict:
    code: int
    reason: str | None
    """Why the target could not be judged (exit 3), for the one closing line."""


def verdict(
    results: Iterable[Mapping[str, Any]], *, outage: str | None = None, preflight: str | None = None
) -> Verdict:
    """The exit code from the checks' outcomes and what stopped the run, most telling first."""
    rows = list(results)
    counts = Counter(str(r.get("outcome")) for r in rows)
    if preflight is not None:
        return Verdict(EXIT_UNJUDGED, preflight)
    if outage is not None:
        return Verdict(EXIT_UNJUDGED, outage)
    if counts["fail"]:
        return Verdict(EXIT_FAILED, None)
    judged = sum(counts[o] for o in JUDGED)
    if rows and judged < MOST * len(rows):
        unjudged = len(rows) - judged
        return Verdict(EXIT_UNJUDGED, f"{unjudged} of {len(rows)} checks could not be judged (skipped or broken)")
    if counts["broken"]:
        return Verdict(EXIT_UNJUDGED, f"{counts['broken']} checks could not be judged (broken: harness or network)")
    return Verdict(EXIT_OK, None)
