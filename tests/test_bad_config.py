"""Every bad configuration value stops `conformance run` with one line naming the option and its origin, exit 2.

A table of bad inputs (TOML files, flags, environment variables) runs in-process through `cli.main`. Each
must fail before pytest starts: a run on a half-valid configuration would judge the target on settings the
user never meant, or die with a traceback half-way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from conformance.core.config import DEFAULT_SECRET_ENV
from conformance.crypto.jose import generate_rsa, private_jwk, public_jwk
from conformance.crypto.pki import create_community, write_community
from conformance.runner import cli
from conformance.runner.configuration import ENVIRONMENT, load_config

TARGET = "http://127.0.0.1:9/fhir"
"""A loopback address nothing listens on: no row may get as far as talking to it."""


@dataclass(frozen=True)
class Fixtures:
    """Key and certificate files shared by the rows (made once: RSA generation is the slow part)."""

    keys: Path
    pki: Path
    weak_pki: Path


@dataclass(frozen=True)
class Bad:
    """One bad input: the arguments after `run`, the files and environment it needs, and what the error says.

    In `argv`, file text and environment values, @KEYS@, @PKI@ and @WEAKPKI@ stand for the fixture
    directories. `base` adds the flags of a valid smart-backend target (URL, client id, key) in front of
    `argv`, so the row fails on its own bad value and not on a missing one."""

    id: str
    argv: tuple[str, ...] = ()
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    expect: tuple[str, ...] = ()
    base: tuple[str, ...] = ("url", "client", "key")
    mode: dict[str, int] = field(default_factory=dict)
    """chmod applied to files or directories after they are written."""
    unless_root: bool = False


def toml(
    id: str,
    text: str,
    *expect: str,
    base: tuple[str, ...] = ("url", "client", "key"),
    named: bool = True,
    files: dict[str, str | bytes] | None = None,
) -> Bad:
    """A row whose config file t.toml holds `text`; the error must name t.toml (unless not `named`: a value that
    is missing everywhere has no origin) besides `expect`."""
    where = ("t.toml",) if named else ()
    return Bad(id, ("--config", "t.toml"), {"t.toml": text, **(files or {})}, expect=(*where, *expect), base=base)


def flags(id: str, *argv: str, expect: tuple[str, ...], base: tuple[str, ...] = ("url", "client", "key")) -> Bad:
    return Bad(id, argv, expect=expect, base=base)


def env(id: str, name: str, value: str, *expect: str, base: tuple[str, ...] = ("url", "client", "key")) -> Bad:
    """A row whose bad value comes from environment variable `name` (the base flags must not override it)."""
    return Bad(id, env={name: value}, expect=(name, *expect), base=base)


UDAP = (
    '[target]\nbase_url = "http://127.0.0.1:9/fhir"\nprofile = "udap"\n'
    '[udap]\ncert_chain = "@PKI@/client-cert.pem"\nprivate_key = "@PKI@/client-key.pem"\n'
    'trust_anchors = ["@PKI@/community-root.pem"]\n'
)
"""A valid [udap] configuration; rows replace or add one line of it."""


def udap(id: str, text: str, *expect: str) -> Bad:
    """A row for profile udap: the file holds the whole target, so no smart-backend flags."""
    return toml(id, text, *expect, base=())


def udap_with(line: str, replaces: str | None = None) -> str:
    """UDAP with `line` added to [udap], or in place of the line starting with `replaces`."""
    lines = [ln for ln in UDAP.splitlines() if replaces is None or not ln.startswith(replaces)]
    return "\n".join([*lines, line]) + "\n"


NO_URL = ("client", "key")
SECRET = '[target]\nbase_url = "http://127.0.0.1:9/fhir"\nprofile = "client-secret"\n[auth]\nclient_id = "c"\n'

ROWS: list[Bad] = [
    # --- the config file itself
    Bad("file-missing", ("--config", "missing.toml"), expect=("config file missing.toml", "not exist")),
    Bad("file-is-directory", ("--config", "adir"), {"adir/x": ""}, expect=("config file adir", "not a file")),
    toml("file-bad-toml", "[target\n", "not valid TOML"),
    Bad("file-not-utf8", ("--config", "t.toml"), {"t.toml": b"\xff\xfe[http]\n"}, expect=("t.toml", "cannot be read")),
    toml("file-top-level-key", "timeout = 5\n", "'timeout'", "[section]"),
    toml("file-array-of-tables", '[[target]]\nbase_url = "http://x"\n', "'target'", "[section]"),
    toml("file-unknown-section", "[htp]\ntimeout = 5\n", "htp.timeout", "did you mean http.timeout"),
    toml("file-unknown-key", "[http]\ntimeot = 5\n", "http.timeot", "did you mean http.timeout"),
    toml("file-wrong-section", "[target]\ntimeout = 5\n", "target.timeout", "did you mean http.timeout"),
    toml("file-wrong-section-2", '[auth]\nbase_url = "http://x"\n', "auth.base_url", "did you mean target.base_url"),
    toml("file-nested-table", "[target.extra]\nx = 1\n", "unknown option target.extra"),
    toml("file-client-secret", '[auth]\nclient_secret = "hunter2"\n', "auth.client_secret", "not accepted"),
    # --- numbers: types, non-finite, ranges
    toml("timeout-string", '[http]\ntimeout = "soon"\n', "http.timeout in t.toml", "must be a number"),
    toml("timeout-bool", "[http]\ntimeout = true\n", "http.timeout in t.toml", "must be a number, got True"),
    toml("timeout-inf", "[http]\ntimeout = inf\n", "http.timeout in t.toml", "between 0.1 and 600 seconds, got inf"),
    toml("timeout-nan", "[http]\ntimeout = nan\n", "http.timeout in t.toml", "between 0.1 and 600 seconds, got nan"),
    toml("timeout-minus-inf", "[http]\ntimeout = -inf\n", "http.timeout in t.toml", "got -inf"),
    toml("timeout-zero", "[http]\ntimeout = 0\n", "http.timeout in t.toml", "between 0.1 and 600 seconds, got 0"),
    toml("timeout-too-long", "[http]\ntimeout = 601\n", "http.timeout in t.toml", "got 601"),
    toml("timeout-array", "[http]\ntimeout = [5]\n", "http.timeout in t.toml", "must be a number"),
    toml("timeout-date", "[http]\ntimeout = 1979-05-27\n", "http.timeout in t.toml", "must be a number"),
    toml("timeout-huge-int", "[http]\ntimeout = 1" + "0" * 400 + "\n", "http.timeout in t.toml", "must be"),
    toml("max-body-zero", "[http]\nmax_body_bytes = 0\n", "http.max_body_bytes in t.toml", "bytes, got 0"),
    toml("max-body-negative", "[http]\nmax_body_bytes = -1\n", "http.max_body_bytes in t.toml", "got -1"),
    toml("max-body-float", "[http]\nmax_body_bytes = 1.5\n", "http.max_body_bytes in t.toml", "an integer"),
    toml("max-body-string", '[http]\nmax_body_bytes = "big"\n', "http.max_body_bytes in t.toml", "an integer"),
    toml("max-body-bool", "[http]\nmax_body_bytes = true\n", "http.max_body_bytes in t.toml", "an integer"),
    toml("max-body-too-big", "[http]\nmax_body_bytes = 2147483648\n", "http.max_body_bytes in t.toml", "between"),
    toml("max-body-huge-int", "[http]\nmax_body_bytes = 1" + "0" * 400 + "\n", "http.max_body_bytes", "between"),
    toml("retry-attempts-negative", "[http]\nretry_attempts = -1\n", "http.retry_attempts in t.toml", "got -1"),
    toml("retry-attempts-too-many", "[http]\nretry_attempts = 11\n", "http.retry_attempts in t.toml", "got 11"),
    toml("retry-attempts-float", "[http]\nretry_attempts = 2.5\n", "http.retry_attempts in t.toml", "an integer"),
    toml("retry-attempts-string", '[http]\nretry_attempts = "many"\n', "http.retry_attempts in t.toml", "integer"),
    toml("retry-budget-negative", "[http]\nretry_budget = -1\n", "http.retry_budget in t.toml", "got -1"),
    toml("retry-budget-inf", "[http]\nretry_budget = inf\n", "http.retry_budget in t.toml", "got inf"),
    toml("retry-budget-string", '[http]\nretry_budget = "x"\n', "http.retry_budget in t.toml", "must be a number"),
    toml("max-rps-zero", "[http]\nmax_rps = 0\n", "http.max_rps in t.toml", "requests per second, got 0"),
    toml("max-rps-negative", "[http]\nmax_rps = -3\n", "http.max_rps in t.toml", "got -3"),
    toml("max-rps-nan", "[http]\nmax_rps = nan\n", "http.max_rps in t.toml", "got nan"),
    toml("max-rps-too-high", "[http]\nmax_rps = 1e6\n", "http.max_rps in t.toml", "got 1e+06"),
    toml("expiry-wait-negative", "[checks]\nexpiry_wait = -1\n", "checks.expiry_wait in t.toml", "got -1"),
    toml("expiry-wait-too-long", "[checks]\nexpiry_wait = 3601\n", "checks.expiry_wait in t.toml", "got 3601"),
    toml("verify-tls-string", '[http]\nverify_tls = "maybe"\n', "http.verify_tls in t.toml", "true or false"),
    toml("verify-tls-int", "[http]\nverify_tls = 1\n", "http.verify_tls in t.toml", "true or false"),
    # --- [http] headers and proxy
    toml("headers-string", '[http]\nheaders = "X-A: b"\n', "http.headers in t.toml", "table of strings"),
    toml("headers-int-value", "[http.headers]\nX-A = 1\n", "http.headers in t.toml", "table of strings"),
    toml("headers-nested", '[http.headers.X]\na = "b"\n', "http.headers in t.toml", "table of strings"),
    toml("headers-space-in-name", '[http.headers]\n"Bad Name" = "x"\n', "http.headers in t.toml", "'Bad Name'"),
    toml("headers-colon-in-name", '[http.headers]\n"X-A:" = "b"\n', "http.headers in t.toml", "'X-A:'"),
    toml("headers-empty-name", '[http.headers]\n"" = "x"\n', "http.headers in t.toml", "header name"),
    toml("headers-newline-value", '[http.headers]\nX-A = "a\\nb"\n', "http.headers in t.toml", "X-A"),
    toml("headers-non-ascii-value", '[http.headers]\nX-A = "caf\u00e9"\n', "http.headers in t.toml", "X-A"),
    toml("secret-headers-int", "[http]\nsecret_headers = 5\n", "http.secret_headers in t.toml", "list of strings"),
    toml("secret-headers-bad-name", '[http]\nsecret_headers = ["a b"]\n', "http.secret_headers in t.toml", "'a b'"),
    toml("proxy-ftp", '[http]\nproxy = "ftp://p:21"\n', "http.proxy in t.toml", "socks5://"),
    toml("proxy-no-host", '[http]\nproxy = "http://"\n', "http.proxy in t.toml", "with a host"),
    toml("proxy-port-99999", '[http]\nproxy = "http://p:99999"\n', "http.proxy in t.toml", "not a valid URL"),
    toml("proxy-broken-ipv6", '[http]\nproxy = "http://[::1:3128"\n', "http.proxy in t.toml", "not a valid URL"),
    toml("proxy-int", "[http]\nproxy = 8080\n", "http.proxy in t.toml", "must be a string"),
    # --- URLs
    toml("url-no-scheme", '[target]\nbase_url = "fhir.example.org"\n', "target.base_url in t.toml", base=NO_URL),
    toml("url-ftp", '[target]\nbase_url = "ftp://x/fhir"\n', "target.base_url in t.toml", "http://", base=NO_URL),
    toml("url-broken-ipv6", '[target]\nbase_url = "http://[::1/fhir"\n', "target.base_url", "IPv6", base=NO_URL),
    toml("url-port-99999", '[target]\nbase_url = "http://h:99999/"\n', "target.base_url in t.toml", base=NO_URL),
    toml("url-port-0", '[target]\nbase_url = "http://h:0/"\n', "target.base_url in t.toml", "port 0", base=NO_URL),
    toml("url-port-word", '[target]\nbase_url = "http://h:abc/"\n', "target.base_url in t.toml", base=NO_URL),
    toml("url-space", '[target]\nbase_url = "http://h/f hir"\n', "target.base_url in t.toml", "spaces", base=NO_URL),
    toml("url-int", "[target]\nbase_url = 5\n", "target.base_url in t.toml", "must be a string", base=NO_URL),
    toml("url-bad-idna-host", '[target]\nbase_url = "http://xn--a.example/"\n', "target.base_url", base=NO_URL),
    toml("url-bad-ip-literal", '[target]\nbase_url = "http://[nope]/fhir"\n', "target.base_url", base=NO_URL),
    toml("token-url-relative", '[target]\ntoken_url = "/token"\n', "target.token_url in t.toml", "with a host"),
    toml("other-tenant-mailto", '[target]\nother_tenant_base_url = "mailto:a@b"\n', "target.other_tenant_base_url"),
    toml("jwks-url-no-host", '[auth]\njwks_url = "http://:80/jwks"\n', "auth.jwks_url in t.toml", "with a host"),
    # --- jwks_host
    toml(
        "jwks-host-port-99999",
        '[jwks_host]\nlisten = "127.0.0.1:99999"\npublic_url = "http://127.0.0.1:8/"\nclient_id = "j"\n',
        "jwks_host.listen in t.toml",
        "1-65535",
    ),
    toml("jwks-host-no-port", '[jwks_host]\nlisten = "localhost"\n', "jwks_host.listen in t.toml", "host:port"),
    toml("jwks-host-port-0", '[jwks_host]\nlisten = "localhost:0"\n', "jwks_host.listen in t.toml", "1-65535"),
    toml(
        "jwks-host-listen-alone", '[jwks_host]\nlisten = "localhost:8000"\n', "jwks_host.listen in t.toml", "public_url"
    ),
    toml("jwks-host-url-alone", '[jwks_host]\npublic_url = "http://h/"\n', "jwks_host.public_url in t.toml", "listen"),
    toml("jwks-host-bad-url", '[jwks_host]\npublic_url = "h:80"\n', "jwks_host.public_url in t.toml", "http://"),
    # --- profile and target.reads
    toml("profile-unknown", '[target]\nprofile = "oauth1"\n', "target.profile in t.toml", "must be one of"),
    toml("profile-int", "[target]\nprofile = 3\n", "target.profile in t.toml", "must be a string"),
    toml("reads-string", '[target]\nreads = "Patient/1"\n', "target.reads in t.toml", "must be a list"),
    toml("reads-int", "[target]\nreads = [1]\n", "target.reads in t.toml", "got 1"),
    toml("reads-absolute-url", '[target]\nreads = ["http://evil/Patient/1"]\n', "target.reads in t.toml", "relative"),
    toml("reads-network-path", '[target]\nreads = ["//evil/Patient/1"]\n', "target.reads in t.toml", "relative"),
    toml("reads-empty-path", '[target]\nreads = [""]\n', "target.reads in t.toml", "relative"),
    toml("reads-unknown-key", '[target]\nreads = [{path = "Patient/1", method = "POST"}]\n', "target.reads", "method"),
    toml("reads-no-path", "[target]\nreads = [{headers = {}}]\n", "target.reads in t.toml", "got None"),
    toml("reads-int-header", '[target]\nreads = [{path = "P/1", headers = {A = 1}}]\n', "target.reads", "headers"),
    toml("reads-bad-header", '[target]\nreads = [{path = "P/1", headers = {"A B" = "x"}}]\n', "target.reads", "'A B'"),
    toml("scopes-empty", "[auth]\nscopes = []\n", "auth.scopes in t.toml", "must not be an empty list"),
    toml("scopes-empty-string", '[auth]\nscopes = [""]\n', "auth.scopes in t.toml", "empty strings"),
    toml("unauthorized-scope-blank", '[auth]\nunauthorized_scope = " "\n', "auth.unauthorized_scope", "not be empty"),
    toml("fhir-version-empty", '[target]\nfhir_version = ""\n', "target.fhir_version in t.toml", "not be empty"),
    toml("profile-empty", '[target]\nprofile = ""\n', "target.profile in t.toml", "must not be empty"),
    toml("scopes-int", "[auth]\nscopes = 5\n", "auth.scopes in t.toml", "list of strings"),
    toml("scopes-list-of-int", "[auth]\nscopes = [1]\n", "auth.scopes in t.toml", "list of strings"),
    toml("client-id-int", "[auth]\nclient_id = 5\n", "auth.client_id in t.toml", "must be a string", base=("url",)),
    # --- client keys
    toml(
        "key-missing", '[auth]\nprivate_key = "nope.pem"\n', "private key file nope.pem", "auth.private_key in t.toml"
    ),
    toml("key-newline-in-name", '[auth]\nprivate_key = "no\\nsuch.pem"\n', "no\\nsuch.pem", "auth.private_key"),
    toml("key-rsa-1024", '[auth]\nprivate_key = "@KEYS@/weak.pem"\n', "1024 bits", "auth.private_key in t.toml"),
    toml("key-garbage", '[auth]\nprivate_key = "@KEYS@/garbage.pem"\n', "not a PEM private key", "auth.private_key"),
    toml("key-empty-file", '[auth]\nprivate_key = "@KEYS@/empty.pem"\n', "not a PEM private key", "auth.private_key"),
    toml("key-certificate", '[auth]\nprivate_key = "@PKI@/client-cert.pem"\n', "not a PEM private key", "auth."),
    toml("key-encrypted", '[auth]\nprivate_key = "@KEYS@/encrypted.pem"\n', "encrypted", "auth.private_key in t.toml"),
    toml("key-ed25519", '[auth]\nprivate_key = "@KEYS@/ed25519.pem"\n', "only RSA and EC", "auth.private_key"),
    toml("key-ec-p224", '[auth]\nprivate_key = "@KEYS@/p224.pem"\n', "secp224r1", "auth.private_key in t.toml"),
    toml("key-public-jwk", '[auth]\nprivate_key = "@KEYS@/public.jwk"\n', "public JWK", "auth.private_key"),
    toml("key-jwks", '[auth]\nprivate_key = "@KEYS@/jwks.json"\n', "JWKS", "auth.private_key in t.toml"),
    toml("key-jwk-alg-hs256", '[auth]\nprivate_key = "@KEYS@/hs256.jwk"\n', "HS256", "auth.private_key in t.toml"),
    toml("key-jwk-oct", '[auth]\nprivate_key = "@KEYS@/oct.jwk"\n', "JWK", "auth.private_key in t.toml"),
    toml("key-directory", '[auth]\nprivate_key = "@KEYS@"\n', "cannot read", "auth.private_key in t.toml"),
    toml("key-int", "[auth]\nprivate_key = 5\n", "auth.private_key in t.toml", "file path"),
    toml(
        "keys-list-of-int",
        "[auth]\nprivate_keys = [1]\n",
        "auth.private_keys in t.toml",
        "list of file paths",
        base=("url", "client"),
    ),
    toml(
        "keys-one-weak",
        '[auth]\nprivate_keys = ["@KEYS@/weak.pem"]\n',
        "1024 bits",
        "auth.private_keys in t.toml",
        base=("url", "client"),
    ),
    toml("other-key-missing", '[auth]\nother_client_key = "nope.pem"\n', "nope.pem", "auth.other_client_key in t.toml"),
    toml("other-key-weak", '[auth]\nother_client_key = "@KEYS@/weak.pem"\n', "1024 bits", "auth.other_client_key"),
    toml(
        "no-client-id",
        '[target]\nbase_url = "http://127.0.0.1:9/fhir"\n',
        "auth.client_id",
        "--client-id",
        "the default profile",
        base=(),
        named=False,
    ),
    toml("no-key", '[auth]\nclient_id = "c"\n', "private key", "the default profile", base=("url",), named=False),
    # --- files and secrets
    toml("ca-bundle-missing", '[http]\nca_bundle = "ca.pem"\n', "ca.pem", "http.ca_bundle in t.toml"),
    toml("ca-bundle-not-pem", '[http]\nca_bundle = "@KEYS@/garbage.pem"\n', "not a PEM CA bundle", "http.ca_bundle"),
    toml("secret-no-secret", SECRET, "client secret", DEFAULT_SECRET_ENV, "target.profile in t.toml", base=()),
    toml("secret-file-missing", SECRET + 'client_secret_file = "s.txt"\n', "s.txt", "auth.client_secret_file", base=()),
    toml(
        "secret-file-empty",
        SECRET + 'client_secret_file = "s.txt"\n',
        "empty",
        "auth.client_secret_file",
        base=(),
        files={"s.txt": "\n"},
    ),
    toml("secret-env-empty", SECRET + 'client_secret_env = ""\n', "auth.client_secret_env in t.toml", base=()),
    toml("secret-env-int", SECRET + "client_secret_env = 5\n", "auth.client_secret_env in t.toml", "string", base=()),
    # --- [udap] for profile udap with a target URL
    udap(
        "udap-no-certificate",
        udap_with("", "cert_chain").replace('private_key = "@PKI@/client-key.pem"', ""),
        "udap.cert_chain",
        "target.profile in t.toml",
    ),
    udap("udap-chain-without-key", udap_with("", "private_key"), "udap.private_key", "udap.cert_chain in t.toml"),
    udap(
        "udap-chain-missing",
        udap_with('cert_chain = "nope.pem"', "cert_chain"),
        "nope.pem",
        "udap.cert_chain in t.toml",
    ),
    udap(
        "udap-chain-garbage",
        udap_with('cert_chain = "@KEYS@/garbage.pem"', "cert_chain"),
        "no PEM certificate",
        "udap.cert_chain",
    ),
    udap(
        "udap-key-of-other-cert",
        udap_with('private_key = "@PKI@/server-key.pem"', "private_key"),
        "udap.cert_chain in t.toml",
    ),
    udap("udap-weak-community", UDAP.replace("@PKI@", "@WEAKPKI@"), "1024 bits", "udap.private_key in t.toml"),
    udap("udap-no-anchors", udap_with("", "trust_anchors"), "udap.trust_anchors", "target.profile in t.toml"),
    udap(
        "udap-anchor-missing",
        udap_with('trust_anchors = ["nope.pem"]', "trust_anchors"),
        "nope.pem",
        "udap.trust_anchors in t.toml",
    ),
    udap(
        "udap-anchor-garbage",
        udap_with('trust_anchors = ["@KEYS@/garbage.pem"]', "trust_anchors"),
        "udap.trust_anchors in t.toml",
    ),
    udap(
        "udap-anchors-int",
        udap_with("trust_anchors = 5", "trust_anchors"),
        "udap.trust_anchors in t.toml",
        "file paths",
    ),
    udap("udap-version", udap_with('version = "STU3"'), "udap.version in t.toml", "STU2"),
    udap("udap-registration", udap_with('registration = "maybe"'), "udap.registration in t.toml", "new or either"),
    udap(
        "udap-client-uri",
        udap_with('client_uri = "https://other.example/"'),
        "udap.client_uri in t.toml",
        "subjectAltName",
    ),
    udap(
        "udap-pkcs12-missing",
        udap_with('pkcs12 = "nope.p12"', "cert_chain").replace('private_key = "@PKI@/client-key.pem"', ""),
        "nope.p12",
        "udap.pkcs12 in t.toml",
    ),
    udap(
        "udap-pkcs12-garbage",
        udap_with('pkcs12 = "@KEYS@/garbage.pem"', "cert_chain").replace('private_key = "@PKI@/client-key.pem"', ""),
        "PKCS#12",
        "udap.pkcs12 in t.toml",
    ),
    udap(
        "udap-fixture-half",
        udap_with('other_cert_chain = "@PKI@/other-client-cert.pem"'),
        "udap.other_private_key",
        "udap.other_cert_chain in t.toml",
    ),
    udap(
        "udap-fixture-missing",
        udap_with('expired_cert_chain = "nope.pem"\nexpired_private_key = "nope-key.pem"'),
        "nope.pem",
        "udap.expired_cert_chain in t.toml",
    ),
    udap("udap-purpose-int", udap_with("purpose_of_use = 5"), "udap.purpose_of_use in t.toml", "list of strings"),
    udap("udap-scopes-empty", udap_with("scopes = []"), "udap.scopes in t.toml", "must not be an empty list"),
    udap("udap-unknown-key", udap_with('versoin = "STU2"'), "udap.versoin", "did you mean udap.version"),
    # --- command-line flags
    flags(
        "flag-timeout-inf",
        "--timeout",
        "inf",
        expect=("http.timeout from --timeout", "between 0.1 and 600 seconds, got inf"),
    ),
    flags("flag-timeout-nan", "--timeout", "nan", expect=("http.timeout from --timeout", "got nan")),
    flags("flag-timeout-negative", "--timeout", "-1", expect=("http.timeout from --timeout", "got -1")),
    flags("flag-timeout-word", "--timeout", "soon", expect=("--timeout", "invalid float value: 'soon'")),
    flags("flag-max-rps-zero", "--max-rps", "0", expect=("http.max_rps from --max-rps", "got 0")),
    flags("flag-max-rps-inf", "--max-rps", "inf", expect=("http.max_rps from --max-rps", "got inf")),
    flags("flag-wait-negative", "--wait-for-target", "-5", expect=("--wait-for-target", "got -5")),
    flags("flag-wait-nan", "--wait-for-target", "nan", expect=("--wait-for-target", "got nan")),
    flags("flag-wait-too-long", "--wait-for-target", "3601", expect=("--wait-for-target", "got 3601")),
    flags(
        "flag-url-broken-ipv6", "--target-url", "http://[::1/fhir", expect=("target.base_url from --target-url", "IPv6")
    ),
    flags(
        "flag-url-port-99999", "--target-url", "http://h:99999/", expect=("target.base_url from --target-url", "range")
    ),
    flags("flag-url-ftp", "--target-url", "ftp://x/", expect=("target.base_url from --target-url", "http://")),
    flags("flag-url-no-scheme", "--target-url", "fhir.example.org", expect=("target.base_url from --target-url",)),
    flags("flag-profile-unknown", "--profile", "nope", expect=("target.profile from --profile", "'nope'")),
    flags(
        "flag-key-missing",
        "--private-key",
        "missing.pem",
        expect=("missing.pem", "auth.private_keys from --private-key"),
    ),
    flags(
        "flag-key-weak",
        "--private-key",
        "@KEYS@/weak.pem",
        expect=("1024 bits", "auth.private_keys from --private-key"),
    ),
    flags("flag-key-garbage", "--private-key", "@KEYS@/garbage.pem", expect=("not a PEM", "from --private-key")),
    flags("flag-proxy-ftp", "--proxy", "ftp://p", expect=("http.proxy from --proxy", "socks5://")),
    flags("flag-proxy-port", "--proxy", "http://p:99999", expect=("http.proxy from --proxy", "range")),
    flags("flag-scope-empty", "--scope", "", expect=("auth.scopes from --scope", "empty strings")),
    flags("flag-client-id-empty", "--client-id", " ", expect=("auth.client_id", "--client-id"), base=("url", "key")),
    flags("flag-fault-unknown", "--fault", "nope", expect=("--fault", "nope"), base=()),
    flags("flag-variation-unknown", "--variation", "nope", expect=("--variation", "nope"), base=()),
    flags("flag-fault-with-target", "--fault", "nope", expect=("--fault", "embedded")),
    flags("flag-unknown-option", "--timeuot", "5", expect=("--timeuot",)),
    Bad(
        "reports-below-file",
        ("--reports", "afile/reports"),
        {"afile": ""},
        expect=("--reports afile/reports", "Not a directory"),
        base=(),
    ),
    Bad(
        "reports-is-file", ("--reports", "afile"), {"afile": ""}, expect=("--reports afile", "not a directory"), base=()
    ),
    Bad(
        "reports-read-only-parent",
        ("--reports", "ro/reports"),
        {"ro/x": ""},
        expect=("--reports ro/reports", "denied"),
        base=(),
        mode={"ro": 0o500},
        unless_root=True,
    ),
    Bad(
        "reports-read-only",
        ("--reports", "ro"),
        {"ro/x": ""},
        expect=("--reports ro", "not writable"),
        base=(),
        mode={"ro": 0o500},
        unless_root=True,
    ),
    # --- environment variables
    env("env-timeout-word", "CONFORMANCE_TIMEOUT", "abc", "http.timeout from environment variable", "got 'abc'"),
    env("env-timeout-inf", "CONFORMANCE_TIMEOUT", "inf", "http.timeout from environment variable", "got inf"),
    env("env-timeout-zero", "CONFORMANCE_TIMEOUT", "0", "http.timeout from environment variable", "got 0"),
    env("env-url-ftp", "CONFORMANCE_TARGET_URL", "ftp://x", "target.base_url from environment variable", base=NO_URL),
    env("env-url-port", "CONFORMANCE_TARGET_URL", "http://h:99999/fhir", "target.base_url", "range", base=NO_URL),
    env("env-max-rps-negative", "CONFORMANCE_MAX_RPS", "-3", "http.max_rps from environment variable", "got -3"),
    env("env-max-rps-nan", "CONFORMANCE_MAX_RPS", "nan", "http.max_rps from environment variable", "got nan"),
    env(
        "env-verify-tls",
        "CONFORMANCE_VERIFY_TLS",
        "maybe",
        "http.verify_tls from environment variable",
        "true or false",
    ),
    env("env-profile", "CONFORMANCE_PROFILE", "nope", "target.profile from environment variable", "must be one of"),
    env(
        "env-key-missing",
        "CONFORMANCE_PRIVATE_KEY",
        "missing.pem",
        "auth.private_key from environment variable",
        base=("url", "client"),
    ),
    env(
        "env-key-weak",
        "CONFORMANCE_PRIVATE_KEY",
        "@KEYS@/weak.pem",
        "1024 bits",
        "auth.private_key from environment variable",
    ),
    env(
        "env-ca-bundle",
        "CONFORMANCE_CA_BUNDLE",
        "missing.pem",
        "http.ca_bundle from environment variable",
        "missing.pem",
    ),
    env("env-scopes-blank", "CONFORMANCE_SCOPES", " ", "auth.scopes from environment variable", "empty list"),
    env("env-proxy", "CONFORMANCE_PROXY", "ftp://p", "http.proxy from environment variable", "socks5://"),
    env("env-jwks-url", "CONFORMANCE_JWKS_URL", "jwks.json", "auth.jwks_url from environment variable", "http://"),
    env("env-config-missing", "CONFORMANCE_CONFIG", "missing.toml", "config file missing.toml", "not exist"),
]


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    """Key files good and bad, and two test UDAP communities (one with 1024-bit keys)."""
    keys = tmp_path_factory.mktemp("keys")
    pem = serialization.Encoding.PEM
    pkcs8, none = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    (keys / "good.pem").write_bytes(generate_rsa().private_pem())
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (keys / "weak.pem").write_bytes(weak.private_bytes(pem, pkcs8, none))
    p224 = ec.generate_private_key(ec.SECP224R1())
    (keys / "p224.pem").write_bytes(p224.private_bytes(pem, pkcs8, none))
    edwards = ed25519.Ed25519PrivateKey.generate()
    (keys / "ed25519.pem").write_bytes(edwards.private_bytes(pem, pkcs8, none))
    strong = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    locked = serialization.BestAvailableEncryption(b"secret")
    (keys / "encrypted.pem").write_bytes(strong.private_bytes(pem, pkcs8, locked))
    (keys / "public.jwk").write_text(json.dumps(public_jwk(strong.public_key())), encoding="utf-8")
    (keys / "jwks.json").write_text(json.dumps({"keys": [public_jwk(strong.public_key())]}), encoding="utf-8")
    (keys / "hs256.jwk").write_text(json.dumps({**private_jwk(strong), "alg": "HS256"}), encoding="utf-8")
    (keys / "oct.jwk").write_text(json.dumps({"kty": "oct", "k": "c2VjcmV0", "d": "x"}), encoding="utf-8")
    p256 = {**private_jwk(ec.generate_private_key(ec.SECP256R1())), "alg": "ES256", "kid": "p256"}
    (keys / "p256.jwk").write_text(json.dumps(p256), encoding="utf-8")
    p521 = ec.generate_private_key(ec.SECP521R1())
    (keys / "p521.pem").write_bytes(p521.private_bytes(pem, pkcs8, none))
    (keys / "garbage.pem").write_text("hello\n", encoding="utf-8")
    (keys / "empty.pem").write_bytes(b"")
    pki, weak_pki = tmp_path_factory.mktemp("pki"), tmp_path_factory.mktemp("weak-pki")
    write_community(create_community("https://client.example/app", [TARGET]), pki / "c")
    write_community(create_community("https://client.example/app", [TARGET], key_size=1024), weak_pki / "c")
    return Fixtures(keys, pki / "c", weak_pki / "c")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CONFORMANCE_* variable of the developer's shell leaks in; the run happens in an empty directory."""
    for name in [*ENVIRONMENT, "CONFORMANCE_CONFIG", DEFAULT_SECRET_ENV]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def expand(text: str, fx: Fixtures) -> str:
    return text.replace("@KEYS@", str(fx.keys)).replace("@WEAKPKI@", str(fx.weak_pki)).replace("@PKI@", str(fx.pki))


