"""pytest plugin: runs the suites against a target and reports in the suite's outcome vocabulary.

Registered through the `pytest11` entry point, so `pytest suites --conformance-target-url …`
works with -k, -m, -x, --lf and xdist. It adds the target options, starts the
embedded reference server when no target is given, maps check outcomes
(pass, fail, warning, skip, not-applicable, broken) onto pytest, Allure and
JUnit, and prints a conformance summary. Without suites being collected it
does nothing, so it costs nothing in other test runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import inspect
import math
import os
import sys
import threading
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from conformance.checking.evidence import curl_command, render_request, render_response
from conformance.checking.requirements import Level, Requirement, lookup
from conformance.core.concurrency import ExchangePool, Halted
from conformance.core.config import ConfigError, TargetConfig
from conformance.core.health import Outage, TargetHealth, origin_of
from conformance.core.outcomes import (
    CheckFailure,
    ConformanceOutcome,
    NoResponse,
    NotApplicable,
    PreconditionFailed,
    SpecWarning,
    collecting_notes,
)
from conformance.core.recording import UNANSWERED, Exchange, capturing
from conformance.core.redaction import Redactor, activate, display_url
from conformance.flows.target import Target
from conformance.profiles import registry as profiles
from conformance.runner import allure_output, allure_writing, results_document, summary
from conformance.runner.baseline import compare, load_baseline
from conformance.runner.check_ids import check_id
from conformance.runner.configuration import flag_names, load_config
from conformance.runner.run_metadata import RunMetadata, describe_run
from conformance.runner.sending_ahead import send_ahead  # noqa: F401 - the fixture the case modules use
from conformance.runner.verdict import EXIT_INTERRUPTED, EXIT_USAGE, Verdict, verdict
from conformance.runner.waivers import Waiver, decide, load_waivers, stale, unknown_cases

LEVEL_MARKERS = {Level.SHALL: "shall", Level.SHOULD: "should", Level.MAY: "may", Level.DE_FACTO: "de_facto"}
OUTCOMES = results_document.OUTCOMES
AVAILABILITY = "SBS-AVAIL-01"
"""The requirement a request that takes the target down is graded by."""

PLUGIN_FLAG_PREFIX = "--conformance-"
"""Every pytest option of the plugin starts with it: `--profile` and `--config` belong to other plugins."""

config_key = pytest.StashKey["PluginState"]()
check_key = pytest.StashKey["CheckState"]()


@dataclass
class CheckState:
    """What happened while one check ran, for the report."""

    warning: SpecWarning | CheckFailure | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PluginState:
    target_config: TargetConfig | None
    config_error: str | None
    faults: list[str]
    variations: list[str]
    mock_settings: dict[str, Any]
    keys_dir: Path | None
    results_path: Path | None
    redactor: Redactor = field(default_factory=Redactor)
    target: Target | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    deselected_for_profile: int = 0
    health: TargetHealth = field(default_factory=TargetHealth)
    traffic_counted: tuple[int, int, float] = (0, 0, 0.0)
    """The traffic already put down to a check: each check gets what was sent since the previous one settled
    (requests sent ahead may leave before their reader starts), so the per-check figures add up to the run's."""
    outage_reported: bool = False
    allure_writer: allure_writing.AllureWriter | None = None
    settled: set[str] = field(default_factory=set)
    """Checks that have finished: one of them cannot carry an outage any more, so the next check does."""
    wait_for_target: float | None = None
    preflight_error: str | None = None
    """Why the configured credentials cannot be used: every check is then not run, and the run exits 3."""
    verdict: Verdict | None = None
    waivers: list[Waiver] = field(default_factory=list)
    baseline: dict[str, str] | None = None
    fail_on: str = "failure"
    metadata: RunMetadata | None = None
    today: dt.date = field(default_factory=dt.date.today)
    durations: dict[str, float] = field(default_factory=dict)
    """Seconds per check (set-up, call and tear-down), by node id."""
    late_config_error: str | None = None
    """A configuration error an xdist worker found at collection (the controller ends the run with it)."""
    internal_error: bool = False
    """pytest ended with INTERNALERROR: the suite itself failed, whatever the checks said."""
    attachments: allure_output.SharedAttachments = field(default_factory=allure_output.SharedAttachments)
    """Each exchange's request and response, written once however many checks cite it."""


