"""What the suite writes for Allure: stable identities, readable labels, one-line messages, run files, no noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE = [sys.executable, "-m", "conformance.runner.cli"]
SELECTION = "test_no_token_is_issued or test_capability_statement"
FAULTS = ("--fault", "lenient-required-claims", "--fault", "no-smart-security-service")
CI = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.example",
    "GITHUB_REPOSITORY": "org/repo",
    "GITHUB_RUN_ID": "77",
    "GITHUB_RUN_NUMBER": "5",
    "GITHUB_WORKFLOW": "conformance",
}


def _run(where: Path, *extra: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [*CONFORMANCE, "run", "-q", "--reports", "out", "-k", SELECTION, *extra],
        capture_output=True,
        text=True,
        cwd=where,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode in (0, 1), proc.stdout[-3000:]
    return [json.loads(p.read_text()) for p in (where / "out/allure-results").glob("*-result.json")]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    where = tmp_path_factory.mktemp("allure")
    return where / "out/allure-results", _run(where, *FAULTS, env=CI)


def _identities(found: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return sorted((r["fullName"], r["historyId"], r["testCaseId"], json.dumps(r.get("parameters"))) for r in found)


def test_two_runs_give_identical_history_ids(tmp_path: Path, results: tuple[Path, list[dict[str, Any]]]) -> None:
    _, first = results
    (tmp_path / "b").mkdir()
    second = _run(tmp_path / "b", *FAULTS)  # another directory, another process, no CI variables
    assert len(first) > 40 and _identities(first) == _identities(second)
    assert len({r["historyId"] for r in first}) == len(first), "every check keeps a history of its own"


def test_parameters_are_case_ids_never_object_reprs(results: tuple[Path, list[dict[str, Any]]]) -> None:
    _, found = results
    values = [p["value"] for r in found for p in r.get("parameters", [])]
    assert values and not any("0x" in v or "object at" in v or "(" in v for v in values), values[:5]
    missing_jti = next(r for r in found if r["fullName"].endswith("test_no_token_is_issued[missing-jti]"))
    assert missing_jti["parameters"] == [{"name": "case", "value": "missing-jti"}]


def test_labels_group_by_system_area_and_requirement(results: tuple[Path, list[dict[str, Any]]]) -> None:
    _, found = results
    check = next(r for r in found if r["fullName"].endswith("test_no_token_is_issued[missing-jti]"))
    labels = {(label["name"], label["value"]) for label in check["labels"]}
    assert ("epic", "SMART Backend Services (private_key_jwt)") in labels
    assert ("feature", "Token") in labels
    assert ("story", "SBS-AERR-27: an assertion without jti is refused (replay check needs it)") in labels
    assert ("severity", "critical") in labels and ("party", "authorization server") in labels
    assert ("tag", "shall") in labels
    assert check["name"] == "No token is issued [missing-jti]"
    assert check["links"][0]["url"].startswith("https://hl7.org/fhir/smart-app-launch/")


def test_the_error_box_holds_the_finding_and_the_trace_the_rest(results: tuple[Path, list[dict[str, Any]]]) -> None:
    _, found = results
    failed = next(r for r in found if r["fullName"].endswith("test_no_token_is_issued[missing-jti]"))
    message, trace = failed["statusDetails"]["message"], failed["statusDetails"]["trace"]
    assert "\n" not in message and "CheckFailure" not in message
    assert message.startswith("a token request with a defect was accepted: jti is left out (expected: refusal")
    assert "reproduce: curl " in trace and "rule (binds the authorization server)" in trace


def test_a_warning_is_a_tagged_pass_with_a_warning_message(results: tuple[Path, list[dict[str, Any]]]) -> None:
    _, found = results
    warned = [r for r in found if {"name": "tag", "value": "warning"} in r["labels"]]
    assert warned, "the fault's SHOULD miss must show"
    for result in warned:
        assert result["status"] == "passed"
        assert result["statusDetails"]["message"].startswith("warning: ")


def test_run_files_describe_the_run(results: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, _ = results
    environment = dict(
        line.split("=", 1) for line in (directory / "environment.properties").read_text().splitlines() if line
    )
    assert environment["target"] == "embedded reference server"
    assert environment["profile"] == "smart-backend" and environment["client_id"] == "conformance-client"
    assert environment["faults"] == "lenient-required-claims, no-smart-security-service"
    assert environment["ci_build"] == "https://github.example/org/repo/actions/runs/77"
    executor = json.loads((directory / "executor.json").read_text())
    assert executor["buildUrl"] == "https://github.example/org/repo/actions/runs/77" and executor["type"] == "github"
    names = [c["name"] for c in json.loads((directory / "categories.json").read_text())]
    assert any(n.startswith("Warnings") for n in names) and any(n.startswith("Spec violations") for n in names)


def test_no_set_up_or_tear_down_entries(results: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, found = results
    assert not list(directory.glob("*-container.json"))
    assert not any(r.get("befores") or r.get("afters") for r in found)


def _sources(item: dict[str, Any]) -> list[str]:
    found = [a["source"] for a in item.get("attachments", [])]
    for step in item.get("steps", []):
        found += _sources(step)
    return found


def test_an_exchange_cited_by_several_checks_is_written_once(results: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, found = results
    cited = [source for r in found for source in _sources(r)]
    on_disk = {p.name for p in directory.glob("*-attachment.txt")}
    assert set(cited) == on_disk, "every citation names a file that was written, and every file is cited"
    assert len(cited) > len(on_disk), "the discovery exchange, cited by several checks, is one file"


def test_a_secret_learnt_later_gets_the_exchange_rendered_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import allure
    from allure_commons.model2 import Attachment

    from conformance.runner.allure_output import SharedAttachments

    rendered: list[str] = []

    class Reporter:
        def __init__(self) -> None:
            from allure_commons.model2 import TestStepResult

            self.step = TestStepResult(name="step")

        def get_last_item(self, item_type: type) -> Any:
            return self.step

    class Listener:
        allure_logger = Reporter()

    class PluginManager:
        def get_plugin(self, name: str) -> Any:
            return Listener()

    class Config:
        pluginmanager = PluginManager()

    written: list[str] = []

    def attach(body: str, name: str, attachment_type: Any) -> None:  # what allure-pytest does, minus the file
        written.append(f"{len(written)}-attachment.txt")
        Listener.allure_logger.step.attachments.append(Attachment(name=name, source=written[-1]))

    monkeypatch.setattr(allure, "attach", attach)
    shared = SharedAttachments()
    config: Any = Config()

    def render() -> str:
        rendered.append("x")
        return "text"

    for key in ((1, "request", 5), (1, "request", 5), (1, "request", 6)):
        shared.attach(config, key, "request", render)
    assert rendered == ["x", "x"], "the same key is rendered once; a key with more known secrets again"
    cited = [a.source for a in Listener.allure_logger.step.attachments]
    assert cited == ["0-attachment.txt", "0-attachment.txt", "1-attachment.txt"]
