"""Named faults: deliberate misbehaviours the reference server can switch on.

Each fault lists the checks it must kill (check ids, `*` matches any run of
characters). The fault matrix test runs the suites against the server with each
fault on and asserts that exactly those checks fail (or, for checks below SHALL,
warn) while every other check passes or is skipped because a killed check was
its precondition. `conformance faults` prints this table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from conformance.mock.fault_catalogue import FAULT_SETTINGS, ROWS


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    kills: tuple[str, ...]
    profiles: tuple[str, ...] = ("smart-backend",)
    settings: tuple[tuple[str, object], ...] = ()
    """Reference-server settings under which the fault shows (e.g. a discovery shape)."""

    def kills_check(self, check_id: str) -> bool:
        return any(pattern_matches(p, check_id) for p in self.kills)


def pattern_matches(pattern: str, check_id: str) -> bool:
    """Match a check id against a pattern where only `*` is special."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, check_id) is not None


FAULTS: dict[str, Fault] = {}


def _fault(name: str, description: str, kills: Iterable[str], profiles: Iterable[str] = ("smart-backend",)) -> None:
    if name in FAULTS:
        raise ValueError(f"duplicate fault {name}")
    settings = tuple(sorted(FAULT_SETTINGS.get(name, {}).items()))
    FAULTS[name] = Fault(name, description, tuple(kills), tuple(profiles), settings)


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


for _name, _description, _kills, _profiles in ROWS:
    _fault(_name, _description, _kills, _profiles)
