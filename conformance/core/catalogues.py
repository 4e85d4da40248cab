"""Reading the catalogue files shipped in conformance/catalogues/ (requirements, faults).

The catalogues are data so that users and reviewers can read and diff them;
each module that owns one validates its rows on load, so a bad row stops the
program at start-up with the file, the row and the column named.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


class CatalogueError(ValueError):
    """A catalogue row that is missing a column or holds a bad value."""


def load_rows(name: str, table: str) -> list[dict[str, Any]]:
    """The `[[table]]` rows of the catalogue file `name`."""
    text = resources.files("conformance").joinpath("catalogues", name).read_text(encoding="utf-8")
    try:
        rows = tomllib.loads(text).get(table, [])
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{name} is not valid TOML: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CatalogueError(f"{name}: expected [[{table}]] tables")
    return rows


def check_columns(row: dict[str, Any], where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Every required column present, no column the file format does not define."""
    unknown = sorted(set(row) - set(required) - set(optional))
    if unknown:
        raise CatalogueError(f"{where}: unknown column(s) {', '.join(unknown)}")
    missing = [c for c in required if c not in row]
    if missing:
        raise CatalogueError(f"{where}: missing column(s) {', '.join(missing)}")


CATALOGUE_FILES = ("requirements.toml", "faults.toml", "variations.toml")


def catalogue_version() -> str:
    """A short digest of the shipped catalogues: two reports with the same one judged by the same rows."""
    import hashlib

    digest = hashlib.sha256()
    for name in CATALOGUE_FILES:
        digest.update(resources.files("conformance").joinpath("catalogues", name).read_bytes())
    return digest.hexdigest()[:12]
