"""What the suite adds to allure-pytest's results so the report reads well and its history holds.

- Identities: allure-pytest hashes the repr of a parametrised check's case
  object into the history id, and that repr holds memory addresses, so every
  run looked new. Here the history id is the target identity, the profile and
  the check id; the parameter value is the case id.
- Labels: epic = the system (profile title), feature = the area, story = the
  requirement, a title from the check's name, severity from the level, the
  binding party, a link to the spec section.
- Messages: the error box (and Categories) get the one-line finding with
  expected and actual; the full text with the curl line stays in the trace.
- Evidence: an exchange several checks cite is rendered and written once;
  each check's step names the same attachment file (a run cites its ~100
  exchanges about 350 times).
- Run files: environment.properties, executor.json and categories.json.
- Noise: allure-pytest records every fixture set-up and finaliser as
  before/after entries in *-container.json files (with pytest >= 9.1 the
  finalisers appear as `<lambda>` entries of unknown status; upstream fix
  pending). The suite's fixtures are plumbing, not evidence: the run drops
  those container files once every result is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from conformance.checking.requirements import Level, Requirement

LEVEL_TAGS = {Level.SHALL: "shall", Level.SHOULD: "should", Level.MAY: "may", Level.DE_FACTO: "de_facto"}
"""The level markers the plugin puts on each check, which allure-pytest turns into tags (filter: tag shall)."""
SEVERITY = {Level.SHALL: "critical", Level.SHOULD: "normal", Level.MAY: "minor", Level.DE_FACTO: "minor"}
WARNING_PREFIX = "warning: "
WAIVED_PREFIX = "waived: "

CATEGORIES = [
    # Regexes without inline flags: Allure 2 reads them as Java, Allure 3 as JavaScript. Messages are one line.
    {
        "name": "Target taken down by a request",
        "matchedStatuses": ["failed"],
        "messageRegex": ".*stopped answering.*",
    },
    {"name": "Spec violations (a requirement the server must meet)", "matchedStatuses": ["failed"]},
    {
        "name": "Target unreachable or unusable (not judged)",
        "matchedStatuses": ["broken"],
        "messageRegex": ".*(could not be reached|no usable answer|stopped answering|could not connect|timed out"
        "|timeout|connection|refused|reset|no response).*",
    },
    {"name": "Suite or harness errors (please report them)", "matchedStatuses": ["broken"]},
    {
        "name": "Warnings (SHOULD-level misses; the checks passed)",
        "matchedStatuses": ["passed"],
        "messageRegex": "warning: .*",
    },
    {"name": "Waived deviations", "matchedStatuses": ["skipped"], "messageRegex": ".*waived: .*"},
    {
        "name": "Not run (configuration, preflight or an outage)",
        "matchedStatuses": ["skipped"],
        "messageRegex": ".*not run: .*",
    },
]


def _listener(config: pytest.Config) -> Any:
    return config.pluginmanager.get_plugin("allure_listener")


class SharedAttachments:
    """Text attachments by key: the first citation writes the file, later ones point their step at it."""

    def __init__(self) -> None:
        self._sources: dict[Any, str] = {}

    def attach(self, config: pytest.Config, key: Any, name: str, render: Callable[[], str]) -> None:
        """Attach `render()` to the current step as `name`; nothing is rendered when Allure is off. `key` must
        change whenever the text would (the caller includes what the redactor knows)."""
        import allure
        from allure_commons.model2 import Attachment, ExecutableItem

        listener = _listener(config)
        if listener is None:
            return
        reporter = listener.allure_logger
        source = self._sources.get(key)
        step = reporter.get_last_item(ExecutableItem)
        if source is not None and step is not None:
            step.attachments.append(Attachment(name=name, source=source, type=allure.attachment_type.TEXT.mime_type))
            return
        allure.attach(render(), name, allure.attachment_type.TEXT)
        step = reporter.get_last_item(ExecutableItem)
        if step is not None and step.attachments:
            self._sources[key] = step.attachments[-1].source


def open_result(item: pytest.Item) -> Any:
    """allure-pytest's result for the running check (None when Allure is not enabled)."""
    listener = _listener(item.config)
    return listener.allure_logger.get_test(None) if listener is not None else None


def area_title(area: str) -> str:
    """The area's name from its package docstring ("Checks: token." → "Token")."""
    import importlib

    try:
        doc = (importlib.import_module(f"suites.{area}").__doc__ or "").strip().splitlines()[0]
    except (ImportError, IndexError):
        return area
    title = doc.removeprefix("Checks:").strip().rstrip(".")
    return title[:1].upper() + title[1:] if title else area


