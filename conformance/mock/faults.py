"""Named faults: deliberate misbehaviours the reference server can switch on.

The fault table is data (catalogues/faults.toml): each row names the fault,
says what the server then does wrong, lists the profiles it applies to and the
checks it must kill (check ids, `*` matches any run of characters). The fault
matrix test runs the suites against the server with each fault on and asserts
that exactly those checks fail (or, for checks below SHALL, warn) while every
other check passes or is skipped because a killed check was its precondition.
`conformance faults` prints this table. Profile names are validated by the
profile registry, settings by the reference server's settings, kill patterns
by tests/test_catalogues.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformance.core.catalogues import CatalogueError, check_columns, load_rows

CATALOGUE_FILE = "faults.toml"
COLUMNS = ("name", "description", "profiles", "kills")
OPTIONAL_COLUMNS = ("settings",)


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    kills: tuple[str, ...]
    profiles: tuple[str, ...]
    settings: tuple[tuple[str, object], ...] = ()
    """Reference-server settings under which the fault shows (e.g. a discovery shape)."""

    def kills_check(self, check_id: str) -> bool:
        return any(pattern_matches(p, check_id) for p in self.kills)


def pattern_matches(pattern: str, check_id: str) -> bool:
    """Match a check id against a pattern where only `*` is special."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, check_id) is not None


def _strings(row: dict[str, Any], column: str, where: str) -> tuple[str, ...]:
    values = row[column]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise CatalogueError(f"{where}: {column} must be a non-empty list of strings")
    return tuple(values)


def parse_faults(rows: list[dict[str, Any]], source: str = CATALOGUE_FILE) -> dict[str, Fault]:
    """Validate fault rows (columns and types) and index them by name."""
    faults: dict[str, Fault] = {}
    for number, row in enumerate(rows, 1):
        where = f"{source} fault #{number} ({row.get('name', '?')})"
        check_columns(row, where, COLUMNS, OPTIONAL_COLUMNS)
        for column in ("name", "description"):
            if not isinstance(row[column], str) or not row[column].strip():
                raise CatalogueError(f"{where}: {column} must be a non-empty string")
        if row["name"] in faults:
            raise CatalogueError(f"{where}: duplicate fault name")
        settings = row.get("settings", {})
        if not isinstance(settings, dict):
            raise CatalogueError(f"{where}: settings must be a table of reference-server settings")
        faults[row["name"]] = Fault(
            row["name"],
            row["description"],
            _strings(row, "kills", where),
            _strings(row, "profiles", where),
            tuple(sorted(settings.items())),
        )
    return faults


FAULTS: dict[str, Fault] = parse_faults(load_rows(CATALOGUE_FILE, "fault"))


class UnknownFault(ValueError):
    pass


class FaultSet:
    """The faults switched on for one server instance."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        names = list(names)
        unknown = [n for n in names if n not in FAULTS]
        if unknown:
            raise UnknownFault(f"unknown fault(s): {', '.join(unknown)}; `conformance faults` lists them")
        self.names = frozenset(names)

    def __contains__(self, name: str) -> bool:
        if name not in FAULTS:
            raise KeyError(f"fault {name!r} is not registered")
        return name in self.names

    def __bool__(self) -> bool:
        return bool(self.names)
