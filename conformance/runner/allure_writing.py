"""Allure result files written beside the checks, not between them.

allure-pytest writes each result and each attachment as it comes: a file
created, written and renamed per request, response and result, several hundred
a run, each a file-system round trip the next check waits for (on a slow disk
over a millisecond each, a second or two a run). The format needs the separate
files, so they stay; they are written by one thread of their own, in order,
while the checks go on, and the run waits for that thread before it finishes
the report directory (run files, publishing).

The fixture containers allure-pytest also writes are not written at all: the
suite drops them anyway (allure_output.drop_fixture_containers).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOOKS_DEFERRED = ("report_result", "report_attached_data")
"""allure_commons hooks whose file logger work is moved to the writer thread (their arguments are not changed
after the call: a finished result, an attachment's bytes). Attached files are copied at once: their source may
be a temporary file."""


class AllureWriter:
    """One thread that runs the file logger's writes in the order they were asked for."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None] = queue.Queue()
        self._errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="allure-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                write, args, kwargs = job
                try:
                    write(*args, **kwargs)
                except BaseException as exc:  # a full disk must not end the run; it is said when the run waits
                    self._errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def deferred(self, write: Callable[..., Any]) -> Callable[..., None]:
        def later(*args: Any, **kwargs: Any) -> None:
            self._queue.put((write, args, kwargs))

        return later

    def wait(self) -> list[str]:
        """Block until everything asked so far is on disk; the errors met meanwhile (each said once)."""
        self._queue.join()
        errors, self._errors = self._errors, []
        return errors

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)


def write_beside_the_checks(report_dir: str | None) -> AllureWriter | None:
    """Move this run's allure-pytest file writes (those into `report_dir`) to a writer thread; None when
    allure-pytest writes no files this run. A logger of another session (a nested run) is left alone."""
    if not report_dir:
        return None
    try:
        import allure_commons
        from allure_commons.logger import AllureFileLogger
    except ImportError:
        return None
    manager = allure_commons.plugin_manager
    wanted = Path(report_dir).absolute()
    loggers = [
        plugin
        for plugin in manager.get_plugins()
        if isinstance(plugin, AllureFileLogger) and getattr(plugin, "_report_dir", None) == wanted
    ]
    if not loggers:
        return None
    writer = AllureWriter()
    for name in (*HOOKS_DEFERRED, "report_container"):
        for impl in getattr(manager.hook, name).get_hookimpls():
            if any(impl.plugin is logger for logger in loggers):
                impl.function = _not_written if name == "report_container" else writer.deferred(impl.function)
    return writer


def _not_written(container: Any) -> None:
    """A fixture container: set-up/tear-down plumbing, not evidence (see allure_output)."""


def report_errors(errors: list[str]) -> None:
    for error in errors[:3]:
        print(f"conformance: an Allure result file could not be written: {error}", file=sys.stderr, flush=True)
