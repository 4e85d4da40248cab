"""Speed and memory figures for BENCHMARKS.md; talks to loopback only.

    python benchmarks/run.py            # everything (the fault matrix takes a few minutes)
    python benchmarks/run.py --quick    # skip the fault and variation matrices

Prints a Markdown table. Figures are wall-clock seconds on the machine it runs on.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall time, exit code and output of a command."""
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - started, proc.returncode, proc.stdout + proc.stderr


def bench_run(profile: str, runs: int, latency_ms: float = 0, options: tuple[str, ...] = ()) -> list[str]:
    rows = []
    times = []
    extra = ["--", "--conformance-mock-setting", f"latency_ms={latency_ms:g}"] if latency_ms else []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            seconds, code, output = timed(
                [
                    sys.executable,
                    *("-m", "conformance.runner.cli", "run", "-q", "--profile", profile, "--reports", "r"),
                    *options,
                    *extra,
                ],
                Path(tmp),
            )
            if code != 0:
                raise SystemExit(f"conformance run --profile {profile} failed:\n{output[-2000:]}")
            times.append(seconds)
            peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        checks = next((line.split()[0] for line in output.splitlines() if " checks: " in line), "?")
    requests = next((line.split()[0] for line in output.splitlines() if " requests sent;" in line), "?")
    latency = f", {latency_ms:g} ms per request" if latency_ms else ""
    flags = "".join(f" {o}" for o in options)
    rows.append(
        f"| `conformance run --profile {profile}{flags}` (embedded{latency}, {checks} checks, {requests} requests, all "
        "reports) "
        f"| median {statistics.median(times):.2f} s of {runs} (min {min(times):.2f}, max {max(times):.2f}); "
        f"peak RSS {peak / 1024:.0f} MiB |"
    )
    return rows


def bench_requests(count: int) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from conformance.crypto.jose import client_assertion
    from conformance.flows.oauth import assertion_form, post_token
    from conformance.profiles.smart_backend import CLIENT_ID
    from conformance.runner.embedded import start_embedded

    target = start_embedded()
    try:
        key = target.config.keys[0]
        token_url = target.config.base_url.rsplit("/fhir", 1)[0] + "/token"  # type: ignore[union-attr]
        samples = []
        for _ in range(count):
            form = assertion_form(client_assertion(key, client_id=CLIENT_ID, audience=token_url), "system/Patient.read")
            started = time.perf_counter()
            exchange = post_token(target.http, token_url, form, purpose="bench")
            samples.append((time.perf_counter() - started) * 1000)
            assert exchange.status == 200, exchange.text
        samples.sort()
        p50, p95 = samples[len(samples) // 2], samples[int(len(samples) * 0.95)]
    finally:
        target.close()
    return [
        f"| token request round trip to the reference server ({count} requests) | p50 {p50:.1f} ms, p95 {p95:.1f} ms |"
    ]


def bench_startup(runs: int) -> list[str]:
    """Where an embedded smart-backend run spends its time: imports, collection, the run without report files
    (pytest with the flags `conformance run` passes, so the steps add up)."""
    sys.path.insert(0, str(ROOT))
    from conformance.runner.cli import UNUSED_PLUGINS

    pytest_run = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-q", "-p", "no:cacheprovider"]
    pytest_run += ["--assert=plain", *UNUSED_PLUGINS]
    steps = {
        "import the CLI": [sys.executable, "-c", "import conformance.runner.cli"],
        "collect the suites (no run)": [*pytest_run, "--collect-only"],
        "run, no report files": [*pytest_run, "-p", "no:allure_pytest", "-p", "no:junitxml"],
        "run, all reports (`conformance run`)": [
            *(sys.executable, "-m", "conformance.runner.cli", "run", "-q", "--reports", "r"),
        ],
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in steps.items():
            times = []
            for _ in range(runs):
                seconds, code, output = timed(command, Path(tmp))
                if code != 0:
                    raise SystemExit(f"{name} failed:\n{output[-2000:]}")
                times.append(seconds)
            rows.append(f"| start-up breakdown (smart-backend): {name} | median {statistics.median(times):.2f} s |")
    return rows


def bench_matrix(name: str, path: str) -> list[str]:
    seconds, code, output = timed([sys.executable, "-m", "pytest", path, "-n", "2", "-q", "-p", "no:randomly"], ROOT)
    if code != 0:
        raise SystemExit(f"{name} failed:\n{output[-3000:]}")
    summary = output.strip().splitlines()[-1]
    return [f"| {name} (`pytest {path} -n 2`) | {seconds:.0f} s ({summary.strip('= ')}) |"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the fault and variation matrices")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| what | figure |\n|---|---|")
    from conformance.profiles import registry as profiles

    rows = [row for profile in profiles.names() for row in bench_run(profile, args.runs)]
    rows += [row for profile in profiles.names() for row in bench_run(profile, args.runs, latency_ms=50)]
    # Which helps when: one request at a time (the old way), and xdist workers instead of requests side by side.
    for options in (("--concurrency", "1"), ("-n", "2")):
        for latency in (0, 50):
            rows += bench_run("smart-backend", args.runs, latency_ms=latency, options=options)
    rows += bench_startup(args.runs) + bench_requests(200)
    if not args.quick:
        rows += bench_matrix("fault matrix", "tests/test_fault_matrix.py")
        rows += bench_matrix("variation matrix", "tests/test_variation_matrix.py")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
