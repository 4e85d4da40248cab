"""Embedded runs' keys are made once per machine, completely or not at all, and made again before they expire."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from conformance.profiles import udap_community
from conformance.runner import key_cache


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CONFORMANCE_KEY_CACHE", raising=False)
    return tmp_path


def test_keys_are_made_once_and_then_reused(cache_home: Path) -> None:
    first = key_cache.embedded_keys_dir()
    assert first is not None and first.is_relative_to(cache_home)
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*.pem")}
    assert len(stamps) > 20
    assert key_cache.embedded_keys_dir() == first
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*.pem")} == stamps, "a fresh set is not made again"
    assert all((p.stat().st_mode & 0o077) == 0 for p in first.rglob("*.pem") if "key" in p.name)


def test_a_set_about_to_expire_is_made_again(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = key_cache.embedded_keys_dir()
    assert first is not None
    before = (first / "udap/client-cert.pem").read_bytes()
    monkeypatch.setattr(udap_community, "FRESH_FOR", timedelta(days=400))  # longer than a leaf lives
    again = key_cache.embedded_keys_dir()
    assert again == first and (first / "udap/client-cert.pem").read_bytes() != before


def test_an_incomplete_set_is_never_used(cache_home: Path) -> None:
    first = key_cache.embedded_keys_dir()
    assert first is not None
    (first / "client-rs384.pem").unlink()
    again = key_cache.embedded_keys_dir()
    assert again is not None and (again / "client-rs384.pem").is_file()


def test_the_cache_can_be_turned_off_and_survives_an_unwritable_home(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFORMANCE_KEY_CACHE", "off")
    assert key_cache.embedded_keys_dir() is None
    monkeypatch.delenv("CONFORMANCE_KEY_CACHE")
    (cache_home / "fhir-b2b-conformance").write_text("a file where the directory should be")
    assert key_cache.embedded_keys_dir() is None


def test_runs_side_by_side_share_one_complete_set(cache_home: Path) -> None:
    probe = "from conformance.runner.key_cache import embedded_keys_dir as d; print(d())"
    env = {"XDG_CACHE_HOME": str(cache_home), "PATH": "/usr/bin:/bin"}
    racers = [
        subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True, env=env) for _ in range(3)
    ]
    answers = {racer.communicate(timeout=120)[0].strip() for racer in racers}
    assert len(answers) == 1 and answers != {"None"}, answers
    chosen = Path(answers.pop())
    assert key_cache._complete_and_fresh(chosen)
    assert [p.name for p in chosen.parent.iterdir()] == [chosen.name], "no scratch directory is left behind"
