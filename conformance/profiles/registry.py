"""The profile registry: one object per system, and the one place that knows which systems exist.

Every module of this package that defines `PROFILE` (see base.Profile) is a
profile; they are found at import, listed by their `order`. Adding a system is
writing `conformance/profiles/<name>.py` and putting its checks in
`suites/<area>/` (plus its rows in the catalogues). Everything else asks this
module instead of naming a profile.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import conformance.profiles
from conformance.core.catalogues import CatalogueError
from conformance.mock.faults import FAULTS, Fault
from conformance.mock.settings import MockSettings
from conformance.mock.variations import VARIATIONS, Variation
from conformance.profiles.base import EmbeddedRun, Profile, ProfileSetupError, ServeOptions


def _discover() -> tuple[Profile, ...]:
    """The PROFILE of every module in conformance/profiles/, by `order`, then name."""
    found = []
    for module_info in pkgutil.iter_modules(conformance.profiles.__path__):
        module = importlib.import_module(f"conformance.profiles.{module_info.name}")
        profile = getattr(module, "PROFILE", None)
        if isinstance(profile, Profile):
            found.append(profile)
    return tuple(sorted(found, key=lambda p: (p.order, p.name)))


PROFILES: tuple[Profile, ...] = _discover()
DEFAULT = PROFILES[0]
"""The profile a run uses when none is named (the lowest `order`)."""

_BY_NAME = {name: profile for profile in PROFILES for name in profile.names}


class UnknownProfile(ValueError):
    """A profile name the registry does not know."""


def names() -> tuple[str, ...]:
    """The canonical profile names, in the order the documentation lists them."""
    return tuple(profile.name for profile in PROFILES)


def get(name: str) -> Profile:
    """The profile called `name` (or one of its aliases)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownProfile(f"unknown profile {name!r}; choose one of {', '.join(names())}") from None


def is_known(name: str) -> bool:
    return name in _BY_NAME


SERVER_SETTINGS = {f.name: f for f in dataclasses.fields(MockSettings)}
"""Reference-server settings a fault row may set (the per-instance ones, not the system or the faults)."""


def validate_faults(faults: dict[str, Fault] | dict[str, Variation], kind: str = "fault") -> None:
    """Every fault or variation row names known profiles (canonical names) and settings the reference server has."""
    for fault in faults.values():
        where = f"{kind}s.toml {kind} {fault.name}"
        for name in fault.profiles:
            if name not in names():
                known = f"; did you mean {get(name).name}?" if is_known(name) else ""
                raise CatalogueError(f"{where}: unknown profile {name!r}{known}")
        for setting, value in fault.settings:
            if setting not in SERVER_SETTINGS or setting in ("system", "faults"):
                raise CatalogueError(f"{where}: unknown reference-server setting {setting!r}")
            default = SERVER_SETTINGS[setting].default
            wrong_bool = isinstance(value, bool) and not isinstance(default, bool)
            if default is not None and (wrong_bool or not isinstance(value, type(default))):
                raise CatalogueError(f"{where}: setting {setting} needs a {type(default).__name__}, got {value!r}")


validate_faults(FAULTS)
validate_faults(VARIATIONS, "variation")


__all__ = [
    "DEFAULT",
    "PROFILES",
    "EmbeddedRun",
    "Profile",
    "ProfileSetupError",
    "ServeOptions",
    "UnknownProfile",
    "get",
    "is_known",
    "names",
    "validate_faults",
]