def check_title(item: pytest.Item) -> str:
    """The check's name as a sentence: test_token_is_refused[expired] → "Token is refused [expired]"."""
    name = getattr(item, "originalname", item.name).removeprefix("test_").replace("_", " ")
    case = getattr(getattr(item, "callspec", None), "id", None)
    sentence = name[:1].upper() + name[1:]
    return f"{sentence} [{case}]" if case else sentence


def label(item: pytest.Item, requirement: Requirement, system: str, area: str, check_id: str) -> None:
    """Labels that group the check by system, area and requirement (Allure's Behaviors view)."""
    import allure

    level = requirement.level
    allure.dynamic.epic(system)
    allure.dynamic.feature(area_title(area))
    allure.dynamic.story(f"{requirement.id}: {requirement.summary}")
    allure.dynamic.title(check_title(item))
    allure.dynamic.label("requirement", requirement.id)
    allure.dynamic.label("level", level.value)
    allure.dynamic.label("party", requirement.party)
    allure.dynamic.label("check_id", check_id)
    allure.dynamic.severity(SEVERITY[level])
    allure.dynamic.link(requirement.url, name=f"{requirement.id}: {requirement.summary}")


def relabel(item: pytest.Item, requirement: Requirement) -> None:
    """Give the open result the requirement that decided it (an outage's, not the check's own)."""
    result = open_result(item)
    if result is None:
        return
    from allure_commons.model2 import Label, Link

    replaced = {"requirement", "level", "severity", "story", "party"}
    level_tags = set(LEVEL_TAGS.values())
    result.labels = [
        existing
        for existing in result.labels
        if existing.name not in replaced and not (existing.name == "tag" and existing.value in level_tags)
    ]
    result.labels += [
        Label("requirement", requirement.id),
        Label("level", requirement.level.value),
        Label("party", requirement.party),
        Label("tag", LEVEL_TAGS[requirement.level]),
        Label("severity", SEVERITY[requirement.level]),
        Label("story", f"{requirement.id}: {requirement.summary}"),
    ]
    result.links = [link for link in result.links if link.type != "link"]
    result.links.append(Link("link", requirement.url, f"{requirement.id}: {requirement.summary}"))


def history_id(target_identity: str, profile: str, check_id: str) -> str:
    return hashlib.md5(f"{target_identity}\n{profile}\n{check_id}".encode()).hexdigest()


def settle(
    item: pytest.Item,
    *,
    target_identity: str,
    profile: str,
    check_id: str,
    message: str | None,
    trace: str | None = None,
) -> None:
    """At the check's last report: stable ids, case ids as parameter values, the one-line message, tags."""
    result = open_result(item)
    if result is None:
        return
    result.historyId = history_id(target_identity, profile, check_id)
    # Allure 3 keys history on testCaseId plus the parameters: the check without its case, on this target.
    result.testCaseId = history_id(target_identity, profile, check_id.split("[", 1)[0])
    result.fullName = check_id
    params = getattr(getattr(item, "callspec", None), "params", {})
    for parameter in result.parameters:
        value = params.get(parameter.name)
        case_id = getattr(value, "id", None)
        if isinstance(case_id, str):
            parameter.value = case_id
    if message is not None:
        from allure_commons.model2 import StatusDetails

        details = result.statusDetails or StatusDetails()
        details.message = message
        if trace is not None:
            details.trace = trace
        result.statusDetails = details


def add_tag(item: pytest.Item, tag: str) -> None:
    result = open_result(item)
    if result is not None:
        from allure_commons.model2 import Label

        result.labels.append(Label("tag", tag))


def write_run_files(directory: Path, properties: Iterable[tuple[str, str]], executor: dict[str, str]) -> None:
    """environment.properties, executor.json and categories.json beside the results."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"{_escape(k, key=True)}={_escape(v)}" for k, v in properties]
    (directory / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "categories.json").write_text(json.dumps(CATEGORIES, indent=1), encoding="utf-8")
    if executor:
        document = {
            "name": executor.get("name", "CI"),
            "type": executor.get("type", "generic"),
            "buildName": executor.get("job", executor.get("name", "")),
            "buildOrder": executor.get("build_number", ""),
            "buildUrl": executor.get("build_url", ""),
            "reportName": "FHIR B2B conformance",
        }
        (directory / "executor.json").write_text(json.dumps(document, indent=1), encoding="utf-8")


def _escape(text: str, key: bool = False) -> str:
    """Java properties syntax: backslashes and line breaks escaped, and in a key its separators too."""
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return text.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ") if key else text


def drop_fixture_containers(directory: Path) -> int:
    """Remove allure-pytest's fixture containers (set-up/tear-down entries); the results stay. Returns how many."""
    removed = 0
    for path in directory.glob("*-container.json"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
