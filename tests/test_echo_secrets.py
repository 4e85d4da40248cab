"""A target that echoes everything it receives cannot pull a secret into the reports.

Each profile runs against its reference server with `echo_requests` on: every
answer repeats the request's headers and body, so each secret the suite sends
(in whatever encoding it sends it), every assertion, every token and every
tampered token comes back. Then every output is scanned: console, Allure
results, JUnit, results.json. The secrets are the ones planted in the run (the
clients' secrets and the issued tokens, read from the server's database; the
private keys from the key directory) plus anything shaped like a signed JWT.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from conformance.crypto.jose import load_key
from conformance.profiles import registry as profiles

WINDOW = 16
"""A leak of any 16 consecutive characters of a token or secret counts (a tampered copy differs in one)."""
SIGNED_JWT = re.compile(r"[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{40,}")
PRIVATE_PEM = re.compile(r"PRIVATE KEY-----\s*[A-Za-z0-9+/=]{20,}")


def _renderings(secret: str) -> set[str]:
    """How a target may echo a secret: as sent (form- or percent-encoded, base64 in a Basic header) and as its
    own encoder writes it (JSON with or without escaped slashes, HTML). Written out here, independently of the
    redactor's own list, so that a rendering the redactor forgets shows up as a leak."""
    raw = secret.encode()
    forms = {secret, quote_plus(secret), quote(secret, safe=""), html.escape(secret)}
    forms |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return forms | {form.replace("/", "\\/") for form in forms}


def _windows(secret: str) -> set[str]:
    """Fragments of the secret in every rendering: a leak of any of them counts."""
    found: set[str] = set()
    for form in _renderings(secret):
        if len(form) <= WINDOW:
            found.add(form)
        else:
            found |= {form[i : i + WINDOW] for i in range(0, len(form) - WINDOW + 1, 4)}
    return found


def _planted(database: Path, keys: Path) -> dict[str, str]:
    """Fragment -> what it belongs to."""
    found: dict[str, str] = {}
    with sqlite3.connect(database) as db:
        for (token,) in db.execute("select token from recent_tokens"):
            found.update(dict.fromkeys(_windows(token), "an access token"))
        for client_id, secret in db.execute("select client_id, secret from clients where secret is not null"):
            found.update(dict.fromkeys(_windows(secret), f"the secret of {client_id}"))
            # HTTP Basic: base64 of id:secret, each form-urlencoded first (RFC 6749 §2.3.1) or not.
            for pair in (f"{quote_plus(client_id)}:{quote_plus(secret)}", f"{client_id}:{secret}"):
                basic = base64.b64encode(pair.encode()).decode()
                found.update(dict.fromkeys(_windows(basic), f"the Basic credential of {client_id}"))
    for pem in keys.glob("*.pem"):
        key = load_key(pem)
        for secret in key.secret_strings():
            for line in secret.splitlines():
                if "PRIVATE KEY" not in line and len(line) > WINDOW:
                    found.update(dict.fromkeys(_windows(line), f"private key {pem.name}"))
    return found


@pytest.mark.parametrize("profile", profiles.names())
def test_an_echoing_target_leaks_no_secret_into_any_report(profile: str, tmp_path: Path) -> None:
    database, keys = tmp_path / "mock.db", tmp_path / "keys"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.runner.cli",
            "run",
            "--profile",
            profile,
            "-q",
            "--reports",
            "out",
            "--",
            "--conformance-mock-setting",
            "echo_requests=true",
            "--conformance-mock-setting",
            f"db_path={database}",
            "--conformance-embedded-keys",
            str(keys),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout[-3000:]
    outputs = {"console": proc.stdout + proc.stderr}
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            outputs[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    assert any("allure-results" in name for name in outputs) and "out/junit.xml" in outputs
    echoed = sum(text.count('"echo"') + text.count("you sent:") for text in outputs.values())
    assert echoed >= 3, "the target did not echo: the scan would prove nothing"
    planted = _planted(database, keys)
    masked_jwts = sum(text.count("[signature-redacted]") for text in outputs.values())
    assert len(planted) >= 5 or masked_jwts >= 1, "too few planted secrets to scan for"
    leaks = []
    for name, text in outputs.items():
        leaks += [f"{what} in {name}" for fragment, what in planted.items() if fragment in text]
        leaks += [f"a signed JWT in {name}: {m.group(0)[:40]}…" for m in SIGNED_JWT.finditer(text)]
        leaks += [f"a private key in {name}" for _ in PRIVATE_PEM.finditer(text)]
    assert not leaks, f"{len(leaks)} leaks, e.g. {sorted(set(leaks))[:5]}"
