"""The embedded run for CCDE: the reference server plays target and source; no client needs registering."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conformance.config import TargetConfig
from conformance.mock.data import DEFAULT_PATIENT_ID
from conformance.mock.faults import FaultSet
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings
from conformance.target import Target


def start_embedded_ccde(
    *, faults: Iterable[str] = (), template: TargetConfig | None = None, mock_settings: dict[str, Any] | None = None
) -> Target:
    from conformance.embedded import target_for

    settings = MockSettings(profile="ccde", faults=FaultSet(faults), **(mock_settings or {}))
    server = MockServer(settings).start()
    base = template or TargetConfig(base_url=None)
    config = TargetConfig(
        base_url=server.fhir_base,
        profile="ccde",
        patient_id=DEFAULT_PATIENT_ID,
        token_url=settings.token_url,
        timeout=base.timeout,
        max_body_bytes=base.max_body_bytes,
        source="embedded reference server",
    )
    return target_for(server, config)
