"""Key material for embedded runs, made once per machine and reused (it cost ~0.7 s of every run).

The keys and the test trust community only ever meet the embedded reference
server, which registers them afresh each run; nothing outside trusts them. What
each profile needs is its own business (Profile.key_material). They live in the
user's cache (XDG_CACHE_HOME), built in a scratch directory and renamed into
place, so runs side by side (xdist workers, parallel CI jobs) never read a
half-written set; a set that is no longer fresh (certificates about to expire)
is made again. CONFORMANCE_KEY_CACHE=off turns the cache off.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from conformance.profiles import registry as profiles
from conformance.profiles.base import KeyMaterial

LAYOUT = "v2"
"""Bumped when the files a profile expects change, so an old cache is never half-used."""


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fhir-b2b-conformance" / "embedded-keys"


def embedded_keys_dir() -> Path | None:
    """A complete, fresh key directory for embedded runs, or None (cache off or not writable: keys are made in
    memory, as before)."""
    if os.environ.get("CONFORMANCE_KEY_CACHE", "").lower() in ("off", "0", "no", "false"):
        return None
    final = cache_root() / LAYOUT
    if _complete_and_fresh(final):
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="build-", dir=final.parent))
    except OSError:
        return None
    try:
        _make(scratch)
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)  # stale: its certificates are about to expire
        os.rename(scratch, final)
    except OSError:
        # Another run renamed its set into place first: use that one (this one is thrown away).
        shutil.rmtree(scratch, ignore_errors=True)
        return final if _complete_and_fresh(final) else None
    return final


def _materials() -> list[KeyMaterial]:
    """Each profile's key material, once (profiles may share one: UDAP and Carequality share the community)."""
    found: list[KeyMaterial] = []
    for profile in profiles.PROFILES:
        if profile.key_material is not None and profile.key_material not in found:
            found.append(profile.key_material)
    return found


def _make(directory: Path) -> None:
    for material in _materials():
        material.make(directory)
    for path in directory.rglob("*.pem"):
        if "key" in path.name or not path.name.endswith("-cert.pem"):
            path.chmod(0o600)


def _complete_and_fresh(directory: Path) -> bool:
    return directory.is_dir() and all(material.fresh(directory) for material in _materials())
