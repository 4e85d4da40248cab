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

from dataclasses import dataclass
from typing import Any

from conformance.core.catalogues import CatalogueError, load_rows
from conformance.mock.switches import SwitchSet, UnknownSwitch, parse_switch_rows, pattern_matches, strings

CATALOGUE_FILE = "faults.toml"
COLUMNS = ("name", "description", "profiles", "kills")


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    kills: tuple[str, ...]
    profiles: tuple[str, ...]
    settings: tuple[tuple[str, object], ...] = ()
    """Reference-server settings under which the fault shows (e.g. a discovery shape)."""
    takes_the_server_down: bool = False
    """The server stops answering. Requests in flight beside the killing one die with it, so only a run that sends
    one request at a time (`--concurrency 1`) can name the check it kills; the matrix runs it so."""

    def kills_check(self, check_id: str) -> bool:
        return any(pattern_matches(p, check_id) for p in self.kills)


def parse_faults(rows: list[dict[str, Any]], source: str = CATALOGUE_FILE) -> dict[str, Fault]:
    """Validate fault rows (columns and types) and index them by name."""

    def build(row: dict[str, Any], where: str, settings: tuple[tuple[str, object], ...]) -> Fault:
        kills, profiles = strings(row, "kills", where), strings(row, "profiles", where)
        down = row.get("takes_the_server_down", False)
        if not isinstance(down, bool):
            raise CatalogueError(f"{where}: takes_the_server_down must be true or false")
        return Fault(row["name"], row["description"], kills, profiles, settings, down)

    return parse_switch_rows(
        rows,
        source=source,
        kind="fault",
        columns=COLUMNS,
        texts=("description",),
        build=build,
        optional=("takes_the_server_down",),
    )


FAULTS: dict[str, Fault] = parse_faults(load_rows(CATALOGUE_FILE, "fault"))


class UnknownFault(UnknownSwitch):
    pass


class FaultSet(SwitchSet[Fault]):
    """The faults switched on for one server instance."""

    kind, registry, listing, unknown = "fault", FAULTS, "conformance faults", UnknownFault


__all__ = ["FAULTS", "Fault", "FaultSet", "UnknownFault", "parse_faults", "pattern_matches", "strings"]