waived_text_key = pytest.StashKey[str]()
"""A waived failure's full text (the report now holds the skip reason)."""
sent_key = pytest.StashKey[tuple[int, int, float]]()
"""Requests sent, rate-limit retries and seconds waited before a check started (the check's share is the rise)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "FHIR B2B conformance target")
    group.addoption(
        "--conformance-target-url",
        help="FHIR base URL of the server under test (default: the embedded reference server)",
    )
    group.addoption("--conformance-config", help="target configuration file (TOML)")
    group.addoption("--conformance-profile", help=f"auth profile: {', '.join(profiles.names())}")
    group.addoption("--conformance-client-id", help="client id registered at the target")
    group.addoption(
        "--conformance-private-key",
        action="append",
        default=None,
        help="client private key file (PEM or JWK); repeatable",
    )
    group.addoption("--conformance-patient-id", help="a patient id the client may read")
    group.addoption("--conformance-scope", action="append", default=None, help="scope to request; repeatable")
    group.addoption(
        "--conformance-request-timeout",
        type=float,
        default=None,
        help="total time per request (connect, headers, body), seconds",
    )
    group.addoption(
        "--conformance-proxy", default=None, help="HTTP proxy URL, or 'none' (default: HTTPS_PROXY / NO_PROXY)"
    )
    group.addoption(
        "--conformance-max-rps", type=float, default=None, help="send at most this many requests per second"
    )
    group.addoption(
        "--conformance-concurrency",
        type=int,
        default=None,
        help="at most this many independent requests in flight at once (default 8; 1: one after another)",
    )
    group.addoption(
        "--conformance-wait-for-target",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait up to SECONDS for the target to answer before the checks",
    )
    group.addoption(
        "--conformance-no-verify-tls", action="store_true", default=False, help="do not verify TLS certificates"
    )
    group.addoption(
        "--conformance-mock-fault",
        action="append",
        default=[],
        help="embedded run only: switch a reference-server fault on",
    )
    group.addoption(
        "--conformance-mock-variation",
        action="append",
        default=[],
        help="embedded run only: switch a compliant reference-server variation on",
    )
    group.addoption(
        "--conformance-embedded-keys", default=None, help="embedded run only: directory to load/save the run's keys"
    )
    group.addoption(
        "--conformance-mock-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="embedded run only: a reference-server setting, e.g. carequality_shape=override-header",
    )
    group.addoption(
        "--conformance-results",
        default=None,
        help="write results.json (and summary.md beside it) to this file",
    )
    group.addoption(
        "--conformance-waivers", default=None, metavar="FILE", help="waivers.toml: known deviations reported as waived"
    )
    group.addoption(
        "--conformance-baseline",
        default=None,
        metavar="FILE",
        help="an earlier results.json: report regressions, fixed and new checks",
    )
    group.addoption(
        "--conformance-fail-on",
        default="failure",
        choices=("failure", "regression"),
        help="what fails the run: any failed check (default), or only regressions against --conformance-baseline",
    )


def pytest_configure(config: pytest.Config) -> None:
    _interrupted.clear()  # one flag per run, also when several runs share a process
    config.addinivalue_line("markers", "requirement(id, level=None): the requirement a check enforces")
    config.addinivalue_line("markers", "profiles(*names): the profiles a case of a shared suite applies to")
    config.addinivalue_line("markers", "late: a check that waits for time to pass; runs after the others")
    config.addinivalue_line(
        "markers",
        "asks(*keys, of=None): the cases a check asks its module's send_ahead fixture (the one made with "
        "name=of) for by name (sent ahead)",
    )
    for level in LEVEL_MARKERS.values():
        config.addinivalue_line("markers", f"{level}: a check at this requirement level (select with -m {level})")
    overrides: dict[str, Any] = {
        "target.base_url": config.getoption("conformance_target_url"),
        "target.profile": config.getoption("conformance_profile"),
        "auth.client_id": config.getoption("conformance_client_id"),
        "auth.private_keys": config.getoption("conformance_private_key"),
        "target.patient_id": config.getoption("conformance_patient_id"),
        "auth.scopes": config.getoption("conformance_scope"),
        "http.timeout": config.getoption("conformance_request_timeout"),
        "http.verify_tls": False if config.getoption("conformance_no_verify_tls") else None,
        "http.proxy": config.getoption("conformance_proxy"),
        "http.max_rps": config.getoption("conformance_max_rps"),
        "http.concurrency": config.getoption("conformance_concurrency"),
    }
    path = config.getoption("conformance_config")
    target_config: TargetConfig | None = None
    error = None
    wait = config.getoption("conformance_wait_for_target")
    try:
        target_config = load_config(Path(path) if path else None, overrides, flags=flag_names(PLUGIN_FLAG_PREFIX))
        if wait is not None and not (math.isfinite(wait) and 0 <= wait <= 3600):
            raise ConfigError(f"--conformance-wait-for-target must be between 0 and 3600 seconds, got {wait:g}")
        embedded_only = ("conformance_mock_fault", "conformance_mock_variation", "conformance_mock_setting")
        if any(config.getoption(o) for o in embedded_only) and not target_config.embedded:
            raise ConfigError(
                "--conformance-mock-fault, --conformance-mock-variation and --conformance-mock-setting only apply to "
                "the embedded reference server (no --conformance-target-url)"
            )
        mock_settings = parse_mock_settings(config.getoption("conformance_mock_setting"))
        from conformance.mock.faults import FaultSet, UnknownFault
        from conformance.mock.variations import UnknownVariation, VariationSet

        try:
            FaultSet(config.getoption("conformance_mock_fault"))
            VariationSet(config.getoption("conformance_mock_variation"))
        except (UnknownFault, UnknownVariation) as exc:
            raise ConfigError(str(exc)) from None
    except ConfigError as exc:
        error = str(exc)
        mock_settings = {}
    results = config.getoption("conformance_results")
    if results and error is None:
        error = _unwritable(Path(results), "--conformance-results")
    waivers: list[Waiver] = []
    baseline = None
    try:
        if config.getoption("conformance_waivers") and error is None:
            waivers = load_waivers(Path(config.getoption("conformance_waivers")), _suites_home())
        if config.getoption("conformance_baseline") and error is None:
            baseline = load_baseline(Path(config.getoption("conformance_baseline")))
        if config.getoption("conformance_fail_on") == "regression" and baseline is None and error is None:
            raise ConfigError("--conformance-fail-on regression needs --conformance-baseline FILE")
    except ConfigError as exc:
        error = str(exc)
    keys_dir = config.getoption("conformance_embedded_keys")
    config.stash[config_key] = PluginState(
        target_config=target_config,
        config_error=error,
        faults=list(config.getoption("conformance_mock_fault")),
        variations=list(config.getoption("conformance_mock_variation")),
        mock_settings=mock_settings,
        keys_dir=Path(keys_dir) if keys_dir else None,
        results_path=Path(results) if results else None,
        wait_for_target=wait,
        waivers=waivers,
        baseline=baseline,
        fail_on=config.getoption("conformance_fail_on"),
    )
    if target_config is not None and error is None:
        state = config.stash[config_key]
        state.metadata = describe_run(target_config, state.faults, state.variations)
    config.pluginmanager.register(ResultCollector(config), "conformance-results")


MOCK_SETTING_TYPES: dict[str, type] = {
    "carequality_shape": str,
    "publish_udap_metadata": bool,
    "token_lifetime": int,
    "clock_offset": float,
    "echo_requests": bool,
    "latency_ms": float,
    "db_path": str,
}


def parse_mock_settings(values: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs for the embedded reference server, typed and validated."""
    settings: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or name not in MOCK_SETTING_TYPES:
            raise ConfigError(
                f"--conformance-mock-setting takes NAME=VALUE with NAME one of {', '.join(MOCK_SETTING_TYPES)}; got {item!r}"
            )
        kind = MOCK_SETTING_TYPES[name]
        try:
            settings[name] = value.lower() in ("1", "true", "yes", "on") if kind is bool else kind(value)
        except ValueError:
            raise ConfigError(f"--conformance-mock-setting {name} needs a {kind.__name__}, got {value!r}") from None
        if name == "latency_ms" and not 0 <= settings[name] <= 60_000:
            raise ConfigError(f"--conformance-mock-setting latency_ms must be between 0 and 60000, got {value}")
    return settings


def _stop_for_configuration(problem: str) -> NoReturn:
    """End the run with the usage code; the one line goes to stderr too, where `conformance run` users look."""
    print(f"conformance: error: {problem}", file=sys.stderr, flush=True)
    pytest.exit(f"configuration error: {problem}", returncode=2)


