"""Named variations: compliant alternatives a real server may choose, which the reference server can switch on.

The mirror of the faults. Each row of catalogues/variations.toml names the
variation, cites the sentence that allows it, lists the profiles it applies to
and the checks that must record the server's choice (a note, or a warning when
the alternative misses a SHOULD). The variation matrix runs every profile's
suites with each variation on and asserts that no check fails: a variation that
makes a check fail is a bug in the check. `conformance variations` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.core.catalogues import load_rows
from conformance.mock.switches import SwitchSet, UnknownSwitch, parse_switch_rows, pattern_matches, strings

CATALOGUE_FILE = "variations.toml"
COLUMNS = ("name", "description", "allowed_by", "profiles", "records")


@dataclass(frozen=True)
class Variation:
    name: str
    description: str
    allowed_by: str
    """The sentence (with its section) that makes this behaviour compliant."""
    profiles: tuple[str, ...]
    records: tuple[str, ...]
    """Check-id patterns of the checks that must record the server's choice (note or warning)."""
    settings: tuple[tuple[str, object], ...] = ()

    def records_check(self, check_id: str) -> bool:
        return any(pattern_matches(p, check_id) for p in self.records)


def parse_variations(rows: list[dict[str, Any]], source: str = CATALOGUE_FILE) -> dict[str, Variation]:
    """Validate variation rows (columns and types) and index them by name."""

    def build(row: dict[str, Any], where: str, settings: tuple[tuple[str, object], ...]) -> Variation:
        profiles, records = strings(row, "profiles", where), strings(row, "records", where)
        return Variation(row["name"], row["description"], row["allowed_by"], profiles, records, settings)

    return parse_switch_rows(
        rows, source=source, kind="variation", columns=COLUMNS, texts=("description", "allowed_by"), build=build
    )


VARIATIONS: dict[str, Variation] = parse_variations(load_rows(CATALOGUE_FILE, "variation"))


class UnknownVariation(UnknownSwitch):
    pass


class VariationSet(SwitchSet[Variation]):
    """The variations switched on for one server instance."""

    kind, registry, listing, unknown = "variation", VARIATIONS, "conformance variations", UnknownVariation
