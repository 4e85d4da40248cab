"""The `conformance` command: run the suites, serve the reference server, list faults.

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 a usage
or configuration error, 3 the target could not be judged (unreachable, down since
a check, credentials it cannot use, or most checks not run). The pytest plugin
sets the same codes, so `pytest suites/` and `conformance run` agree.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from conformance.mock.settings import CARE_QUALITY_SHAPES
from conformance.profiles import registry as profiles
from conformance.runner.verdict import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNJUDGED, EXIT_USAGE


class UsageError(Exception):
    """A mistake in how the command was called; printed on one line, exit 2."""


def suites_dir() -> Path:
    """Where the conformance suites live (next to the package in a checkout or an install)."""
    import suites

    return Path(suites.__file__).resolve().parent


def _target_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "target.base_url": args.target_url,
        "target.profile": args.profile,
        "auth.client_id": args.client_id,
        "auth.private_keys": args.private_key,
        "target.patient_id": args.patient_id,
        "auth.scopes": args.scope,
        "http.timeout": args.timeout,
        "http.verify_tls": False if args.no_verify_tls else None,
        "http.proxy": getattr(args, "proxy", None),
        "http.max_rps": getattr(args, "max_rps", None),
        "http.concurrency": getattr(args, "concurrency", None),
    }


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target (flags override CONFORMANCE_* variables, which override the file)")
    group.add_argument(
        "--config", type=Path, help="target configuration file (TOML); `conformance init` writes a commented one"
    )
    group.add_argument("--target-url", help="FHIR base URL; without it the embedded reference server is certified")
    group.add_argument("--profile", help=f"{_profile_list()} (default {profiles.DEFAULT.name})")
    group.add_argument("--client-id", help="client id registered at the target")
    group.add_argument("--private-key", action="append", help="client private key (PEM or JWK); repeatable")
    group.add_argument("--patient-id", help="a patient id the client may read")
    group.add_argument("--scope", action="append", help="scope to request; repeatable")
    group.add_argument(
        "--timeout", type=float, help="total time per request (connect, headers, body) in seconds (default 10)"
    )
    group.add_argument(
        "--proxy", help="HTTP proxy URL, or 'none' (default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY as set)"
    )
    group.add_argument(
        "--max-rps", type=float, help="send at most this many requests per second (rate-limited targets)"
    )
    group.add_argument(
        "--concurrency",
        type=int,
        help="at most this many independent requests in flight at once (default 8; 1 sends one after another)",
    )
    group.add_argument(
        "--wait-for-target",
        type=float,
        metavar="SECONDS",
        help="wait up to SECONDS for the target to answer before the checks (CI jobs that start it just before)",
    )
    group.add_argument(
        "--no-verify-tls", action="store_true", help="do not verify TLS certificates (test servers only)"
    )


def _environment_help() -> str:
    """The CONFORMANCE_* variables, for --help (flags override them; they override the config file)."""
    from conformance.runner.configuration import DEFAULT_SECRET_ENV, ENVIRONMENT

    rows = [("CONFORMANCE_CONFIG", "the target configuration file (as --config)")]
    rows += [(name, option) for name, option in ENVIRONMENT.items()]
    rows += [
        (DEFAULT_SECRET_ENV, "the client secret (client-secret profile; auth.client_secret_env names another)"),
        ("CONFORMANCE_ALLURE", "an Allure Report 3 `allure` executable for `conformance report`"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["Environment variables (flags override them; they override the config file):"]
    lines += [f"  {name.ljust(width)}  {option}" for name, option in rows]
    lines.append("Config file values may use ${NAME} for an environment variable ($$ for a literal $).")
    return "\n".join(lines)


def _version() -> str:
    from conformance import __version__
    from conformance.core.catalogues import catalogue_version

    return f"{__version__} (catalogues {catalogue_version()})"


def _profile_list(aliases: bool = False) -> str:
    """The profile names for help texts (with aliases in brackets, for the reference server)."""
    shown = []
    for profile in profiles.PROFILES:
        also = f" ({', '.join(profile.aliases)})" if aliases and profile.aliases else ""
        shown.append(profile.name + also)
    return ", ".join(shown)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conformance",
        description="Conformance checks for FHIR system-to-system (B2B) authorization.",
        epilog=(
            "Exit codes: 0 all checks passed (warnings and waived failures allowed), 1 a check failed, 2 usage or "
            "configuration error, 3 the target could not be judged, 130 interrupted.\n\n" + _environment_help()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the suites against a target (default: the embedded reference server)")
    _add_target_options(run)
    run.add_argument("--reports", type=Path, default=Path("reports"), help="report directory (default ./reports)")
    run.add_argument("-k", dest="keyword", help="only checks matching this pytest -k expression")
    run.add_argument("-m", dest="markexpr", help="only checks matching this pytest -m expression")
    run.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing check")
    run.add_argument("-n", dest="workers", help="run checks in N worker processes (pytest-xdist)")
    run.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    run.add_argument("-v", "--verbose", action="count", default=0, help="more output (one line per check)")
    run.add_argument(
        "--fault", action="append", default=[], help="embedded run only: switch a reference-server fault on"
    )
    run.add_argument(
        "--variation",
        action="append",
        default=[],
        help="embedded run only: switch a compliant reference-server variation on (`conformance variations`)",
    )
    run.add_argument(
        "--waivers", type=Path, help="waivers.toml: known deviations, reported as waived until they expire"
    )
    run.add_argument("--baseline", type=Path, help="an earlier results.json: report regressions, fixed and new checks")
    run.add_argument(
        "--fail-on",
        choices=("failure", "regression"),
        default="failure",
        help="what fails the run: any failed check (default), or only regressions against --baseline",
    )
    run.add_argument(
        "--report", action="store_true", help="also build the HTML report (Allure Report 3) when the run ends"
    )
    run.add_argument("--single-file", action="store_true", help="with --report: one self-contained HTML file")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra arguments for pytest")

    report = commands.add_parser(
        "report", help="build the HTML report (Allure Report 3) from the last run's results and print its path"
    )
    report.add_argument("--reports", type=Path, default=Path("reports"), help="report directory (default ./reports)")
    report.add_argument("--single-file", action="store_true", help="one self-contained HTML file (for CI artifacts)")
    report.add_argument("--output", type=Path, help="where to write the report (default REPORTS/html)")
    report.add_argument(
        "--install",
        action="store_true",
        help="install the pinned Allure Report 3 with npm (into ~/.cache) first; alone, before any run, only that",
    )

    requirements = commands.add_parser(
        "requirements", help="traceability: each requirement, its checks and their last result; SHALL rules unchecked"
    )
    requirements.add_argument("--format", choices=("text", "csv"), default="text", help="output format (default text)")
    requirements.add_argument(
        "--results", type=Path, help="the last run's results.json (default reports/results.json, if there is one)"
    )
    requirements.add_argument("--profile", help="only the checks of this profile")

    completion = commands.add_parser(
        "completion", help='print a shell completion script: eval "$(conformance completion bash)"'
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell")

    init = commands.add_parser("init", help="write a commented target configuration to fill in (target.toml)")
    init.add_argument("path", type=Path, nargs="?", default=Path("target.toml"), help="where (default ./target.toml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    mock = commands.add_parser("mock", help="serve the reference server")
    mock.add_argument(
        "--profile",
        default=profiles.DEFAULT.name,
        help=f"which system to emulate: {_profile_list(aliases=True)} (default {profiles.DEFAULT.name})",
    )
    mock.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    mock.add_argument("--port", type=int, default=8080, help="listen port (default 8080; 0 picks a free one)")
    mock.add_argument("--fault", action="append", default=[], help="switch a named fault on; repeatable")
    mock.add_argument("--variation", action="append", default=[], help="switch a compliant variation on; repeatable")
    mock.add_argument("--clients", type=Path, help="TOML file of clients to register ([[client]] tables)")
    mock.add_argument("--register-client", metavar="CLIENT_ID", help="register one client by id")
    mock.add_argument("--jwks", type=Path, help="with --register-client: the client's public JWKS file")
    mock.add_argument("--jwks-url", help="with --register-client: the client's JWKS URL")
    mock.add_argument(
        "--client-secret-env",
        metavar="NAME",
        help="with --register-client (client-secret): environment variable holding the client's secret",
    )
    mock.add_argument("--scopes", default="system/Patient.rs system/Observation.rs", help="scopes the client may get")
    mock.add_argument("--db", default=":memory:", help="SQLite file to keep registered clients across restarts")
    mock.add_argument("--token-lifetime", type=int, default=300, help="access token lifetime in seconds")
    mock.add_argument(
        "--pki",
        type=Path,
        default=Path("mock-pki"),
        help="udap/cerner-carequality: test community directory (made by `conformance pki init`; created if missing)",
    )
    mock.add_argument(
        "--access-denied",
        action="store_true",
        help="client-secret: answer every token request 403 'Access denied' (expired or revoked registration)",
    )
    mock.add_argument("--clock-offset", type=float, default=0.0, help="seconds to add to the server's clock (skew)")
    mock.add_argument(
        "--latency-ms", type=float, default=0.0, help="milliseconds every request waits (a WAN, reproducibly)"
    )
    mock.add_argument(
        "--carequality-shape",
        default="extension",
        choices=CARE_QUALITY_SHAPES,
        help="cerner-carequality: how the CapabilityStatement advertises the Carequality endpoints",
    )

    keys = commands.add_parser("keys", help="make client keys, or print the JWKS to register at a target")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    generate = key_commands.add_parser("generate", help="write an RS384 and an ES384 key and their public JWKS")
    generate.add_argument("directory", type=Path, help="where to write client-rs384.pem, client-es384.pem, jwks.json")
    show = key_commands.add_parser("jwks", help="print the public JWKS of the configured keys")
    show.add_argument("--config", type=Path, help="target configuration file (TOML)")
    show.add_argument("--private-key", action="append", help="private key file (PEM or JWK); repeatable")

    diagnose = commands.add_parser("diagnose", help="probe why token requests fail and rank the likely causes")
    _add_target_options(diagnose)
    diagnose.add_argument("--json", action="store_true", help="machine-readable report")
    diagnose.add_argument("--token-url", help="the token URL you were given (compared with what discovery says)")

    pki = commands.add_parser("pki", help="make a test UDAP trust community (CAs, client and server certificates)")
    pki_commands = pki.add_subparsers(dest="pki_command", metavar="ACTION")
    init = pki_commands.add_parser("init", help="write a test community into DIR")
    init.add_argument("directory", type=Path, help="an empty or new directory")
    init.add_argument(
        "--client-uri", required=True, help="the client's URI: its certificate SAN and UDAP iss/client id"
    )
    init.add_argument(
        "--server-uri",
        action="append",
        help="FHIR base URL(s) the server certificate is for (default http://127.0.0.1:8080/fhir, the mock's)",
    )

    variations = commands.add_parser(
        "variations", help="list the reference server's compliant variations, what allows each, what they record"
    )
    variations.add_argument("--json", action="store_true", help="machine-readable output")
    variations.add_argument("--profile", help="only the variations of this profile")

    faults = commands.add_parser("faults", help="list the reference server's faults and the checks each must kill")
    faults.add_argument("--json", action="store_true", help="machine-readable output")
    faults.add_argument("--check", action="store_true", help="exit 1 when some check is killed by no fault")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _errors_on_one_line(parser)
    try:
        args = parser.parse_args(argv)
        if args.command == "run":
            return command_run(args)
        if args.command == "mock":
            return command_mock(args)
        if args.command == "report":
            return command_report(args)
        if args.command == "init":
            return command_init(args)
        if args.command == "completion":
            from conformance.runner.completion import script

            sys.stdout.write(script(parser, args.shell))
            return EXIT_OK
        if args.command == "requirements":
            return command_requirements(args)
        if args.command == "faults":
            return command_faults(args)
        if args.command == "variations":
            return command_variations(args)
        if args.command == "keys":
            return command_keys(args, parser)
        if args.command == "pki":
            return command_pki(args, parser)
        if args.command == "diagnose":
            return command_diagnose(args)
        parser.print_help()
        return EXIT_USAGE
    except UsageError as exc:
        print(f"conformance: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `conformance faults | head`: the reader has gone; say nothing more (and not at exit either).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _errors_on_one_line(parser: argparse.ArgumentParser) -> None:
    """Argument errors (`--timeout soon`) become a UsageError like every other mistake: one line naming the flag,
    exit 2, instead of argparse's usage block, which buries the message under the full list of flags."""

    def error(message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{parser.prog} --help`)")

    parser.error = error  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _errors_on_one_line(subparser)


def _one_line(message: str) -> str:
    """Control characters (a newline in a path from a TOML string) shown escaped, so an error stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)


def command_run(args: argparse.Namespace) -> int:
    import pytest

    from conformance.runner.configuration import ConfigError, flag_names, load_config

    try:
        config = load_config(args.config, _target_overrides(args), flags=flag_names())
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    _check_reports_dir(args.reports)
    if args.wait_for_target is not None and not 0 <= args.wait_for_target <= 3600:
        raise UsageError(f"--wait-for-target must be between 0 and 3600 seconds, got {args.wait_for_target:g}")
    if (args.fault or args.variation) and not config.embedded:
        raise UsageError("--fault and --variation only apply to the embedded reference server (no --target-url)")
    from conformance.mock.faults import FaultSet, UnknownFault
    from conformance.mock.variations import UnknownVariation, VariationSet

    try:
        FaultSet(args.fault)
    except UnknownFault as exc:
        raise UsageError(f"--fault: {exc}") from None
    try:
        VariationSet(args.variation)
    except UnknownVariation as exc:
        raise UsageError(f"--variation: {exc}") from None
    reports: Path = args.reports
    pytest_args = [str(suites_dir())]
    if args.config:
        pytest_args += ["--conformance-config", str(args.config)]
    for flag, value in (
        ("target-url", args.target_url),
        ("profile", args.profile),
        ("client-id", args.client_id),
        ("patient-id", args.patient_id),
        ("request-timeout", args.timeout),
        ("proxy", args.proxy),
        ("max-rps", args.max_rps),
        ("concurrency", args.concurrency),
        ("wait-for-target", args.wait_for_target),
    ):
        if value is not None:
            pytest_args += [f"--conformance-{flag}", str(value)]
    for key_file in args.private_key or []:
        pytest_args += ["--conformance-private-key", key_file]
    for scope in args.scope or []:
        pytest_args += ["--conformance-scope", scope]
    if args.no_verify_tls:
        pytest_args.append("--conformance-no-verify-tls")
    for fault in args.fault:
        pytest_args += ["--conformance-mock-fault", fault]
    for variation in args.variation:
        pytest_args += ["--conformance-mock-variation", variation]
    _check_waivers_and_baseline(args)
    if args.waivers:
        pytest_args += ["--conformance-waivers", str(args.waivers)]
    if args.baseline:
        pytest_args += ["--conformance-baseline", str(args.baseline)]
    if args.fail_on != "failure":
        if not args.baseline:
            raise UsageError("--fail-on regression needs --baseline FILE (an earlier run's results.json)")
        pytest_args += ["--conformance-fail-on", args.fail_on]
    staging = _fresh_staging(reports)
    pytest_args += [
        "--alluredir",
        str(staging / "allure-results"),
        "--junitxml",
        str(staging / "junit.xml"),
        "--conformance-results",
        str(staging / "results.json"),
        "-p",
        "no:randomly",
        *UNUSED_PLUGINS,
        # Checks judge through expect.* (CheckFailure), never a bare assert: rewriting the suites' asserts only
        # costs the compile of every suite module (each run, where bytecode is not cached). A user's own
        # --assert after -- still wins.
        "--assert=plain",
        # The command imports httpx (and anyio) before pytest starts; pytest's note that it cannot rewrite
        # asserts in those modules is noise for every user.
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    ]
    extra = [a for a in args.pytest_args if a != "--"]
    if not any(a in ("--lf", "--ff", "--last-failed", "--failed-first") for a in extra):
        pytest_args += ["-p", "no:cacheprovider"]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    if args.markexpr:
        pytest_args += ["-m", args.markexpr]
    if args.exitfirst:
        pytest_args.append("-x")
    if args.workers:
        pytest_args += ["-n", args.workers]
    pytest_args += ["-q"] * args.quiet + ["-v"] * args.verbose + ["-rfE"] + extra
    where = "the embedded reference server" if config.embedded else config.base_url
    print(f"conformance: certifying {where} (profile {config.profile}); reports in {reports}/", flush=True)
    started = time.monotonic()
    code = pytest.main(pytest_args)
    elapsed = time.monotonic() - started
    if code in (pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.USAGE_ERROR, EXIT_USAGE):
        shutil.rmtree(staging, ignore_errors=True)  # nothing was judged: the previous reports stay as they were
        if code == pytest.ExitCode.NO_TESTS_COLLECTED:
            print("conformance: error: no checks were selected; the previous reports were left alone", file=sys.stderr)
        # The plugin ends a misconfigured run with 2 (its Ctrl-C is 130): both are usage errors here.
        return EXIT_USAGE
    internal_error = code == EXIT_UNJUDGED and _suite_failed(staging / "results.json")
    _publish(staging, reports)
    written = [name for name in ("summary.md", "results.json", "junit.xml") if (reports / name).exists()]
    print(
        f"conformance: finished in {elapsed:.1f} s; reports in {reports}/ ({', '.join(written) or 'none written'})",
        flush=True,
    )
    if code == pytest.ExitCode.OK:
        result = EXIT_OK
    elif code == pytest.ExitCode.TESTS_FAILED:
        result = EXIT_FAILED
    elif code == EXIT_INTERRUPTED:
        return EXIT_INTERRUPTED
    else:
        if internal_error:
            print(
                "conformance: error: the suite itself failed (INTERNALERROR above); please report it", file=sys.stderr
            )
        result = EXIT_UNJUDGED
    if args.report:
        from conformance.runner import html_report

        try:
            print(f"conformance: HTML report {html_report.build(reports, single_file=args.single_file)}", flush=True)
        except html_report.ReportError as exc:
            print(f"conformance: error: {_one_line(str(exc))}", file=sys.stderr)
    return result


def _suite_failed(results: Path) -> bool:
    """pytest's INTERNALERROR exits 3 like an unjudged target: the results file tells them apart."""
    try:
        document = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return True  # no results at all: the suite stopped before it could write them
    reason = document.get("unjudged_reason") if isinstance(document, dict) else None
    return isinstance(reason, str) and reason.startswith("the suite itself failed")


UNUSED_PLUGINS = [
    arg
    for name in ("hypothesispytest", "pytest_httpx", "anyio", "platformdirs", "unraisableexception")
    for arg in ("-p", f"no:{name}")
]
"""pytest plugins a test environment brings that the suites never use: hypothesis alone costs ~0.5 s to import.
unraisableexception runs two full garbage collections as the run ends (~0.07 s) to turn an exception raised in a
finalizer into a warning; without it Python prints such an exception to stderr itself."""


PUBLISHED = ("allure-results", "junit.xml", "results.json", "summary.md")
"""What a run writes into --reports; everything else there (history.jsonl, a baseline, html/) is left alone."""


def _fresh_staging(reports: Path) -> Path:
    """The run writes here first, so a run that selects nothing, or a usage error, never wipes the last reports."""
    staging = reports / ".run"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, reports: Path) -> None:
    """Move this run's files into place, replacing the previous run's (also the ones this run did not write)."""
    for name in PUBLISHED:
        old = reports / name
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
        if (staging / name).exists():
            os.replace(staging / name, old)
    shutil.rmtree(staging, ignore_errors=True)


def command_init(args: argparse.Namespace) -> int:
    """The example configuration ships in the package, so an installed wheel can start a project too."""
    from importlib import resources

    path: Path = args.path
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    text = resources.files("conformance").joinpath("examples", "target.example.toml").read_text(encoding="utf-8")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}: fill in target.base_url, auth.client_id and the key, then `conformance run --config {path}`")
    return EXIT_OK


def command_requirements(args: argparse.Namespace) -> int:
    from conformance.runner import requirements_report

    if args.profile and not profiles.is_known(args.profile):
        raise UsageError(f"--profile must be one of {_profile_list(aliases=True)}")
    results: Path | None = args.results
    if results is None:
        default = Path("reports/results.json")
        results = default if default.is_file() else None
    elif requirements_report.last_outcomes(results)[1] == {} and not _empty_results(results):
        raise UsageError(f"--results {results} is not a results.json written by `conformance run`")
    traces = requirements_report.trace(suites_dir(), results, args.profile)
    if args.format == "csv":
        sys.stdout.write(requirements_report.render_csv(traces))
    else:
        sys.stdout.write(requirements_report.render_text(traces, results))
    return EXIT_OK


def _empty_results(path: Path) -> bool:
    """A results.json of a run with no checks (valid, but nothing to trace)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(document, dict) and document.get("checks") == []


def command_report(args: argparse.Namespace) -> int:
    from conformance.runner import html_report

    try:
        if args.install:
            print(f"conformance: Allure Report 3 at {html_report.install()}", flush=True)
            if not (args.reports / "allure-results").is_dir():
                return EXIT_OK  # installed ahead of any run (a set-up step)
        index = html_report.build(args.reports, single_file=args.single_file, output=args.output)
    except html_report.ReportError as exc:
        raise UsageError(str(exc)) from None
    print(index)
    return EXIT_OK


def _check_waivers_and_baseline(args: argparse.Namespace) -> None:
    """Both files are read before anything runs: a typo in a waiver must not waive nothing, silently."""
    from conformance.core.config import ConfigError
    from conformance.runner.baseline import load_baseline
    from conformance.runner.waivers import load_waivers

    try:
        if args.waivers:
            load_waivers(args.waivers, suites_dir())
        if args.baseline:
            load_baseline(args.baseline)
    except ConfigError as exc:
        flag = "--waivers" if args.waivers and str(args.waivers) in str(exc) else "--baseline"
        raise UsageError(f"{flag}: {exc}") from None


def _check_reports_dir(reports: Path) -> None:
    """The report directory must be creatable and writable before anything runs: a run whose reports cannot be
    written has lost its evidence."""
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--reports {reports}: a file, not a directory, is in the way") from None
    except OSError as exc:
        raise UsageError(f"--reports {reports} cannot be created: {exc.strerror or exc}") from None
    if not reports.is_dir():
        raise UsageError(f"--reports {reports} is not a directory")
    probe = reports / ".conformance-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--reports {reports} is not writable: {exc.strerror or exc}") from None


def _load_clients_file(path: Path) -> list[dict[str, Any]]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"clients file {path} cannot be read: {exc}") from None
    clients = data.get("client", [])
    if not isinstance(clients, list):
        raise UsageError(f"clients file {path} must hold [[client]] tables")
    return clients


def command_mock(args: argparse.Namespace) -> int:
    from conformance.mock.faults import FaultSet, UnknownFault
    from conformance.mock.server import MockServer
    from conformance.mock.store import Client
    from conformance.mock.variations import UnknownVariation, VariationSet

    if not profiles.is_known(args.profile):
        raise UsageError(f"--profile must be one of {_profile_list(aliases=True)}")
    if not 0 <= args.latency_ms <= 60_000:
        raise UsageError(f"--latency-ms must be between 0 and 60000, got {args.latency_ms:g}")
    profile = profiles.get(args.profile)
    try:
        FaultSet(args.fault)
        VariationSet(args.variation)
    except (UnknownFault, UnknownVariation) as exc:
        raise UsageError(str(exc)) from None
    clients: list[Client] = []
    for entry in _load_clients_file(args.clients) if args.clients else []:
        clients.append(_client_from_entry(entry, args.clients))
    if args.register_client and args.client_secret_env:
        import os

        if profile.secret_client is None:
            raise UsageError(
                f"--client-secret-env: profile {profile.name} has no clients that authenticate with a secret"
            )
        secret = os.environ.get(args.client_secret_env)
        if not secret:
            raise UsageError(f"environment variable {args.client_secret_env} (--client-secret-env) is not set")
        clients.append(profile.secret_client(args.register_client, secret, args.scopes.split()))
    elif args.register_client:
        if not args.jwks and not args.jwks_url:
            raise UsageError("--register-client needs --jwks FILE, --jwks-url URL or --client-secret-env NAME")
        entry = {"client_id": args.register_client, "scopes": args.scopes.split()}
        if args.jwks:
            entry["jwks_file"] = str(args.jwks)
        if args.jwks_url:
            entry["jwks_url"] = args.jwks_url
        clients.append(_client_from_entry(entry, Path.cwd() / "command line"))
    settings = profile.server_settings(
        args.fault,
        args.variation,
        db_path=args.db,
        token_lifetime=args.token_lifetime,
        carequality_shape=args.carequality_shape,
        access_denied=args.access_denied,
        clock_offset=args.clock_offset,
        latency_ms=args.latency_ms,
    )
    options = profiles.ServeOptions(pki=args.pki)
    prepare = profile.serve_prepare(options) if profile.serve_prepare is not None else None
    try:
        server = MockServer(settings, host=args.host, port=args.port, prepare=prepare)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    except profiles.ProfileSetupError as exc:
        raise UsageError(str(exc)) from None
    for client in clients:
        server.ctx.store.put_client(client)
    registered = [c.client_id for c in server.ctx.store.clients()]
    print(f"reference server ({args.profile}) at {settings.fhir_base}", flush=True)
    for line in profile.serve_banner(server, options, registered):
        print(line, flush=True)
    if settings.faults:
        print(f"  faults on: {', '.join(sorted(settings.faults.names))}", flush=True)
    if settings.variations:
        print(f"  variations on: {', '.join(sorted(settings.variations.names))}", flush=True)
    print("  press Ctrl-C to stop", flush=True)
    server.serve_forever()
    return EXIT_OK


def _client_from_entry(entry: dict[str, Any], source: Path) -> Any:
    from conformance.mock.store import Client

    client_id = entry.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise UsageError(f"a client in {source} has no client_id")
    jwks = None
    if "jwks_file" in entry:
        jwks_path = Path(entry["jwks_file"])
        if not jwks_path.is_absolute():
            jwks_path = source.parent / jwks_path
        try:
            jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"JWKS file {jwks_path} for client {client_id} cannot be read: {exc}") from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise UsageError(f"JWKS file {jwks_path} for client {client_id} is not a JWKS")
        if any("d" in key for key in jwks["keys"]):
            raise UsageError(f"JWKS file {jwks_path} holds a private key; register the public JWKS only")
    scopes = entry.get("scopes", ["system/Patient.rs", "system/Observation.rs"])
    return Client(
        client_id,
        jwks=jwks,
        jwks_uri=entry.get("jwks_url"),
        scopes=scopes.split() if isinstance(scopes, str) else list(scopes),
        token_lifetime=entry.get("token_lifetime"),
    )


def command_keys(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from conformance.crypto.jose import generate_ec, generate_rsa, jwks
    from conformance.runner.configuration import ConfigError, flag_names, load_config

    if args.keys_command == "generate":
        directory: Path = args.directory
        targets = [directory / "client-rs384.pem", directory / "client-es384.pem", directory / "jwks.json"]
        existing = [str(p) for p in targets if p.exists()]
        if existing:
            raise UsageError(f"refusing to overwrite {', '.join(existing)}")
        rsa, ec = generate_rsa(), generate_ec()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for path, key in zip(targets, (rsa, ec), strict=False):
                path.write_bytes(key.private_pem())
                path.chmod(0o600)
            targets[2].write_text(json.dumps(jwks([rsa, ec]), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write keys into {directory}: {exc.strerror}") from None
        print(f"wrote {targets[0]} and {targets[1]} (private, keep them out of version control)")
        print(f"wrote {targets[2]}: register this public JWKS (or its URL) for your client at the server")
        return EXIT_OK
    if args.keys_command == "jwks":
        try:
            config = load_config(args.config, {"auth.private_keys": args.private_key}, flags=flag_names())
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        if not config.keys:
            raise UsageError("no private key is configured (auth.private_key(s) or --private-key)")
        print(json.dumps(jwks(config.keys), indent=2))
        return EXIT_OK
    parser.parse_args(["keys", "--help"])
    return EXIT_USAGE


def command_diagnose(args: argparse.Namespace) -> int:
    from conformance.flows.target import open_target
    from conformance.runner.configuration import ConfigError, flag_names, load_config
    from conformance.runner.diagnose import diagnose, render_json, render_text
    from conformance.runner.embedded import start_embedded

    overrides = {**_target_overrides(args), "target.token_url": args.token_url}
    try:
        config = load_config(args.config, overrides, flags=flag_names())
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    target = start_embedded(config.profile, template=config) if config.embedded else open_target(config)
    try:
        report = diagnose(target)
        print(json.dumps(render_json(report, target), indent=2) if args.json else render_text(report, target))
    finally:
        target.close()
    return EXIT_OK if report.healthy else EXIT_FAILED


def command_pki(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from conformance.crypto.pki import PkiError, create_community, write_community

    if args.pki_command != "init":
        parser.parse_args(["pki", "--help"])
        return EXIT_USAGE
    servers = args.server_uri or ["http://127.0.0.1:8080/fhir"]
    try:
        community = create_community(args.client_uri, servers)
        written = write_community(community, args.directory)
    except PkiError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote a TEST trust community to {args.directory}/ ({len(written)} files):")
    print(f"  trust anchor:        {args.directory / 'community-root.pem'}")
    print(f"  client certificate:  {args.directory / 'client-cert.pem'} + client-key.pem (SAN {args.client_uri})")
    print(f"  server certificate:  {args.directory / 'server-cert.pem'} + server-key.pem (SAN {', '.join(servers)})")
    print("  negative fixtures:   expired-client-*, untrusted-root.pem + untrusted-client-*, other-client-*")
    print(f"serve it: conformance mock --profile udap --pki {args.directory}")
    return EXIT_OK


def command_faults(args: argparse.Namespace) -> int:
    from conformance.runner.fault_coverage import coverage

    report = coverage(suites_dir())
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for fault in report["faults"]:
            print(f"{fault['name']}  [{', '.join(fault['profiles'])}]")
            print(f"    {fault['description']}")
            for check in fault["checks"]:
                print(f"    kills {check}")
            if not fault["checks"]:
                print("    kills NO CHECK")
        uncovered = report["uncovered"]
        print(
            f"\n{len(report['faults'])} faults, {report['check_count']} checks; "
            f"{len(uncovered)} checks are killed by no fault"
        )
        for check in uncovered:
            print(f"  not killed: {check}")
        for pattern in report["dead_patterns"]:
            print(f"  pattern matches no check: {pattern}")
    stale = report["uncovered"] or report["dead_patterns"] or any(not f["checks"] for f in report["faults"])
    if args.check and stale:
        return EXIT_FAILED
    return EXIT_OK


def command_variations(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from conformance.mock.variations import VARIATIONS

    if args.profile and not profiles.is_known(args.profile):
        raise UsageError(f"--profile must be one of {_profile_list(aliases=True)}")
    wanted = profiles.get(args.profile).name if args.profile else None
    rows = [v for v in VARIATIONS.values() if wanted is None or wanted in v.profiles]
    if args.json:
        print(json.dumps([{**asdict(v), "settings": dict(v.settings)} for v in rows], indent=1))
        return EXIT_OK
    for variation in rows:
        print(f"{variation.name}  [{', '.join(variation.profiles)}]")
        print(f"    {variation.description}")
        print(f"    allowed by: {variation.allowed_by}")
        for pattern in variation.records:
            print(f"    records its choice in {pattern}")
    print(f"\n{len(rows)} variations")
    return EXIT_OK


def console_main() -> int:
    """The `conformance` command: main(), then the process ends and frees everything at once, so the interpreter's
    last full garbage collection (~0.04 s after a run) is spared. Callers of main() in their own process keep
    their collector as it was."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
