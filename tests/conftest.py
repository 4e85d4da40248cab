"""Fixtures shared by the project's own tests."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conformance.profiles.smart_backend import embedded_keys

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's tests talk to 127.0.0.1 only; any other connection attempt fails the test."""
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            try:
                allowed = ipaddress.ip_address(host).is_loopback
            except ValueError:
                allowed = host == "localhost"
            if not allowed:
                raise OSError(f"tests may only connect to loopback addresses, not {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys generated once and shared by every embedded run of the session."""
    directory = tmp_path_factory.mktemp("keys")
    embedded_keys(directory)
    return directory


class SuiteWorker:
    """One `tests.suite_worker` process; runs the suites in-process there, one request at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.suite_worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, args: list[str], cwd: Path) -> tuple[int, str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"args": args, "cwd": str(cwd)}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("the suite worker died")
        reply = json.loads(answer)
        return int(reply["code"]), str(reply["output"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def suite_worker() -> Iterator[SuiteWorker]:
    worker = SuiteWorker()
    yield worker
    worker.close()


def run_suites(
    out_dir: Path,
    *extra: str,
    profile: str = "smart-backend",
    keys_dir: Path | None = None,
    faults: tuple[str, ...] = (),
    variations: tuple[str, ...] = (),
    settings: tuple[tuple[str, object], ...] = (),
    timeout: float = 600,
    worker: SuiteWorker | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    """Run the suites (no Allure, no JUnit) in a subprocess or a worker; return outcomes by check id."""
    results = out_dir / "results.json"
    args = [
        str(SUITES),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:allure_pytest",
        "-p",
        "no:junitxml",
        "-p",
        "no:randomly",
        "--conformance-profile",
        profile,
        "--conformance-results",
        str(results),
    ]
    if keys_dir is not None:
        args += ["--conformance-embedded-keys", str(keys_dir)]
    for fault in faults:
        args += ["--conformance-mock-fault", fault]
    for variation in variations:
        args += ["--conformance-mock-variation", variation]
    for name, value in settings:
        args += ["--conformance-mock-setting", f"{name}={value}"]
    args += list(extra)
    if worker is not None:
        code, output = worker.run(args, out_dir)
        proc = subprocess.CompletedProcess(args, code, output, "")
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *args], capture_output=True, text=True, timeout=timeout, cwd=out_dir
        )
    if not results.exists():
        raise AssertionError(
            f"the suites wrote no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    checks = json.loads(results.read_text())["checks"]
    return proc, {c["check"]: c for c in checks}


def udap_test_members(keys_dir: Path) -> tuple[Any, Any, Any]:
    """A test UDAP community: (its members, a `prepare` that gives the reference server a certificate for its own
    URL, the community's client with a B2B extension)."""
    from conformance.crypto.pki import issue
    from conformance.flows import udap
    from conformance.mock.settings import MockSettings
    from conformance.mock.systems.udap import UdapServerSettings
    from conformance.profiles.udap_community import community

    members = community(keys_dir / "udap")

    def prepare(settings: MockSettings) -> None:
        signer = issue(members["intermediate"], common_name="mock", san_uris=[settings.fhir_base])
        settings.udap = UdapServerSettings(signer=signer, anchors=[members["root"].certificate])

    client = udap.UdapClient(
        members["client"],
        members["client"].san_uris()[0],
        udap.B2B("https://org.example", "Org"),
        "system/Patient.read",
    )
    return members, prepare, client


@contextmanager
def reference_with_suite_client(keys_dir: Path, faults: tuple[str, ...] = ()) -> Iterator[Any]:
    """The smart-backend reference server with the suite's client (both keys of `keys_dir`) registered: a
    configured target for tests that put something between the suite and the server."""
    from conformance.crypto.jose import jwks, load_key
    from conformance.mock.server import MockServer
    from conformance.mock.store import Client
    from conformance.profiles import registry as profiles
    from conformance.profiles.smart_backend import CLIENT_ID, CLIENT_SCOPES

    keys = [load_key(keys_dir / f"{name}.pem") for name in ("client-rs384", "client-es384")]
    with MockServer(profiles.DEFAULT.server_settings(faults)) as server:
        server.ctx.store.put_client(Client(CLIENT_ID, jwks=jwks(keys), scopes=CLIENT_SCOPES))
        yield server


def suite_client_flags(keys_dir: Path) -> list[str]:
    """The `conformance run` flags of the client `reference_with_suite_client` registers."""
    from conformance.profiles.smart_backend import CLIENT_ID

    return [
        "--client-id",
        CLIENT_ID,
        "--private-key",
        str(keys_dir / "client-rs384.pem"),
        "--private-key",
        str(keys_dir / "client-es384.pem"),
        "--patient-id",
        "example",
    ]


def suites_in_pytest(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`pytest suites ARGS` in a fresh process, as a user runs it (no cache, so runs do not see each other)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITES), "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )
