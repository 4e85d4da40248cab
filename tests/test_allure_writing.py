"""Allure result files are written by a thread of their own: all of them, in order, before the run finishes."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from conformance.runner.allure_writing import AllureWriter, report_errors


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


def test_every_write_asked_for_is_on_disk_in_order_once_the_run_waits(tmp_path: Path) -> None:
    writer = AllureWriter()
    log = tmp_path / "log"
    for n in range(300):
        writer.deferred(_append)(log, str(n))
    assert writer.wait() == []
    writer.close()
    assert log.read_text().split() == [str(n) for n in range(300)]


def test_a_write_that_fails_is_said_once_and_the_rest_still_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = AllureWriter()
    writer.deferred(_append)(tmp_path / "missing-dir" / "file", "lost")
    writer.deferred(functools.partial(_append, tmp_path / "kept"))("kept")
    errors = writer.wait()
    writer.close()
    assert len(errors) == 1 and "FileNotFoundError" in errors[0]
    assert (tmp_path / "kept").read_text() == "kept\n"
    report_errors(errors)
    assert "an Allure result file could not be written: FileNotFoundError" in capsys.readouterr().err
    assert writer.wait() == [], "an error is said once"
