"""Token-endpoint throughput of the reference server beside panva/oidc-provider (issue 12, sections 3 and 5).

    python benchmarks/token_throughput.py           # the BENCHMARKS.md figures (about 8 minutes)
    python benchmarks/token_throughput.py --quick   # a smoke run (about 2 minutes)

Absolute figures from a shared 2-core machine say little; the ratio to a leading open-source server
doing the same work on the same machine does. Both servers run as one process and get the same load
(wrk -t2 -c16 with benchmarks/token_bodies.lua) and the same kind of body: client_credentials with a
pre-signed RS384 private_key_jwt assertion, its own jti, sent once. Needs wrk, node and npm; oidc-provider
is installed with npm into $BENCH_NPM_PREFIX (default: a directory under the system temp dir) when missing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ID, SCOPE, KID = "bench-client", "system/Patient.read", "bench-key"
OIDC_PROVIDER = "oidc-provider@9.13.3"
NPM_PREFIX = Path(os.environ.get("BENCH_NPM_PREFIX", Path(tempfile.gettempdir()) / "fhir-b2b-bench-npm"))
WRK = ["wrk", "-t2", "-c16", "--latency", "-s", str(ROOT / "benchmarks" / "token_bodies.lua")]
GUESS_RPS = 6000
"""Bodies are signed for this rate before a server's own rate is known; a run that runs dry is flagged."""


