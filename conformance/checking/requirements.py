"""The requirement catalogue: the IDs, levels and spec links every check carries.

The rows are data (catalogues/requirements.toml, shipped in the wheel), read
and validated once at import: a malformed row stops the run before any check
does. A check's verdict follows its level: a SHALL miss fails, anything weaker
warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conformance.core.catalogues import CatalogueError, check_columns, load_rows

CATALOGUE_FILE = "requirements.toml"


class Level(StrEnum):
    SHALL = "SHALL"
    SHOULD = "SHOULD"
    MAY = "MAY"
    DE_FACTO = "de-facto"

    @property
    def fails_run(self) -> bool:
        """Only SHALL misses fail; the others are reported as warnings."""
        return self is Level.SHALL


PARTIES = ("authorization server", "resource server", "client", "exchange")
"""Who a requirement's sentence binds. A check against a server fails only where the server is bound."""


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    summary: str
    url: str
    sentence: str
    """The rule, quoted or closely paraphrased, with its section."""
    party: str
    """Who the sentence binds: one of PARTIES."""
    untested: str | None = None
    """Why no check enforces it (a rule that cannot be tested from outside the server), for the coverage report."""


COLUMNS = ("id", "level", "summary", "sentence", "party", "url")
OPTIONAL_COLUMNS = ("untested",)


def parse_requirements(rows: list[dict[str, Any]], source: str = CATALOGUE_FILE) -> dict[str, Requirement]:
    """Validate requirement rows and index them by id."""
    catalogue: dict[str, Requirement] = {}
    for number, row in enumerate(rows, 1):
        where = f"{source} requirement #{number} ({row.get('id', '?')})"
        check_columns(row, where, COLUMNS, OPTIONAL_COLUMNS)
        if "untested" in row and (not isinstance(row["untested"], str) or not row["untested"].strip()):
            raise CatalogueError(f"{where}: untested must be a non-empty string (why no check can enforce it)")
        for column in COLUMNS:
            if not isinstance(row.get(column), str) or not row[column].strip():
                raise CatalogueError(f"{where}: {column} must be a non-empty string")
        if row["id"] in catalogue:
            raise CatalogueError(f"{where}: duplicate id")
        try:
            level = Level(row["level"])
        except ValueError:
            raise CatalogueError(
                f"{where}: level must be one of {', '.join(level.value for level in Level)}, got {row['level']!r}"
            ) from None
        if not row["url"].startswith(("https://", "http://")):
            raise CatalogueError(f"{where}: url must be an absolute http(s) URL")
        if row["party"] not in PARTIES:
            raise CatalogueError(f"{where}: party must be one of {', '.join(PARTIES)}, got {row['party']!r}")
        catalogue[row["id"]] = Requirement(
            row["id"], level, row["summary"], row["url"], row["sentence"], row["party"], row.get("untested")
        )
    return catalogue


CATALOGUE: dict[str, Requirement] = parse_requirements(load_rows(CATALOGUE_FILE, "requirement"))


def lookup(requirement_id: str) -> Requirement:
    """Return the catalogue row; an unknown ID is a programming error in a suite."""
    try:
        return CATALOGUE[requirement_id]
    except KeyError:
        raise KeyError(
            f"unknown requirement id {requirement_id!r}; add it to conformance/catalogues/{CATALOGUE_FILE}"
        ) from None
