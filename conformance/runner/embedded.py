"""The embedded run: start the reference server for a profile, with the suite's own clients, and point the run at it.

This is what `conformance run` does when no target is configured, so a fresh
install can certify the bundled server (and show what a passing run looks
like) without any setup. What "the suite's own clients" are (keys, JWKS URLs,
a trust community, tenants with secrets) is each profile's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conformance.core.config import TargetConfig
from conformance.flows.target import Target
from conformance.profiles import registry as profiles


def start_embedded(
    profile: str = profiles.DEFAULT.name,
    *,
    faults: Iterable[str] = (),
    variations: Iterable[str] = (),
    keys_dir: Path | None = None,
    template: TargetConfig | None = None,
    mock_settings: dict[str, Any] | None = None,
) -> Target:
    """Start the reference server with the suite's clients registered; return the run's Target. Without a keys
    directory the machine's key cache is used (conformance.runner.key_cache)."""
    if keys_dir is None:
        from conformance.runner.key_cache import embedded_keys_dir

        keys_dir = embedded_keys_dir()
    run = profiles.EmbeddedRun(
        faults=tuple(faults),
        variations=tuple(variations),
        keys_dir=keys_dir,
        template=template,
        mock_settings=dict(mock_settings or {}),
    )
    return profiles.get(profile).start_embedded(run)