def sign_bodies(job: tuple[bytes, str, int, str]) -> None:
    """Pool worker: write `count` token request bodies, each with a fresh assertion (own jti, exp 5 min ahead)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from conformance.crypto.jose import ASSERTION_TYPE, ClientKey, client_assertion

    pem, audience, count, path = job
    private = load_pem_private_key(pem, None)
    assert isinstance(private, rsa.RSAPrivateKey)
    key = ClientKey(KID, "RS384", private)
    form = {"grant_type": "client_credentials", "scope": SCOPE, "client_assertion_type": ASSERTION_TYPE}
    with open(path, "w") as out:
        for _ in range(count):
            assertion = client_assertion(key, client_id=CLIENT_ID, audience=audience)
            out.write(urlencode({**form, "client_assertion": assertion}) + "\n")


@dataclass
class Load:
    """One wrk run: throughput, latency (ms), how many requests were refused, and RSS samples (MiB)."""

    rps: float
    p50: float
    p99: float
    requests: int
    refused: int
    dry: bool
    rss: list[float] = field(default_factory=list)


class Server:
    """A server process under test; it is the process that serves, so its RSS is the figure."""

    def __init__(self, command: list[str], ready: str, discovery: str, log: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while not (found := re.search(ready, log.read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command[0]} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.token_url: str = httpx.get(found.group(1) + discovery).json()["token_endpoint"]

    def rss_mib(self) -> float:
        return int(_grab(r"VmRSS:\s+(\d+)", Path(f"/proc/{self.proc.pid}/status").read_text())) / 1024

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _grab(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"no {pattern!r} in wrk's output:\n{text}")
    return found.group(1)


def _ms(text: str) -> float:
    value, unit = _grab(r"^([\d.]+)(?:us|ms|s|m)$", text), _grab(r"(us|ms|s|m)$", text)
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    server: Server, prefix: Path, seconds: float, *, until_dry: bool = False, rss_at: tuple[float, ...] = ()
) -> Load:
    """Load the token endpoint for `seconds` (or, `until_dry`, until every body is sent), sampling RSS at `rss_at`."""
    proc = subprocess.Popen(
        [*WRK, f"-d{seconds}s", server.token_url, "--", str(prefix)], stdout=subprocess.PIPE, text=True
    )
    started, rss = time.monotonic(), []
    for at in rss_at:
        time.sleep(max(0.0, started + at - time.monotonic()))
        rss.append(server.rss_mib())
    done = [Path(f"{prefix}.{n}.done") for n in (1, 2)]
    while until_dry and proc.poll() is None and not all(d.exists() for d in done):
        time.sleep(0.2)
    if until_dry:
        time.sleep(0.5)  # the last answers
        proc.send_signal(signal.SIGINT)  # wrk prints its figures for the time it ran
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed:\n{out}")
    rps, requests, p50, p99 = (
        _grab(p, out)
        for p in (r"Requests/sec:\s+(\S+)", r"(\d+) requests in", r"(?m)^\s+50%\s+(\S+)", r"(?m)^\s+99%\s+(\S+)")
    )
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    dry = any(d.exists() for d in done)
    for path in prefix.parent.glob(prefix.name + ".*"):
        path.unlink()
    return Load(float(rps), _ms(p50), _ms(p99), int(requests), int(refused.group(1)) if refused else 0, dry, rss)


def bench(start: Callable[[], Server], pool: Pool, pem: bytes, work: Path, quick: bool) -> dict[str, Load]:
    """Fresh, two more runs, after the preload, and (a new process) sustained load with RSS samples."""
    run_s, sustain_s, preload = (2, 10, 5_000) if quick else (5, 60, 100_000)

    def bodies(server: Server, count: int, name: str) -> Path:
        prefix = work / name
        jobs = [(pem, server.token_url, count // 2 + 1, f"{prefix}.{n}") for n in (1, 2)]
        pool.map(sign_bodies, jobs)
        return prefix

    server, results = start(), {}
    try:
        prefixes = [bodies(server, GUESS_RPS * run_s, f"run{n}") for n in (1, 2, 3)]
        for n, prefix in enumerate(prefixes, 1):
            results[f"run {n}"] = run_wrk(server, prefix, run_s)
        issued = sum(r.requests - r.refused for r in results.values())
        rate = max(r.rps for r in results.values())
        while issued < preload:  # in chunks: an assertion is good for five minutes only
            chunk = max(1000, min(25_000, preload - issued))
            run_wrk(server, bodies(server, chunk, "preload"), 3600, until_dry=True)
            issued += chunk  # every body is sent (wrk may not have read the last few answers)
        results["after"] = run_wrk(server, bodies(server, int(rate * run_s * 1.5) + 1000, "after"), run_s)
    finally:
        server.stop()
    server = start()
    try:
        idle = server.rss_mib()
        prefix = bodies(server, int(rate * sustain_s * 1.3) + 2000, "sustained")
        results["sustained"] = run_wrk(server, prefix, sustain_s, rss_at=(5.0, sustain_s - 0.5))
        results["sustained"].rss.insert(0, idle)
    finally:
        server.stop()
    return results


def machine() -> str:
    """The machine and tool versions, for BENCHMARKS.md."""
    model = re.search(r"Model name:\s+(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    node = subprocess.run(["node", "-v"], capture_output=True, text=True).stdout.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" [")[0]
    return (
        f"{os.cpu_count()} cores ({model.group(1) if model else '?'}), Python {sys.version.split()[0]}, "
        f"Node {node}, {wrk}, {OIDC_PROVIDER}; load: {' '.join(WRK[:3])} -dNs, one body per request"
    )


def table(ours: dict[str, Load], theirs: dict[str, Load], sustain_s: int, preload: int) -> list[str]:
    """The Markdown rows: each figure for both servers and the ratio (throughput; p99 in brackets)."""

    def cell(load: Load, base: Load | None = None) -> str:
        text = f"{load.rps:.0f} req/s, p50 {load.p50:.1f} ms, p99 {load.p99:.1f} ms"
        text += f" ({load.rps / base.rps:.2f}x fresh)" if base else ""
        text += " (ran dry: a lower bound)" if load.dry else ""
        return text + (f", {load.refused} refused" if load.refused else "")

    rows = ["| figure | reference server | oidc-provider | ours / oidc-provider |", "|---|---|---|---|"]
    names = {"run 1": "fresh process, 1st run", "run 2": "2nd run", "run 3": "3rd run"}
    names |= {
        "after": f"after {preload:,} issued tokens",
        "sustained": f"{sustain_s} s of sustained load (new process)",
    }
    for key, label in names.items():
        a, b = ours[key], theirs[key]
        ratio = f"{a.rps / b.rps:.2f} (p99 {a.p99 / b.p99:.2f})"
        base_a, base_b = (ours["run 1"], theirs["run 1"]) if key in ("run 2", "run 3", "after") else (None, None)
        rows.append(f"| {label} | {cell(a, base_a)} | {cell(b, base_b)} | {ratio} |")
    mib = [" / ".join(f"{v:.0f}" for v in side["sustained"].rss) for side in (ours, theirs)]
    rows.append(f"| RSS idle / after 5 s / after {sustain_s} s of load (MiB) | {mib[0]} | {mib[1]} | |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs and a 5,000-token preload: a smoke test")
    args = parser.parse_args()
    for tool in ("wrk", "node", "npm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (wrk: apt-get install -y wrk)")
    if not (NPM_PREFIX / "node_modules" / "oidc-provider" / "package.json").exists():
        subprocess.run(
            ["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", OIDC_PROVIDER], check=True
        )
    sys.path.insert(0, str(ROOT))
    from conformance.crypto.jose import generate_rsa, jwks

    key = generate_rsa(kid=KID)
    with tempfile.TemporaryDirectory(prefix="token-bench-") as tmp, multiprocessing.get_context("fork").Pool(2) as pool:
        work = Path(tmp)
        (work / "jwks.json").write_text(json.dumps(jwks([key])))

        def ours() -> Server:
            command = [sys.executable, "-m", "conformance.runner.cli", "mock", "--profile", "smart-backend"]
            command += ["--port", "0", "--register-client", CLIENT_ID, "--jwks", str(work / "jwks.json")]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the server of this checkout, as `conformance mock`
            ready = r"reference server \(\S+\) at (\S+)"
            return Server(
                [*command, "--scopes", SCOPE], ready, "/.well-known/smart-configuration", work / "ours.log", env
            )

        def theirs() -> Server:
            script = str(ROOT / "benchmarks" / "oidc_provider_server.mjs")
            command = ["node", script, "0", str(work / "jwks.json"), CLIENT_ID, SCOPE]
            env = {**os.environ, "OIDC_PROVIDER_PREFIX": str(NPM_PREFIX)}
            return Server(
                command, r"oidc-provider (\S+) ready", "/.well-known/openid-configuration", work / "oidc.log", env
            )

        mine, other = (bench(start, pool, key.private_pem(), work, args.quick) for start in (ours, theirs))
    print(f"Machine: {machine()}\n")
    print("\n".join(table(mine, other, *((10, 5_000) if args.quick else (60, 100_000)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