def base_flags(parts: tuple[str, ...], fx: Fixtures) -> list[str]:
    """Flags of a valid smart-backend target, the parts a row does not set itself."""
    chosen = {
        "url": ["--target-url", TARGET],
        "client": ["--client-id", "c"],
        "key": ["--private-key", "@KEYS@/good.pem"],
    }
    return [expand(arg, fx) for part in parts for arg in chosen[part]]


def test_the_table_is_big_and_its_ids_unique() -> None:
    """The issue asks for at least 80 distinct bad inputs; duplicate ids would hide rows from `-k`."""
    ids = [row.id for row in ROWS]
    assert len(ids) >= 80
    assert len(set(ids)) == len(ids)


def test_the_base_configurations_are_valid(fixtures: Fixtures, clean_env: Path) -> None:
    """The rows start from these; if they failed, every row would pass for the wrong reason."""
    smart = load_config(
        None, {"target.base_url": TARGET, "auth.client_id": "c", "auth.private_keys": [str(fixtures.keys / "good.pem")]}
    )
    assert smart.profile == "smart-backend" and len(smart.keys) == 1
    (clean_env / "t.toml").write_text(expand(UDAP, fixtures), encoding="utf-8")
    udap_config = load_config(clean_env / "t.toml")
    assert udap_config.udap is not None and udap_config.udap.anchors


EDGES = """\
[target]
base_url = "http://[::1]:65535/fhir"
reads = ["Patient/1", {path = "Observation?patient=1", headers = {Accept = "application/json"}}]
[auth]
client_id = "c"
private_keys = ["@KEYS@/good.pem", "@KEYS@/p256.jwk", "@KEYS@/p521.pem"]
v2_scopes = []
[http]
timeout = 0.1
retry_attempts = 0
retry_budget = 0
max_body_bytes = 16384
max_rps = 10000
verify_tls = false
proxy = "none"
secret_headers = ["X-Api-Key"]
[http.headers]
X-Api-Key = "a b\tc"
[checks]
expiry_wait = 0
"""
"""Values on the edge of what is allowed: every bound itself, the highest port, no retries, TLS off."""


def test_values_on_the_edges_are_accepted(
    fixtures: Fixtures, clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Validation is no stricter than the limits its messages state, and such a run does reach pytest."""
    (clean_env / "t.toml").write_text(expand(EDGES, fixtures), encoding="utf-8")
    started: list[list[str]] = []

    def fake_pytest(args: list[str]) -> int:
        started.append(args)
        return 0

    monkeypatch.setattr(pytest, "main", fake_pytest)
    argv = ["run", "--config", "t.toml", "--timeout", "600", "--wait-for-target", "0", "--reports", "out"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert len(started) == 1
    config = load_config(Path("t.toml"))
    assert (config.timeout, config.retry_attempts, config.retry_budget, config.max_rps) == (0.1, 0, 0.0, 10000.0)
    assert config.verify_tls is False and config.max_body_bytes == 16384 and config.expiry_wait == 0.0
    assert [key.alg for key in config.keys] == ["RS384", "ES256", "ES512"]
    assert config.headers == {"X-Api-Key": "a b\tc"} and len(config.reads) == 2


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_one_line_and_exit_2(
    row: Bad, fixtures: Fixtures, clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The error names the option and where it came from, on one line, before any check runs."""
    if row.unless_root and os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    for name, content in row.files.items():
        path = clean_env / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(expand(content, fixtures), encoding="utf-8")
    for name, mode in row.mode.items():
        (clean_env / name).chmod(mode)
    for name, value in row.env.items():
        monkeypatch.setenv(name, expand(value, fixtures))

    def no_pytest(args: list[str]) -> int:
        raise AssertionError(f"validation gap: {row.id} got as far as starting pytest")

    monkeypatch.setattr(pytest, "main", no_pytest)
    try:
        code = cli.main(["run", *base_flags(row.base, fixtures), *(expand(a, fixtures) for a in row.argv)])
    finally:
        for name in row.mode:
            (clean_env / name).chmod(0o700)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in out + err
    assert out == ""
    assert len(lines) == 1, err
    assert lines[0].startswith("conformance: error: "), err
    for fragment in row.expect:
        assert expand(fragment, fixtures) in lines[0]
