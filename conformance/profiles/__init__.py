"""The profile registry: one object per system, and the one place that knows which systems exist.

Adding a system: write `conformance/profiles/<name>.py` with a `PROFILE`
(see base.Profile), add it to `_MODULES` below, and put its checks in
`suites/<area>/`. Nothing else in the package names a profile.
"""

from __future__ import annotations

import dataclasses

from conformance.core.catalogues import CatalogueError
from conformance.mock.faults import FAULTS, Fault
from conformance.mock.settings import MockSettings
from conformance.profiles import ccde, cerner_carequality, client_secret, smart_backend, udap
from conformance.profiles.base import EmbeddedRun, Profile, ProfileSetupError, ServeOptions

_MODULES = (smart_backend, udap, cerner_carequality, client_secret, ccde)
PROFILES: tuple[Profile, ...] = tuple(module.PROFILE for module in _MODULES)
DEFAULT = PROFILES[0]

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


def validate_faults(faults: dict[str, Fault]) -> None:
    """Every fault row names known profiles (canonical names) and settings the reference server has."""
    for fault in faults.values():
        where = f"faults.toml fault {fault.name}"
        for name in fault.profiles:
            if name not in names():
                known = f"; did you mean {get(name).name}?" if is_known(name) else ""
                raise CatalogueError(f"{where}: unknown profile {name!r}{known}")
        for setting, value in fault.settings:
            if setting not in SERVER_SETTINGS or setting in ("system", "faults"):
                raise CatalogueError(f"{where}: unknown reference-server setting {setting!r}")
            default = SERVER_SETTINGS[setting].default
            if default is not None and not isinstance(value, type(default)):
                raise CatalogueError(f"{where}: setting {setting} needs a {type(default).__name__}, got {value!r}")


validate_faults(FAULTS)


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
