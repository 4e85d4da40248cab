"""The outcome vocabulary of a check, independent of pytest.

A check is a small function over recorded exchanges. It returns nothing when the
server behaves, raises `CheckFailure` when a requirement is broken, `SpecWarning`
when a SHOULD is missed, `NotApplicable` when the target does not claim the
feature, `PreconditionFailed` when an earlier step it depends on did not work, and
`NoResponse` when the harness or the network failed. The pytest plugin maps these
onto pytest and Allure outcomes; nothing here imports pytest.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.core.recording import Exchange


class ConformanceOutcome(Exception):
    """Base of every outcome a check can raise."""


class CheckFailure(AssertionError, ConformanceOutcome):
    """The server broke a requirement: expected one thing, did another."""

    def __init__(
        self,
        title: str,
        *,
        expected: str,
        actual: str,
        exchange: Exchange | None = None,
        requirement: str | None = None,
    ) -> None:
        super().__init__(title)
        self.title = title
        self.expected = expected
        self.actual = actual
        self.exchange = exchange
        self.requirement = requirement


class SpecWarning(ConformanceOutcome):
    """A SHOULD (or de-facto expectation) was missed: the check passes with a warning."""

    def __init__(self, title: str, *, expected: str = "", actual: str = "", exchange: Exchange | None = None):
        super().__init__(title)
        self.title = title
        self.expected = expected
        self.actual = actual
        self.exchange = exchange


class NotApplicable(ConformanceOutcome):
    """The target does not claim the feature this check is about."""


class PreconditionFailed(ConformanceOutcome):
    """An earlier step this check depends on did not succeed, so it cannot run."""


class NoResponse(ConformanceOutcome):
    """The harness or the network failed: no HTTP answer to judge."""

    def __init__(self, message: str, exchange: Exchange | None = None) -> None:
        super().__init__(message)
        self.exchange = exchange


@dataclass
class CheckNotes:
    """Facts a check records about the latitude a server used (e.g. '401 chosen over 400')."""

    items: list[tuple[str, str]] = field(default_factory=list)


_current_notes: contextvars.ContextVar[CheckNotes | None] = contextvars.ContextVar("notes", default=None)


@contextmanager
def collecting_notes() -> Iterator[CheckNotes]:
    """Collect the notes recorded while a check runs (used by the runner)."""
    notes = CheckNotes()
    token = _current_notes.set(notes)
    try:
        yield notes
    finally:
        _current_notes.reset(token)


def note(key: str, value: Any) -> None:
    """Record which compliant answer the server chose; shown in reports."""
    notes = _current_notes.get()
    if notes is not None:
        notes.items.append((key, str(value)))
