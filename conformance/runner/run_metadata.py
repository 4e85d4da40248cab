"""What a report was made from: target, profile, client, suite and catalogue versions, switches, date, CI build.

Every report (results.json, JUnit, Allure's Environment and Executors, summary.md) carries the same facts, so
evidence attached to a go-live file says what it is evidence of.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from conformance import __version__
from conformance.core.catalogues import catalogue_version
from conformance.core.config import TargetConfig
from conformance.core.redaction import display_url
from conformance.profiles import registry as profiles


@dataclass(frozen=True)
class RunMetadata:
    suite_version: str
    catalogue_version: str
    profile: str
    system: str
    target: str
    """The base URL, or "embedded reference server"."""
    target_identity: str
    """What history and waivers key on: the base URL, or embedded:<profile> (its port changes every run)."""
    client_id: str
    faults: tuple[str, ...]
    variations: tuple[str, ...]
    started: str
    ci: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["faults"], data["variations"] = list(self.faults), list(self.variations)
        return data

    def properties(self) -> list[tuple[str, str]]:
        """Flat name/value pairs for Allure's environment.properties and JUnit's suite properties."""
        pairs = [
            ("target", self.target),
            ("profile", self.profile),
            ("system", self.system),
            ("client_id", self.client_id or "(none)"),
            ("suite_version", self.suite_version),
            ("catalogue_version", self.catalogue_version),
            ("faults", ", ".join(self.faults) or "none"),
            ("variations", ", ".join(self.variations) or "none"),
            ("date", self.started),
        ]
        if self.ci.get("build_url"):
            pairs.append(("ci_build", self.ci["build_url"]))
        return pairs


def describe_run(
    config: TargetConfig, faults: list[str], variations: list[str], client_id: str | None = None
) -> RunMetadata:
    profile = profiles.get(config.profile)
    url = display_url(config.base_url or "")
    return RunMetadata(
        suite_version=__version__,
        catalogue_version=catalogue_version(),
        profile=profile.name,
        system=profile.title,
        target="embedded reference server" if config.embedded else url,
        target_identity=f"embedded:{profile.name}" if config.embedded else url,
        client_id=client_id if client_id is not None else (config.client_id or ""),
        faults=tuple(faults),
        variations=tuple(variations),
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        ci=ci_build(os.environ),
    )


def ci_build(env: Mapping[str, str]) -> dict[str, str]:
    """The CI build this run belongs to, from the variables the common CI services set (empty outside CI)."""
    if env.get("GITHUB_ACTIONS") == "true":
        server, repo, run = (
            env.get("GITHUB_SERVER_URL", "https://github.com"),
            env.get("GITHUB_REPOSITORY"),
            env.get("GITHUB_RUN_ID"),
        )
        url = f"{server}/{repo}/actions/runs/{run}" if repo and run else ""
        return _build("github", "GitHub Actions", url, env.get("GITHUB_RUN_NUMBER"), env.get("GITHUB_WORKFLOW"))
    if env.get("GITLAB_CI") == "true":
        return _build("gitlab", "GitLab CI", env.get("CI_JOB_URL", ""), env.get("CI_JOB_ID"), env.get("CI_JOB_NAME"))
    if env.get("JENKINS_URL"):
        return _build("jenkins", "Jenkins", env.get("BUILD_URL", ""), env.get("BUILD_NUMBER"), env.get("JOB_NAME"))
    if env.get("CIRCLECI") == "true":
        return _build("circleci", "CircleCI", env.get("CIRCLE_BUILD_URL", ""), env.get("CIRCLE_BUILD_NUM"), None)
    if env.get("TF_BUILD"):
        base, project, build = env.get("SYSTEM_COLLECTIONURI"), env.get("SYSTEM_TEAMPROJECT"), env.get("BUILD_BUILDID")
        url = f"{base}{project}/_build/results?buildId={build}" if base and project and build else ""
        return _build("azure", "Azure Pipelines", url, build, env.get("BUILD_DEFINITIONNAME"))
    if env.get("CI"):
        return _build("generic", "CI", env.get("BUILD_URL", ""), env.get("BUILD_NUMBER"), None)
    return {}


def _build(kind: str, name: str, url: str, number: str | None, job: str | None) -> dict[str, str]:
    build = {"type": kind, "name": name, "build_url": url}
    if number:
        build["build_number"] = number
    if job:
        build["job"] = job
    return build
