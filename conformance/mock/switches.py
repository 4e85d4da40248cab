"""What faults and variations share: named switches read from a catalogue file, and the set a server turns on."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from conformance.core.catalogues import CatalogueError, check_columns

Row = TypeVar("Row")


def pattern_matches(pattern: str, check_id: str) -> bool:
    """Match a check id against a pattern where only `*` is special."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, check_id) is not None


def strings(row: dict[str, Any], column: str, where: str) -> tuple[str, ...]:
    values = row[column]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise CatalogueError(f"{where}: {column} must be a non-empty list of strings")
    return tuple(values)


def parse_switch_rows(
    rows: list[dict[str, Any]],
    *,
    source: str,
    kind: str,
    columns: tuple[str, ...],
    texts: tuple[str, ...],
    build: Callable[[dict[str, Any], str, tuple[tuple[str, object], ...]], Row],
    optional: tuple[str, ...] = (),
) -> dict[str, Row]:
    """Validate the common columns (name, texts, settings) and build each row, indexed by name."""
    parsed: dict[str, Row] = {}
    for number, row in enumerate(rows, 1):
        where = f"{source} {kind} #{number} ({row.get('name', '?')})"
        check_columns(row, where, columns, ("settings", *optional))
        for column in ("name", *texts):
            if not isinstance(row[column], str) or not row[column].strip():
                raise CatalogueError(f"{where}: {column} must be a non-empty string")
        if row["name"] in parsed:
            raise CatalogueError(f"{where}: duplicate {kind} name")
        settings = row.get("settings", {})
        if not isinstance(settings, dict):
            raise CatalogueError(f"{where}: settings must be a table of reference-server settings")
        parsed[row["name"]] = build(row, where, tuple(sorted(settings.items())))
    return parsed


class UnknownSwitch(ValueError):
    """A fault or variation name that the catalogue does not hold."""


class SwitchSet(Generic[Row]):
    """The switches of one kind turned on for one server instance."""

    kind = "switch"
    registry: Mapping[str, Row] = {}
    listing = "conformance faults"
    unknown: type[UnknownSwitch] = UnknownSwitch

    def __init__(self, names: Iterable[str] = ()) -> None:
        names = list(names)
        missing = [n for n in names if n not in self.registry]
        if missing:
            raise self.unknown(f"unknown {self.kind}(s): {', '.join(missing)}; `{self.listing}` lists them")
        self.names = frozenset(names)

    def __contains__(self, name: str) -> bool:
        if name not in self.registry:
            raise KeyError(f"{self.kind} {name!r} is not registered")
        return name in self.names

    def __bool__(self) -> bool:
        return bool(self.names)