def _state(config: pytest.Config) -> PluginState:
    return config.stash[config_key]


def _traffic(state: PluginState) -> tuple[int, int, float]:
    """What the run has sent so far: requests, rate-limit retries, seconds waited (zeros before the target)."""
    if state.target is None:
        return 0, 0, 0.0
    http = state.target.http
    return http.requests_sent, http.retry.retries, http.retry.waited


def _is_check(item: pytest.Item) -> bool:
    return isinstance(item, pytest.Function) and "target" in item.fixturenames


def requirement_of(item: pytest.Item) -> tuple[str | None, Level | None]:
    marker = item.get_closest_marker("requirement")
    if marker is None or not marker.args:
        return None, None
    requirement = lookup(marker.args[0])
    level = marker.kwargs.get("level")
    return requirement.id, Level(level) if level else requirement.level


CLAIMED_SUITES = frozenset(suite for profile in profiles.PROFILES for suite in profile.suites)


def applies_to(item: pytest.Item, profile: profiles.Profile) -> bool:
    """Whether a check runs for a profile.

    A check in a suite folder that profiles claim runs for the profiles that list
    the folder; a check anywhere else (a user's own check file) runs for every
    profile. A `profiles` marker on a case narrows it further.
    """
    area = check_id(item).split("/", 1)[0]
    if area in CLAIMED_SUITES and area not in profile.suites:
        return False
    marker = item.get_closest_marker("profiles")
    return marker is None or profile.name in marker.args


def _suites_home() -> Path:
    import suites

    return Path(suites.__file__).resolve().parent


