"""Waivers: deviations a vendor knows of and will fix later, reported as waived instead of failing the run.

A waiver names a check (its id, with or without the case in brackets) or a
requirement, optionally a target URL pattern, and always a reason, an owner and
an expiry date. Only failures are waived; a waiver past its expiry no longer
applies (the failure fails, and the report says the waiver expired); a waiver
whose checks all passed is stale. A waiver that names no known check or
requirement is a configuration error: a typo must not silently waive nothing.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conformance.checking.requirements import CATALOGUE
from conformance.core.config import ConfigError, read_small_file

COLUMNS = frozenset({"check", "requirement", "target", "reason", "owner", "expires"})
CHECK_ID = re.compile(r"(?P<file>[\w/]+\.py)::(?P<function>\w+)(?:\[(?P<case>[^\]]+)\])?")


@dataclass(frozen=True)
class Waiver:
    number: int
    """Its position in the file (1-based), so messages can point at it."""
    check: str | None
    requirement: str | None
    target: str | None
    reason: str
    owner: str
    expires: dt.date
    source: str

    @property
    def key(self) -> str:
        return self.check or self.requirement or "?"

    def label(self) -> str:
        return f"waiver #{self.number} ({self.key}) in {self.source}"

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def covers(self, check_id: str, requirement: str | None, target: str) -> bool:
        """Whether this waiver is about that check on that target (expiry aside)."""
        if self.target is not None and not fnmatch.fnmatchcase(target, self.target):
            return False
        if self.requirement is not None:
            return requirement == self.requirement
        assert self.check is not None
        return check_id == self.check or (check_id.split("[", 1)[0] == self.check and "[" not in self.check)

    def describe(self) -> str:
        return f"{self.reason} (owner {self.owner}, expires {self.expires.isoformat()})"


def load_waivers(path: Path, suites_home: Path) -> list[Waiver]:
    """Read and validate a waivers file; every mistake is a ConfigError naming the waiver and the column."""
    text = read_small_file(path, "waivers file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"waivers file {path} is not valid TOML: {exc}") from None
    unknown_tables = set(data) - {"waiver"}
    if unknown_tables:
        raise ConfigError(f"waivers file {path}: unknown table {sorted(unknown_tables)[0]!r}; use [[waiver]]")
    rows = data.get("waiver", [])
    if not isinstance(rows, list):
        raise ConfigError(f"waivers file {path}: waivers are [[waiver]] tables")
    return [_waiver(row, number, str(path), suites_home) for number, row in enumerate(rows, 1)]


def _waiver(row: object, number: int, source: str, suites_home: Path) -> Waiver:
    where = f"waiver #{number} in {source}"
    if not isinstance(row, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(row) - COLUMNS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (keys: {', '.join(sorted(COLUMNS))})")
    for column in ("reason", "owner"):
        if not isinstance(row.get(column), str) or not row[column].strip():
            raise ConfigError(f"{where}: {column} must be a non-empty string")
    expires = row.get("expires")
    if isinstance(expires, dt.datetime) or not isinstance(expires, dt.date):
        raise ConfigError(f"{where}: expires must be a date such as 2027-03-31 (unquoted), got {expires!r}")
    check, requirement, target = row.get("check"), row.get("requirement"), row.get("target")
    if (check is None) == (requirement is None):
        raise ConfigError(f"{where}: name exactly one of check or requirement")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise ConfigError(f"{where}: target must be a URL pattern such as 'https://staging.example.org/*'")
    if requirement is not None:
        if not isinstance(requirement, str) or requirement not in CATALOGUE:
            raise ConfigError(f"{where}: requirement {requirement!r} is not in the catalogue")
    else:
        _known_check(check, where, suites_home)
    return Waiver(number, check, requirement, target, row["reason"], row["owner"], expires, source)


def _known_check(check: object, where: str, suites_home: Path) -> None:
    """The check's file and function must exist (its case, if named, is checked once the suites are collected)."""
    match = CHECK_ID.fullmatch(check) if isinstance(check, str) else None
    if match is None:
        raise ConfigError(f"{where}: check {check!r} is not a check id such as 'token/test_x.py::test_y[case]'")
    if not (Path(match["file"]).name.startswith("test_") and match["function"].startswith("test")):
        # A helper or fixture (assertion_cases.py::_simple, ::perform) exists but is never a check: it waives nothing.
        raise ConfigError(f"{where}: check {check!r} names no check (checks are test* functions in test_*.py files)")
    file = suites_home / match["file"]
    if not file.is_file():
        raise ConfigError(f"{where}: check {check!r} names no suite file (no {match['file']} under suites/)")
    if not re.search(rf"^def {match['function']}\(", file.read_text(encoding="utf-8"), re.MULTILINE):
        raise ConfigError(f"{where}: check {check!r}: {match['file']} has no check {match['function']}")


def unknown_cases(waivers: Iterable[Waiver], collected: set[str], collected_files: set[str]) -> list[str]:
    """Waivers naming a case that does not exist in a suite file that was collected: configuration errors."""
    problems = []
    for waiver in waivers:
        if waiver.check is None or "[" not in waiver.check:
            continue
        if waiver.check.split("::", 1)[0] in collected_files and waiver.check not in collected:
            problems.append(f"{waiver.label()}: no such check (the case in brackets does not exist)")
    return problems


@dataclass(frozen=True)
class Decision:
    """What the waivers say about one failed check."""

    waiver: Waiver | None
    """The waiver that applies (the failure is waived)."""
    expired: Waiver | None
    """A waiver that would have applied, but has expired (the failure stands)."""


def decide(waivers: Iterable[Waiver], check_id: str, requirement: str | None, target: str, today: dt.date) -> Decision:
    covering = [w for w in waivers if w.covers(check_id, requirement, target)]
    live = next((w for w in covering if not w.expired(today)), None)
    expired = next((w for w in covering if w.expired(today)), None)
    return Decision(live, None if live else expired)


def stale(waivers: Iterable[Waiver], results: Iterable[dict[str, object]], target: str, today: dt.date) -> list[Waiver]:
    """Live waivers for this target whose checks ran and none failed: the deviation is fixed, drop the waiver."""
    rows = list(results)
    found = []
    for waiver in waivers:
        if waiver.expired(today) or (waiver.target is not None and not fnmatch.fnmatchcase(target, waiver.target)):
            continue
        covered = [r for r in rows if waiver.covers(str(r["check"]), _text(r.get("requirement")), target)]
        if covered and all(r.get("outcome") in ("pass", "warning") for r in covered):
            found.append(waiver)
    return found


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