def _runs_the_suites(config: pytest.Config) -> bool:
    """Whether the session's paths include the conformance suites (not, say, a project's own tests)."""
    home = _suites_home()
    for arg in config.args or ["."]:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == home or home in path.parents or path in home.parents:
            return True
    return False


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Ctrl-C: the run ends with 130, as `conformance run` does (pytest's own code, 2, is the usage code here)."""
    if excinfo.errisinstance(KeyboardInterrupt):  # pytest.exit() comes here too
        _interrupted.append(True)


_interrupted: list[bool] = []


@pytest.hookimpl(tryfirst=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_check_the_waivers(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Before -k and -m deselect anything: a waiver must name a check that exists, selected or not."""
    state = _state(config)
    if not state.waivers or state.config_error:
        return
    collected = {check_id(i) for i in items if _is_check(i)}
    problems = unknown_cases(state.waivers, collected, {c.split("::", 1)[0] for c in collected})
    if problems and hasattr(config, "workeroutput"):
        # An xdist worker that exits is restarted, again and again: it runs nothing and tells the controller.
        config.workeroutput["conformance_config_error"] = problems[0]
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
    elif problems:
        _stop_for_configuration(problems[0])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    checks = [i for i in items if _is_check(i)]
    if not checks:
        return
    if state.config_error:
        _stop_for_configuration(state.config_error)
    assert state.target_config is not None
    profile = profiles.get(state.target_config.profile)
    keep, drop = [], []
    for item in items:
        if _is_check(item) and not applies_to(item, profile):
            drop.append(item)
        else:
            keep.append(item)
    for item in checks:
        if item.get_closest_marker("requirement") is None:
            raise pytest.UsageError(f"check {item.nodeid} has no @pytest.mark.requirement")
        rid, level = requirement_of(item)  # fails collection early on an unknown id
        if rid and level:
            item.extra_keyword_matches.add(rid)  # -k SBS-AERR-28
            item.add_marker(LEVEL_MARKERS[level])  # -m shall
    if drop:
        state.deselected_for_profile = len(drop)
        config.hook.pytest_deselected(items=drop)
    # Checks that wait for a token to expire go last, so the rest of the run does the waiting.
    items[:] = [i for i in keep if i.get_closest_marker("late") is None] + [
        i for i in keep if i.get_closest_marker("late") is not None
    ]


def pytest_collection_finish(session: pytest.Session) -> None:
    """What was imported and collected lives until the run ends: the garbage collector stops walking it (its full
    passes, pytest's own at the end included, cost ~0.1 s of a run). Unfrozen when the run ends, so a process that
    runs the suites again (tests/suite_worker.py) can still free it."""
    if not _runs_the_suites(session.config):
        return  # another project's tests in the same environment: left as they were
    gc.freeze()
    session.config.add_cleanup(gc.unfreeze)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = _state(config)
    cfg = state.target_config
    if cfg is None:
        return []
    if cfg.embedded:
        faults = f", faults: {', '.join(state.faults)}" if state.faults else ""
        faults += f", variations: {', '.join(state.variations)}" if state.variations else ""
        settings = "".join(f", {k}={v}" for k, v in state.mock_settings.items())
        return [f"conformance: embedded reference server, profile {cfg.profile}{faults}{settings}"]
    return [f"conformance: target {display_url(cfg.base_url or '')}, profile {cfg.profile}, config {cfg.source}"]


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The server under test: the configured one, or a freshly started reference server."""
    from conformance.flows.target import open_target
    from conformance.runner.embedded import start_embedded

    state = _state(request.config)
    assert state.target_config is not None
    cfg = state.target_config
    if cfg.embedded:
        tgt = start_embedded(
            cfg.profile,
            faults=state.faults,
            variations=state.variations,
            keys_dir=state.keys_dir,
            template=cfg,
            mock_settings=state.mock_settings,
        )
    else:
        tgt = open_target(_share_of_the_limits(cfg))
    state.target = tgt
    state.health.probe_timeout = cfg.timeout
    # Probes go through the run's own client: its proxy, TLS settings and total deadline.
    state.health.probe = lambda url, timeout, attempts=2, pause=0.5: tgt.http.probe(url, attempts, pause)
    state.health.target_origins.add(origin_of(tgt.base_url))
    tgt.http.observers.append(state.health.observe)
    # Under xdist a worker cannot know which of a module's cases it will be handed: it sends each when asked.
    in_flight = 1 if hasattr(request.config, "workerinput") else cfg.concurrency
    tgt.http.pool = ExchangePool(in_flight, halted=state.health.halted, asking=lambda: state.health.current_check)
    state.health.overlapping = tgt.http.overlapping
    state.redactor = tgt.redactor
    activate(tgt.redactor)
    try:
        if not cfg.embedded:
            _before_the_checks(state, tgt)
        yield tgt
    finally:
        _close_beside_the_reports(request.config, tgt)


def _close_beside_the_reports(config: pytest.Config, tgt: Target) -> None:
    """The target closes while the reports are written (the reference server's orderly shutdown alone takes
    ~0.15 s: uvicorn polls for it); the run waits for it before it ends. The exchange pool closes first, here, so
    every exchange that will ever be seen (an outage among them) is seen before the verdict. A failure to close
    judges nothing, so it is one line on stderr, not a traceback; Ctrl-C while waiting for it stops the wait only
    (the reports are written by then)."""
    tgt.http.close()

    def close() -> None:
        try:
            tgt.close()
        except Exception as exc:  # whatever it is, the verdicts stand
            print(f"conformance: warning: closing the target failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    closing = threading.Thread(target=close, name="closing-the-target", daemon=True)
    closing.start()

    def wait() -> None:
        with contextlib.suppress(KeyboardInterrupt):  # a daemon thread: the process may end without it
            closing.join(timeout=30)

    config.add_cleanup(wait)


def _unwritable(path: Path, option: str) -> str | None:
    """Why the results file could not be written at the end of the run (found now, before any check runs)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{option} {path}: its directory cannot be created ({exc.strerror or exc})"
    if path.is_dir():
        return f"{option} {path} is a directory; name a file"
    return None


def _share_of_the_limits(cfg: TargetConfig) -> TargetConfig:
    """Under xdist each worker sends on its own: --max-rps is split between them, so the target sees at most the
    rate the user allowed for the whole run."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers <= 1:
        return cfg
    # The retry budget is a ceiling on waiting, and workers wait side by side: each keeps all of it.
    return dataclasses.replace(cfg, max_rps=cfg.max_rps / workers if cfg.max_rps else None)


def _before_the_checks(state: PluginState, tgt: Target) -> None:
    """Wait for a target still starting, then the profile's preflight: a run that cannot judge stops here."""
    from conformance.flows import preflight

    if state.wait_for_target:
        preflight.wait_for(tgt.http, f"{tgt.base_url}/metadata", state.wait_for_target)
    hook = profiles.get(tgt.config.profile).preflight
    problem = hook(tgt) if hook is not None else None
    if state.health.outage is not None:
        pytest.skip(f"not run: {state.health.outage.summary}")
    if problem is not None:
        state.preflight_error = tgt.redactor.text(problem)
        pytest.skip(f"not run: {state.preflight_error}")


def _evidence(item: pytest.Item, captured: list[Exchange]) -> list[Exchange]:
    found: dict[int, Exchange] = {}
    funcargs = getattr(item, "funcargs", {})
    own = inspect.signature(item.obj).parameters if hasattr(item, "obj") else {}
    for name, value in funcargs.items():
        if name not in own:
            continue
        gather = getattr(value, "__evidence__", None)
        if callable(gather):
            for exchange in gather():
                found.setdefault(exchange.id, exchange)
    for exchange in captured:
        found.setdefault(exchange.id, exchange)
    return sorted(found.values(), key=lambda e: e.id)


def _attach(config: pytest.Config, exchanges: list[Exchange], redactor: Redactor) -> None:
    import allure

    shared = _state(config).attachments
    for exchange in exchanges:
        status = exchange.status if exchange.status is not None else "no response"
        title = f"{exchange.purpose}: {exchange.method} {redactor.url(exchange.url)} → {status}"
        known = redactor.secrets_known
        with allure.step(title):
            for part, render in (("request", _request_text), ("response", render_response)):
                shared.attach(config, (exchange.id, part, known), part, functools.partial(render, exchange, redactor))


def _request_text(exchange: Exchange, redactor: Redactor) -> str:
    return f"{render_request(exchange, redactor)}\n\n# reproduce (secrets masked):\n{curl_command(exchange, redactor)}"


def _label_allure(item: pytest.Item) -> None:
    rid, _ = requirement_of(item)
    metadata = _state(item.config).metadata
    if rid is None or metadata is None:
        return
    cid = check_id(item)
    allure_output.label(item, lookup(rid), metadata.system, cid.split("/", 1)[0], cid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if not _is_check(item):
        return (yield)
    rid, level = requirement_of(item)
    item.user_properties += [
        ("check_id", check_id(item)),
        ("requirement", rid),
        ("level", level.value if level else ""),
    ]
    if rid is not None:
        item.user_properties += [("party", lookup(rid).party), ("rule", lookup(rid).sentence)]
    state = _state(item.config)
    redactor = state.redactor
    if state.health.outage is not None and not _reads_the_killing_answer(item):
        pytest.skip(f"not run: {state.health.outage.summary}")
    if state.preflight_error is not None:
        pytest.skip(f"not run: {state.preflight_error}")
    state.health.current_check = check_id(item)
    item.stash[sent_key] = state.traffic_counted
    with capturing() as captured:
        try:
            return (yield)
        except NotApplicable as exc:
            pytest.skip(f"not applicable: {redactor.text(str(exc))}")
        except PreconditionFailed as exc:
            _unanswered_behind(exc, captured)
            pytest.skip(f"precondition: {redactor.text(str(exc))}")


def _unanswered_behind(precondition: PreconditionFailed, captured: list[Exchange]) -> None:
    """A precondition that failed because a request got no answer is broken with that cause, not a skip: the
    user must see the timeout or reset, not only "no token"."""
    unanswered = next((e for e in captured if e.status is None and e.failure in UNANSWERED), None)
    if unanswered is not None:
        raise NoResponse(f"{unanswered.error} (so: {precondition})", unanswered) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if not _is_check(item):
        return (yield)
    state = CheckState()
    item.stash[check_key] = state
    _label_allure(item)
    _, level = requirement_of(item)
    redactor = _state(item.config).redactor
    with capturing() as captured, collecting_notes() as notes:
        try:
            return (yield)
        except SpecWarning as warning:
            state.warning = warning
            return None
        except CheckFailure as failure:
            if failure.requirement is not None:
                level = lookup(failure.requirement).level
            if level is not None and not level.fails_run:
                state.warning = failure
                return None
            raise
        except NotApplicable as exc:
            pytest.skip(f"not applicable: {redactor.text(str(exc))}")
        except PreconditionFailed as exc:
            _unanswered_behind(exc, captured)
            pytest.skip(f"precondition: {redactor.text(str(exc))}")
        finally:
            state.notes = list(notes.items)
            _attach(item.config, _evidence(item, captured), redactor)
            _describe_in_allure(state, redactor, item)


def _describe_in_allure(state: CheckState, redactor: Redactor, item: pytest.Item) -> None:
    import allure

    lines = [f"- {k}: {redactor.text(v)}" for k, v in state.notes]
    if state.warning is not None:
        allure.dynamic.label("outcome", "warning")
        lines.insert(0, f"**Warning:** {redactor.text(_render_outcome(state.warning, redactor, item))}")
    if lines:
        allure.dynamic.description("\n".join(lines))


def _governing(item: pytest.Item, outcome: BaseException) -> Requirement | None:
    """The requirement that decided an outcome: the one the outcome names, else the check's own."""
    own = getattr(outcome, "requirement", None)
    if isinstance(own, str):
        return lookup(own)
    rid, _ = requirement_of(item)
    return lookup(rid) if rid is not None else None


def _render_outcome(outcome: BaseException, redactor: Redactor, item: pytest.Item | None = None) -> str:
    if isinstance(outcome, CheckFailure | SpecWarning):
        lines = [outcome.title]
        if outcome.expected:
            lines.append(f"  expected: {outcome.expected}")
        if outcome.actual:
            lines.append(f"  actual:   {outcome.actual}")
    else:
        lines = [str(outcome)]
    if item is not None:
        rid, level = requirement_of(item)
        own = getattr(outcome, "requirement", None)
        if isinstance(own, str):
            rid, level = own, lookup(own).level
        if rid is not None and level is not None:
            requirement = lookup(rid)
            lines.append(f"  requirement: {rid} ({level.value}) {requirement.summary}")
            lines.append(f"  rule (binds the {requirement.party}): {requirement.sentence}")
            lines.append(f"  spec: {requirement.url}")
    exchange = getattr(outcome, "exchange", None)
    if isinstance(exchange, Exchange):
        lines.append(f"  reproduce: {curl_command(exchange, redactor)}")  # whole: it must run as printed
    return redactor.text("\n".join(lines))


def _classify(report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException] | None, item: pytest.Item) -> str:
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if "not run:" in reason:
            return "not-run"
        return "not-applicable" if "not applicable:" in reason else "skip"
    if report.failed:
        if report.when != "call":
            return "broken"
        exc = excinfo.value if excinfo else None
        return "fail" if isinstance(exc, AssertionError) else "broken"
    state = item.stash.get(check_key, None)
    return "warning" if state is not None and state.warning is not None else "pass"


def _set_property(properties: list[tuple[str, object]], name: str, value: object) -> None:
    """Set (or with None, remove) one property: JUnit shows every property, and "None" tells a reader nothing."""
    properties[:] = [(k, v) for k, v in properties if k != name]
    if value is not None:
        properties.append((name, value))


def _reads_the_killing_answer(item: pytest.Item) -> bool:
    """This check reads the answer sent ahead after which the target went away, and has not reported it yet: it
    runs (after the outage) to carry the finding."""
    state = _state(item.config)
    outage = state.health.outage
    return outage is not None and not state.outage_reported and outage.reported_by == check_id(item)


def _cut_off_by_the_outage(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> bool:
    """A check whose answer never came because the target had gone (a request in flight beside the one that took
    it down, or one not sent after it) was not run: no harness trouble, and the finding is the outage's."""
    outage = _state(item.config).health.outage
    exc = call.excinfo.value if call.excinfo else None
    return outage is not None and report.failed and isinstance(exc, NoResponse | Halted)


def _took_the_target_down(item: pytest.Item, report: pytest.TestReport) -> bool:
    """This check carries the outage, not reported yet: it sent the last request before the target went away or
    reads that answer, or the check that should have has already finished (it never read an answer sent ahead
    for it), and this is the first check since. An outage is never left unreported."""
    state = _state(item.config)
    outage = state.health.outage
    if outage is None or state.outage_reported:
        return False
    return outage.reported_by == check_id(item) or outage.reported_by is None or outage.reported_by in state.settled


def _unauthenticated(exchange: Exchange) -> bool:
    """No usable credential in the request: no Authorization header, no client secret, no well-formed assertion."""
    from urllib.parse import parse_qs

    if exchange.request_header("authorization"):
        return False
    try:
        form = parse_qs(exchange.request_body.decode("utf-8", errors="replace"))
    except ValueError:
        return True
    assertion = (form.get("client_assertion") or [""])[0]
    return "client_secret" not in form and assertion.count(".") != 2


def _report_outage(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, redactor: Redactor
) -> None:
    """The finding is the outage: a failure of this check (crash) or a broken run (never reachable)."""
    state = _state(item.config)
    outage = state.health.outage
    assert outage is not None
    state.outage_reported = True
    exchange = outage.exchange
    failure: CheckFailure | None = None
    if outage.kind in ("unreachable", "unusable", "unresponsive"):
        outcome = "broken"
        what = {
            "unreachable": "could not be reached",
            "unusable": "gives no usable answer",
            "unresponsive": "stopped answering within the timeout (slow, not refused: not a finding against it)",
        }[outage.kind]
        rest = "no check was judged; " if outage.kind == "unreachable" else ""
        report.longrepr = redactor.text(
            f"the target {what}: {outage.summary.split(': ', 1)[-1]}\n  {rest}every later check is reported not-run"
        )
    else:
        outcome = "fail"
        requirement = lookup(AVAILABILITY)
        who = "one unauthenticated request" if _unauthenticated(exchange) else "one request"
        where = "this request" if outage.check == check_id(item) else f"a request of {outage.check}"
        if outage.suspects:
            # Which of the requests cut off together did it cannot be told: say so, not "this request".
            first = "this check's" if outage.check == check_id(item) else f"that of {outage.check}"
            where = f"one of {len(outage.suspects) + 1} requests sent side by side ({first} was sent first)"
            who = "one request"
        failure = CheckFailure(
            f"the server stopped answering this client after {where}: {who} takes the service down",
            expected="an answer to every request (an error response for a bad one), and a server that keeps answering",
            actual=f"{outage.what_happened}; probing {origin_of(exchange.url)} afterwards: {outage.probe_error}"
            + _other_suspects(outage),
            exchange=exchange,
            requirement=AVAILABILITY,
        )
        report.longrepr = _render_outcome(failure, redactor, item)
        # Allure reads its status and message from the call's exception after this wrapper (which runs inside
        # allure's): the finding is the outage, an AssertionError, not whatever the check happened to raise.
        try:
            raise failure
        except CheckFailure:
            call.excinfo = pytest.ExceptionInfo.from_current()
        allure_output.relabel(item, requirement)
        _set_property(item.user_properties, "requirement", requirement.id)
        _set_property(item.user_properties, "level", requirement.level.value)
        _set_property(item.user_properties, "party", requirement.party)
        _set_property(item.user_properties, "rule", requirement.sentence)
    _set_property(item.user_properties, "outage_at", f"{outage.observed_at:.6f}")
    report.outcome = "failed"
    _set_property(item.user_properties, "outcome", outcome)
    _set_property(item.user_properties, "outage", redactor.text(outage.summary))
    message, expected, actual = _finding(failure, redactor) if outcome == "fail" else (outage.summary, None, None)
    for name, value in (("message", message), ("expected", expected), ("actual", actual)):
        _set_property(item.user_properties, name, redactor.text(value) if value else value)


def _other_suspects(outage: Outage) -> str:
    """Requests sent side by side with the blamed one: cut off too, or answered just before the target went away
    (a request can be answered and still take the server down). The blame is a best guess; any of them may be it."""

    def named(exchanges: tuple[Exchange, ...]) -> str:
        listed = "; ".join(f"{e.purpose} ({e.owner or 'set-up'})" for e in exchanges[:5])
        return listed + (f" and {len(exchanges) - 5} more" if len(exchanges) > 5 else "")

    parts = []
    if outage.suspects:
        parts.append(
            f"{len(outage.suspects)} other request(s) sent at the same time got no answer either ({named(outage.suspects)})"
        )
    if outage.answered_beside:
        parts.append(
            f"{len(outage.answered_beside)} request(s) in flight with it were answered just before "
            f"({named(outage.answered_beside)})"
        )
    if not parts:
        return ""
    return (
        "; " + "; ".join(parts) + ": this one is the best guess (sent first), but any of them may be the one; "
        "--concurrency 1 sends one at a time and names it"
    )


def _finding(outcome: BaseException | None, redactor: Redactor) -> tuple[str | None, str | None, str | None]:
    """The one-line finding, expected and actual of an outcome (what Allure's error box and summaries show)."""
    if isinstance(outcome, CheckFailure | SpecWarning):
        line = outcome.title
        if outcome.expected or outcome.actual:
            line += f" (expected: {outcome.expected or '-'}; actual: {outcome.actual or '-'})"
        return (
            redactor.text(" ".join(line.split())),
            redactor.text(outcome.expected) if outcome.expected else None,
            redactor.text(outcome.actual) if outcome.actual else None,
        )
    if outcome is not None:
        text = str(outcome).strip().splitlines()
        return (redactor.text(text[0]) if text else type(outcome).__name__), None, None
    return None, None, None


def _skip_reason(report: pytest.TestReport) -> str:
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def _own_location(item: pytest.Item, reason: str) -> tuple[str, int, str]:
    """A skip's location: the check's own file below suites/, not the plugin file's absolute path where pytest.skip
    was called. Checks not run for one shared cause share one location, so pytest's summary folds them into one
    line instead of one per check."""
    if reason.startswith("not run:"):
        return "conformance", 0, reason
    return check_id(item).split("::", 1)[0], (item.location[1] or 0) + 1, reason


def _apply_waivers(item: pytest.Item, report: pytest.TestReport, message: str | None) -> str:
    """A failure a live waiver covers becomes waived (reported as a skip, so it fails no run); an expired one
    stands, with the expiry said in its text. Returns the outcome."""
    state = _state(item.config)
    rid = dict(item.user_properties).get("requirement")
    assert state.metadata is not None
    decision = decide(
        state.waivers,
        check_id(item),
        rid if isinstance(rid, str) else None,
        state.metadata.target_identity,
        state.today,
    )
    if decision.expired is not None:
        expired = decision.expired
        note = f"{expired.label()} expired on {expired.expires.isoformat()}: {expired.describe()}"
        _set_property(item.user_properties, "waiver_expired", note)
        report.longrepr = f"{report.longrepr}\n  not waived: {note}"
        return "fail"
    if decision.waiver is None:
        return "fail"
    waiver = decision.waiver
    _set_property(item.user_properties, "waiver", f"{waiver.label()}: {waiver.describe()}")
    item.stash[waived_text_key] = str(report.longrepr)  # the finding in full, for Allure's trace
    report.outcome = "skipped"
    report.longrepr = _own_location(
        item, f"{allure_output.WAIVED_PREFIX}{message} [{waiver.label()}: {waiver.describe()}]"
    )
    return "waived"


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not _is_check(item):
        return report
    state = _state(item.config)
    redactor = state.redactor
    exc = call.excinfo.value if call.excinfo else None
    if report.failed and isinstance(exc, ConformanceOutcome):
        report.longrepr = _render_outcome(exc, redactor, item)
    elif report.failed and exc is not None:
        report.longrepr = redactor.text(str(report.longrepr))
    elif report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = _own_location(item, redactor.text(_skip_reason(report)))
    decisive = report.when == "call" or not report.passed
    if decisive and _took_the_target_down(item, report):
        _report_outage(item, call, report, redactor)
    elif decisive and _cut_off_by_the_outage(item, call, report):
        assert state.health.outage is not None
        reason = f"not run: {redactor.text(state.health.outage.summary)}"
        report.outcome = "skipped"
        report.longrepr = _own_location(item, reason)
        try:  # Allure takes its status from the call's exception: a skip, like every other not-run check
            pytest.skip(reason)
        except pytest.skip.Exception:
            call.excinfo = pytest.ExceptionInfo.from_current()
        _set_property(item.user_properties, "outcome", "not-run")
        _set_property(item.user_properties, "message", reason)
    elif decisive:
        outcome = _classify(report, call.excinfo, item)
        check_state = item.stash.get(check_key, None)
        warning = check_state.warning if check_state is not None else None
        message: str | None
        if report.skipped:
            message, expected, actual = _skip_reason(report), None, None
        else:
            message, expected, actual = _finding(warning if outcome == "warning" else exc, redactor)
        if outcome == "fail" and state.waivers:
            outcome = _apply_waivers(item, report, message)
        _set_property(item.user_properties, "outcome", outcome)
        for name, value in (("message", message), ("expected", expected), ("actual", actual)):
            _set_property(item.user_properties, name, value)
        if warning is not None:
            _set_property(item.user_properties, "warning", redactor.text(warning.title))
            rule = _governing(item, warning)
            if rule is not None:
                _set_property(
                    item.user_properties, "warning_rule", f"{rule.id}, binds the {rule.party}: {rule.sentence}"
                )
        if check_state is not None:
            for key, value in check_state.notes:
                _set_property(item.user_properties, f"note:{key}", redactor.text(value))
    if report.when == "teardown" and report.failed:
        _set_property(item.user_properties, "outcome", "broken")
    if report.when == "teardown":
        state.settled.add(check_id(item))
    preflight_error = state.preflight_error
    if decisive and preflight_error is not None and report.skipped:
        _set_property(item.user_properties, "preflight", preflight_error)
    if report.when == "teardown":
        _settle(item, state)
    report.user_properties = list(item.user_properties)
    return report


def _settle(item: pytest.Item, state: PluginState) -> None:
    """The check's last report: its traffic, and Allure's identities and message."""
    if state.target is not None:
        _set_property(item.user_properties, "client_id", state.target.config.client_id)
    if sent_key in item.stash:
        before, after = state.traffic_counted, _traffic(state)
        state.traffic_counted = after
        _set_property(item.user_properties, "requests", after[0] - before[0])
        _set_property(item.user_properties, "retries", after[1] - before[1])
        _set_property(item.user_properties, "waited", round(after[2] - before[2], 3))
    if state.metadata is None:
        return
    props = dict(item.user_properties)
    message = props.get("message")
    outcome = props.get("outcome")
    if outcome == "warning":
        message = f"{allure_output.WARNING_PREFIX}{message}"
        allure_output.add_tag(item, "warning")
    elif outcome == "waived":
        message = f"{allure_output.WAIVED_PREFIX}{message}"
        allure_output.add_tag(item, "waived")
    elif outcome not in ("fail", "broken"):
        message = None  # Allure keeps the skip reason it read itself
    allure_output.settle(
        item,
        target_identity=state.metadata.target_identity,
        profile=state.metadata.profile,
        check_id=check_id(item),
        message=str(message) if message is not None else None,
        trace=item.stash.get(waived_text_key, None),
    )


class ResultCollector:
    """Collects one result per check from the final report of each test (works under xdist), writes the files."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = _state(self.config)
        state.durations[report.nodeid] = state.durations.get(report.nodeid, 0.0) + report.duration
        if report.when != "teardown":
            return
        props = dict(report.user_properties)
        if "check_id" not in props:
            return
        result = {
            "check": props["check_id"],
            "nodeid": report.nodeid,
            "area": str(props["check_id"]).split("/", 1)[0],
            "outcome": props.get("outcome", "broken"),
            "requirement": props.get("requirement"),
            "level": props.get("level"),
            "party": props.get("party"),
            "spec_url": lookup(str(props["requirement"])).url if props.get("requirement") else None,
            "message": props.get("message"),
            "expected": props.get("expected"),
            "actual": props.get("actual"),
            "duration": round(state.durations.pop(report.nodeid, 0.0), 4),
            "warning": props.get("warning"),
            "warning_rule": props.get("warning_rule"),
            "waiver": props.get("waiver"),
            "waiver_expired": props.get("waiver_expired"),
            "outage": props.get("outage"),
            "outage_at": props.get("outage_at"),
            "preflight": props.get("preflight"),
            "requests": props.get("requests", 0),
            "retries": props.get("retries", 0),
            "waited": props.get("waited", 0.0),
            "notes": {k[5:]: v for k, v in props.items() if isinstance(k, str) and k.startswith("note:")},
            "client_id": props.get("client_id"),
        }
        state.results.append(result)
        self._mark_in_junit(report, result)

    def _mark_in_junit(self, report: pytest.TestReport, result: dict[str, Any]) -> None:
        """Warnings and waivers where CI viewers show them: the test case's system-out."""
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is None or result["outcome"] not in ("warning", "waived"):
            return
        import xml.etree.ElementTree as ET

        text = (
            f"WARNING {result['requirement']} ({result['level']}): {result['warning']}\n  rule {result['warning_rule']}"
            if result["outcome"] == "warning"
            else f"WAIVED {result['requirement']}: {result['message']}\n  {result['waiver']}"
        )
        node = ET.Element("system-out")
        node.text = text
        xml.node_reporter(report).append(node)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist: a worker that found a configuration error (a waiver naming no check) says so when it ends."""
        problem = getattr(node, "workeroutput", {}).get("conformance_config_error")
        if problem:
            _state(self.config).late_config_error = str(problem)

    def _one_outage(self) -> None:
        """Under xdist every worker notices the outage; the earliest is the finding, the others were not run."""
        state = _state(self.config)
        outages = sorted((r for r in state.results if r.get("outage_at")), key=lambda r: float(r["outage_at"]))
        for later in outages[1:]:
            later.update(outcome="not-run", message=None, outage=None, outage_at=None, warning=None)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        state = _state(config)
        if not state.results:
            return
        traffic = self._traffic()
        counts = Counter(r["outcome"] for r in state.results)
        write = terminalreporter.write_line
        terminalreporter.section("conformance summary")
        shown = [o for o in OUTCOMES if counts.get(o, 0) or o in ("pass", "fail")]
        write(f"{len(state.results)} checks: " + ", ".join(f"{counts.get(o, 0)} {o}" for o in shown))
        if state.deselected_for_profile:
            write(f"({state.deselected_for_profile} checks of other profiles were not run)")
        warnings = [r for r in state.results if r["outcome"] == "warning"]
        if warnings:
            write("warnings (SHOULD-level misses; these checks passed):")
            for result in warnings:
                write(f"  {result['requirement']} {result['check']}: {result['warning']}")
                if result.get("warning_rule"):
                    write(f"      rule {result['warning_rule']}")
        waived = [r for r in state.results if r["outcome"] == "waived"]
        if waived:
            write("waived (failures a waiver covers; they do not fail the run):")
            for result in waived:
                write(f"  {result['requirement']} {result['check']}: {result['message']}")
                write(f"      {result['waiver']}")
        failed = [r for r in state.results if r["outcome"] in ("fail", "broken")]
        if failed:
            write("failed:")
            for result in failed:
                write(f"  [{result['outcome']}] {result['requirement']} {result['check']}")
                if result.get("waiver_expired"):
                    write(f"      not waived: {result['waiver_expired']}")
        for waiver in self._waiver_report().get("stale", []):
            write(f"stale waiver: {waiver['waiver']}: {waiver['detail']}")
        comparison = self._comparison()
        if comparison is not None:
            write(
                f"against the baseline: {len(comparison['regressions'])} regressions, {len(comparison['fixed'])} fixed,"
                f" {len(comparison['new_checks'])} new checks"
            )
            for check in comparison["regressions"]:
                write(f"  regression: {check}")
        outage = next((r for r in state.results if r.get("outage")), None)
        if outage is not None:
            write(f"{outage['outage']}: {counts.get('not-run', 0)} later checks were not run")
        write(
            f"{traffic['requests']} requests sent; {traffic['retries']} retries after rate limiting "
            f"({traffic['waited']:g} s waited)"
        )
        if state.verdict is not None and state.verdict.reason is not None:
            write(f"the target could not be judged (exit {state.verdict.code}): {state.verdict.reason}")

    def _traffic(self) -> dict[str, Any]:
        results = _state(self.config).results
        return {
            "requests": sum(int(r.get("requests") or 0) for r in results),
            "retries": sum(int(r.get("retries") or 0) for r in results),
            "waited": round(sum(float(r.get("waited") or 0) for r in results), 3),
        }

    def _waiver_report(self) -> dict[str, list[dict[str, str]]]:
        state = _state(self.config)
        if not state.waivers or state.metadata is None:
            return {"applied": [], "expired": [], "stale": []}
        applied = [{"waiver": str(r["waiver"]), "check": r["check"]} for r in state.results if r.get("waiver")]
        expired = [
            {"waiver": str(r["waiver_expired"]), "check": r["check"], "detail": "the failure stands"}
            for r in state.results
            if r.get("waiver_expired")
        ]
        stale_ones = [
            {"waiver": w.label(), "detail": f"its checks pass now; remove it ({w.describe()})"}
            for w in stale(state.waivers, state.results, state.metadata.target_identity, state.today)
        ]
        return {"applied": applied, "expired": expired, "stale": stale_ones}

    def _comparison(self) -> dict[str, list[str]] | None:
        state = _state(self.config)
        return compare(state.baseline, state.results) if state.baseline is not None else None

    def _decide(self, session: pytest.Session) -> None:
        """The run's exit code (conformance.runner.verdict): set on the session so pytest exits with it."""
        state = _state(session.config)
        if not state.results or session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return
        outage = next((r["outage"] for r in state.results if r.get("outage")), None)
        if outage is None and state.health.outage is not None and not state.outage_reported:
            outage = state.health.outage.summary  # noticed after the last check: no check could carry it
        preflight = state.preflight_error or next((r["preflight"] for r in state.results if r.get("preflight")), None)
        judged = state.results
        comparison = self._comparison()
        if state.fail_on == "regression" and comparison is not None:
            # Failures the baseline already had were accepted: judged, but no reason to fail. Everything else
            # (a regression, an outage, broken or unjudged checks) decides as usual.
            regressions = set(comparison["regressions"])
            known = {r["check"] for r in state.results if r["outcome"] == "fail"} - regressions
            judged = [{**r, "outcome": "waived"} if r["check"] in known else r for r in state.results]
        decided = verdict(judged, outage=outage, preflight=preflight)
        state.verdict = decided
        session.exitstatus = decided.code

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = _state(session.config)
        if state.allure_writer is not None:
            allure_writing.report_errors(state.allure_writer.wait())  # every result on disk before run files
        if hasattr(session.config, "workerinput"):
            return
        if state.late_config_error is not None:
            print(f"conformance: error: {state.late_config_error}", file=sys.stderr, flush=True)
            session.exitstatus = EXIT_USAGE
            return
        state.internal_error = session.exitstatus == pytest.ExitCode.INTERNAL_ERROR
        if _interrupted and (state.results or _runs_the_suites(session.config)):
            session.exitstatus = EXIT_INTERRUPTED
        self._one_outage()
        self._decide(session)
        if state.results:
            self._learn_the_client_id()
            self._write_allure_files(session.config)
            self._describe_in_junit(session.config)
        if state.results_path is None or not state.results:
            return
        document = results_document.build(
            state.results,
            run=state.metadata.as_dict() if state.metadata is not None else None,
            exitstatus=int(session.exitstatus),
            unjudged_reason=(
                "the suite itself failed (INTERNALERROR); please report it"
                if state.internal_error
                else state.verdict.reason
                if state.verdict
                else None
            ),
            traffic=self._traffic(),
            waivers=self._waiver_report(),
            comparison=self._comparison(),
        )
        results_document.write(state.results_path, document)
        results_document.write_atomically(state.results_path.parent / "summary.md", summary.render(document))

    def _learn_the_client_id(self) -> None:
        """The embedded server's client is made when it starts (in a worker, under xdist): the checks carry it."""
        state = _state(self.config)
        known = next((r["client_id"] for r in state.results if r.get("client_id")), None)
        if state.metadata is not None and not state.metadata.client_id and known:
            state.metadata = dataclasses.replace(state.metadata, client_id=str(known))

    def _describe_in_junit(self, config: pytest.Config) -> None:
        """The JUnit suite named after the system and target, with the run's metadata as its properties (this runs
        before the junitxml plugin writes its file)."""
        from _pytest.junitxml import xml_key

        xml = config.stash.get(xml_key, None)
        state = _state(config)
        if xml is None or state.metadata is None:
            return
        if config.getini("junit_suite_name") == "pytest":
            xml.suite_name = f"{state.metadata.system} @ {state.metadata.target}"
        for name, value in state.metadata.properties():
            xml.add_global_property(name, state.redactor.text(value))

    def _write_allure_files(self, config: pytest.Config) -> None:
        directory = getattr(config.option, "allure_report_dir", None)
        state = _state(config)
        if not directory or state.metadata is None:
            return
        properties = [(k, state.redactor.text(v)) for k, v in state.metadata.properties()]
        allure_output.write_run_files(Path(directory), properties, state.metadata.ci)
        allure_output.drop_fixture_containers(Path(directory))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist only workers collect: the controller stops a misconfigured run here, with its one line. Allure's
    result files are written by a thread of their own from here on (allure-pytest registered its writer in
    pytest_configure)."""
    state = _state(session.config)
    state.allure_writer = allure_writing.write_beside_the_checks(
        getattr(session.config.option, "allure_report_dir", None)
    )
    if state.allure_writer is not None:
        session.config.add_cleanup(state.allure_writer.close)
    if state.config_error and not hasattr(session.config, "workerinput") and _runs_the_suites(session.config):
        _stop_for_configuration(state.config_error)
