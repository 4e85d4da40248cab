"""Target configuration: one validated model from a TOML file, environment and flags.

Precedence: command-line flags, then environment variables, then the TOML file,
then defaults. Every value remembers where it came from, so an error can say
"private key file ./key.pem does not exist (auth.private_key in target.toml)".
Client secrets are never read from the TOML file itself: only from an
environment variable or a file it names, so the config can be committed.
What a profile needs (a client id, keys, a secret, the [udap] section) comes
from the profile registry.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conformance.core.config import (
    DEFAULT_SECRET_ENV,
    UDAP_FIXTURES,
    UDAP_VERSIONS,
    ConfigError,
    JwksHostConfig,
    ProtectedRead,
    TargetConfig,
    UdapConfig,
)
from conformance.crypto.jose import ClientKey, KeyFileError, load_key
from conformance.crypto.pki import CertifiedKey, PkiError, load_anchors, load_certified_key, load_pkcs12
from conformance.profiles import registry as profiles

# option -> (type, default). Types: str, float, int, bool, list (of str), dict (str->str), path.
SCHEMA: dict[str, tuple[str, Any]] = {
    "target.base_url": ("str", None),
    "target.profile": ("str", profiles.DEFAULT.name),
    "target.patient_id": ("str", None),
    "target.fhir_version": ("str", "4.0.1"),
    "target.reads": ("reads", []),
    "auth.client_id": ("str", None),
    "auth.private_key": ("path", None),
    "auth.private_keys": ("pathlist", []),
    "auth.jwks_url": ("str", None),
    "auth.other_client_id": ("str", None),
    "auth.other_client_key": ("path", None),
    "auth.expiry_client_id": ("str", None),
    "auth.client_secret_env": ("str", DEFAULT_SECRET_ENV),
    "auth.client_secret_file": ("path", None),
    "auth.special_client_id": ("str", None),
    "auth.special_client_secret_env": ("str", None),
    "target.other_tenant_base_url": ("str", None),
    "target.token_url": ("str", None),
    "auth.scopes": ("list", ["system/Patient.read"]),
    "auth.unauthorized_scope": ("str", "system/Practitioner.read"),
    "auth.v2_scopes": ("list", []),
    "http.timeout": ("float", 10.0),
    "http.verify_tls": ("bool", True),
    "http.ca_bundle": ("path", None),
    "http.headers": ("dict", {}),
    "http.secret_headers": ("list", []),
    "http.max_body_bytes": ("int", 2 * 1024 * 1024),
    "http.proxy": ("str", None),
    "http.retry_attempts": ("int", 2),
    "http.retry_budget": ("float", 60.0),
    "http.max_rps": ("float", None),
    "http.concurrency": ("int", 8),
    "checks.expiry_wait": ("float", 0.0),
    "udap.cert_chain": ("path", None),
    "udap.private_key": ("path", None),
    "udap.pkcs12": ("path", None),
    "udap.pkcs12_password_env": ("str", None),
    "udap.trust_anchors": ("pathlist", []),
    "udap.client_uri": ("str", None),
    "udap.version": ("str", "STU2"),
    "udap.community": ("str", None),
    "udap.organization_id": ("str", None),
    "udap.organization_name": ("str", None),
    "udap.purpose_of_use": ("list", ["urn:oid:2.16.840.1.113883.5.8#TREAT"]),
    "udap.scopes": ("list", ["system/Patient.read", "system/Observation.read"]),
    "udap.registration_content_type": ("str", "application/json"),
    "udap.registration": ("str", "either"),
    "udap.other_cert_chain": ("path", None),
    "udap.other_private_key": ("path", None),
    "udap.lifecycle_cert_chain": ("path", None),
    "udap.lifecycle_private_key": ("path", None),
    "udap.expired_cert_chain": ("path", None),
    "udap.expired_private_key": ("path", None),
    "udap.untrusted_cert_chain": ("path", None),
    "udap.untrusted_private_key": ("path", None),
    "jwks_host.listen": ("str", None),
    "jwks_host.public_url": ("str", None),
    "jwks_host.client_id": ("str", None),
}

LIMITS: dict[str, tuple[float, float, str]] = {
    "http.timeout": (0.1, 600, "seconds"),
    "checks.expiry_wait": (0, 3600, "seconds"),
    "http.max_body_bytes": (16 * 1024, 1024**3, "bytes"),
    "http.retry_attempts": (0, 10, "retries"),
    "http.retry_budget": (0, 3600, "seconds"),
    "http.max_rps": (0.01, 10_000, "requests per second"),
    "http.concurrency": (1, 64, "requests in flight"),
}
"""Inclusive bounds of numeric options: a value outside them is a mistake, never silently clamped."""

URL_OPTIONS = {
    "target.base_url": ("http", "https"),
    "target.token_url": ("http", "https"),
    "target.other_tenant_base_url": ("http", "https"),
    "auth.jwks_url": ("http", "https"),
    "jwks_host.public_url": ("http", "https"),
    "http.proxy": ("http", "https", "socks5", "socks5h"),
}
"""Options holding URLs, with the schemes each accepts."""


def flag_names(prefix: str = "--") -> dict[str, str]:
    """The command-line flag behind each option, so an error names what the user typed (`conformance run` says
    --profile and --timeout; the pytest plugin, whose options are namespaced, --conformance-profile and
    --conformance-request-timeout)."""
    names = {
        "target.base_url": "target-url",
        "target.profile": "profile",
        "auth.client_id": "client-id",
        "auth.private_keys": "private-key",
        "target.patient_id": "patient-id",
        "target.token_url": "token-url",
        "auth.scopes": "scope",
        "http.timeout": "timeout" if prefix == "--" else "request-timeout",
        "http.verify_tls": "no-verify-tls",
        "http.proxy": "proxy",
        "http.max_rps": "max-rps",
        "http.concurrency": "concurrency",
    }
    return {option: prefix + name for option, name in names.items()}


MIN_RSA_BITS = 2048
"""RFC 7518 §3.3: RSA keys for RS256/RS384/RS512 MUST be 2048 bits or larger."""

JWS_ALGS = {"RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "EC": ("ES256", "ES384", "ES512")}
"""The JWS algorithms (RFC 7518 §3.1) a client key of each type can sign client assertions with."""

EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
"""RFC 7518 §3.4: each ES algorithm signs with exactly one curve."""

HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110 §5.1: a field name is a token."""

ENVIRONMENT = {
    "CONFORMANCE_TARGET_URL": "target.base_url",
    "CONFORMANCE_PROFILE": "target.profile",
    "CONFORMANCE_PATIENT_ID": "target.patient_id",
    "CONFORMANCE_CLIENT_ID": "auth.client_id",
    "CONFORMANCE_PRIVATE_KEY": "auth.private_key",
    "CONFORMANCE_JWKS_URL": "auth.jwks_url",
    "CONFORMANCE_SCOPES": "auth.scopes",
    "CONFORMANCE_TIMEOUT": "http.timeout",
    "CONFORMANCE_VERIFY_TLS": "http.verify_tls",
    "CONFORMANCE_CA_BUNDLE": "http.ca_bundle",
    "CONFORMANCE_PROXY": "http.proxy",
    "CONFORMANCE_MAX_RPS": "http.max_rps",
    "CONFORMANCE_CONCURRENCY": "http.concurrency",
}


class _Values:
    """Raw option values with the place each came from."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        self.base_dir: dict[str, Path] = {}

    def set(self, key: str, value: Any, origin: str, base_dir: Path) -> None:
        self.values[key] = value
        self.origin[key] = origin
        self.base_dir[key] = base_dir

    def where(self, key: str) -> str:
        return f"{key} {self.origin.get(key, 'default')}"


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> TargetConfig:
    """Build and validate the target configuration (raises ConfigError naming the option and where it came from).

    `flags` names the command-line flag behind each override (e.g. http.timeout: --timeout) for the messages."""
    environ = os.environ if environ is None else environ
    raw = _Values()
    cwd = Path.cwd()
    given_by = ""  # a --config path is what the user typed; a path from the environment needs its variable named
    if path is None and environ.get("CONFORMANCE_CONFIG"):
        path = Path(environ["CONFORMANCE_CONFIG"])
        given_by = "environment variable CONFORMANCE_CONFIG"
    source = "defaults"
    if path is not None:
        source = str(path)
        _read_toml(path, raw, environ, given_by)
    for var, key in ENVIRONMENT.items():
        if environ.get(var):
            value: Any = environ[var]
            if SCHEMA[key][0] == "list":
                value = value.split()
            raw.set(key, value, f"from environment variable {var}", cwd)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in SCHEMA:
            raise ConfigError(f"unknown option {key}")
        flag = (flags or {}).get(key)
        raw.set(key, value, f"from {flag}" if flag else "on the command line", cwd)
    return _build(raw, source, environ)


def _read_toml(path: Path, raw: _Values, environ: Mapping[str, str], given_by: str = "") -> None:
    """Read the file into `raw`; `given_by` (the environment variable that named it) is named when it is unusable."""
    by = f" ({given_by})" if given_by else ""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist{by}")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file{by}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML{by}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read{by}: {exc}") from None
    origin = f"in {path}"
    substituted_headers: list[str] = []
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"top-level key {section!r} in {path} must be a [section]; see `conformance init` for the layout"
            )
        for name, value in table.items():
            key = f"{section}.{name}"
            if key == "auth.client_secret":
                raise ConfigError(
                    f"auth.client_secret is not accepted in {path}: keep secrets out of config files; "
                    f"set auth.client_secret_env (default {DEFAULT_SECRET_ENV}) or auth.client_secret_file"
                )
            if key not in SCHEMA:
                # The right name in the wrong section is the likelier slip than a typo.
                hint = [k for k in SCHEMA if k.split(".", 1)[1] == name] or difflib.get_close_matches(key, SCHEMA, n=1)
                suggestion = f"; did you mean {' or '.join(hint)}?" if hint else ""
                raise ConfigError(f"unknown option {key} in {path}{suggestion}")
            substituted_headers += _headers_from_environment(key, value)
            raw.set(key, _substitute(value, key, path, environ), origin, path.parent)
    if substituted_headers:
        # A header whose value comes from the environment is a credential more often than not (a gateway key):
        # masked like the ones listed in http.secret_headers.
        listed = raw.values.get("http.secret_headers", [])
        if isinstance(listed, list):
            raw.set("http.secret_headers", [*listed, *substituted_headers], origin, path.parent)


_VARIABLE = re.compile(r"\$\$|\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _headers_from_environment(key: str, value: Any) -> list[str]:
    """Names of the headers (http.headers, target.reads) whose values use ${NAME}."""
    tables: list[Any] = []
    if key == "http.headers":
        tables = [value]
    elif key == "target.reads" and isinstance(value, list):
        tables = [read.get("headers") for read in value if isinstance(read, dict)]
    return [
        str(name)
        for table in tables
        if isinstance(table, dict)
        for name, text in table.items()
        if isinstance(text, str) and "${" in text
    ]


def _substitute(value: Any, key: str, path: Path, environ: Mapping[str, str]) -> Any:
    """`${NAME}` in a string value is the environment variable NAME (`$$` is a literal `$`), so one file serves
    every CI stage; tables (headers) included. A header value taken from the environment is masked in every
    report (its name joins http.secret_headers); the client secret has no option in the file at all."""
    if isinstance(value, list):
        return [_substitute(item, key, path, environ) for item in value]
    if isinstance(value, dict):
        return {name: _substitute(item, key, path, environ) for name, item in value.items()}
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if not _VARIABLE_NAME.fullmatch(name):
            raise ConfigError(f"{key} in {path}: ${{{name}}} is not an environment variable name")
        if name not in environ:
            raise ConfigError(f"{key} in {path} uses ${{{name}}}, but environment variable {name} is not set")
        return environ[name]

    return _VARIABLE.sub(replace, value)


def _coerce(key: str, value: Any, raw: _Values) -> Any:
    kind = SCHEMA[key][0]
    where = raw.where(key)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {type(value).__name__}")
        return value.strip() or None
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            number = value if isinstance(value, int) else float(value)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
        _within(key, number, where)  # first, so inf and nan get the option's range in the message
        try:
            number = float(number)
        except OverflowError:  # an integer beyond float range, for an option without LIMITS
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{where} must be a finite number, got {number:g}")
        return number
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        try:
            return int(_within(key, int(value), where))
        except ValueError:
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind == "list":
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        if not all(v.strip() for v in value):
            raise ConfigError(f"{where} must not hold empty strings, got {value!r}")
        return value
    if kind == "reads":
        return _reads(value, where)
    if kind == "dict":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{where} must be a table of strings")
        return _headers(value, where)
    if kind == "path":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a file path string")
        return _resolve(value, raw.base_dir.get(key, Path.cwd())) if value.strip() else None
    if kind == "pathlist":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of file paths")
        return [_resolve(v, raw.base_dir.get(key, Path.cwd())) for v in value]
    raise AssertionError(kind)


def _check_environment_proxies(environ: Mapping[str, str]) -> None:
    """Proxy variables are configuration too: the ones the run will use (lower-case names first, NO_PROXY=*
    meaning none) must be proxy URLs, or every request would fail; an error names the variable."""
    from conformance.core.proxies import ENVIRONMENT_NAMES, proxy_mounts, proxy_settings, with_scheme

    proxies, _ = proxy_settings(None, environ)
    for url in proxies.values():
        name = next((n for n in ENVIRONMENT_NAMES if environ.get(n) and with_scheme(environ[n]) == url), "a proxy")
        where = f"environment variable {name}"
        try:
            parts = urlsplit(url)
            port, host = parts.port, parts.hostname
        except ValueError as exc:
            raise ConfigError(f"{where} is not a valid proxy URL ({exc}): {url!r}") from None
        if parts.scheme not in URL_OPTIONS["http.proxy"] or not host or port == 0 or any(c.isspace() for c in url):
            raise ConfigError(
                f"{where} must be an http://, https:// or socks5:// proxy URL with a host, got {url!r} "
                '(set http.proxy = "none" or --proxy none to ignore it)'
            )
        _check_proxy_support(url, where)
    if not proxies:
        return  # nothing is proxied: NO_PROXY alone changes nothing (and building a client costs start-up time)
    try:
        import httpx

        httpx.Client(mounts=proxy_mounts(None, lambda u: httpx.HTTPTransport(proxy=u), environ)).close()
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"the proxy environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) cannot be used: {exc}") from None


def _check_proxy_support(url: str, where: str) -> None:
    import importlib.util

    if url.lower().startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise ConfigError(f"{where} is a SOCKS proxy ({url.split('://')[0]}://), which needs the socksio package")


def _within(key: str, number: float, where: str) -> float:
    low, high, unit = LIMITS.get(key, (0, math.inf, ""))
    if not low <= number <= high:
        bounds = f"between {low:g} and {high:g} {unit}".rstrip() if high != math.inf else f"at least {low:g}"
        try:
            shown = f"{number:g}"
        except OverflowError:  # an integer beyond float range, e.g. a TOML literal of 400 digits
            shown = f"{'-' if number < 0 else ''}an integer of more than 300 digits"
        raise ConfigError(f"{where} must be {bounds}, got {shown}")
    return number


def _headers(headers: dict[str, str], where: str) -> dict[str, str]:
    """Header names are tokens and values printable ASCII on one line: anything else fails in the HTTP client at
    the first request, half-way through a run. Values are not shown, as they often hold API keys."""
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
            )
        if not all(ch == "\t" or " " <= ch <= "~" for ch in value):
            raise ConfigError(f"{where}: the value of header {name} must be printable ASCII on one line")
    return dict(headers)


def _check_url(key: str, value: str, raw: _Values) -> None:
    """An absolute URL with a scheme the option accepts, a parseable host and a valid port."""
    schemes = URL_OPTIONS[key]
    try:
        parts = urlsplit(value)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise ConfigError(f"{raw.where(key)} is not a valid URL ({exc}): {value!r}") from None
    if parts.scheme not in schemes or not host:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigError(f"{raw.where(key)} must be an absolute {wanted} URL with a host, got {value!r}")
    if port == 0:
        raise ConfigError(f"{raw.where(key)} has port 0, which no server listens on: {value!r}")
    if any(ch.isspace() for ch in value):
        raise ConfigError(f"{raw.where(key)} must not contain spaces: {value!r}")
    try:
        httpx.URL(value).host  # noqa: B018 - decoding the host (IDNA) fails here rather than at the first request
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"{raw.where(key)} is not a valid URL ({exc}): {value!r}") from None


def _reads(value: Any, where: str) -> list[ProtectedRead]:
    """target.reads: paths, or tables {path = "...", headers = {...}}."""
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of paths or {{path, headers}} tables")
    reads = []
    for entry in value:
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or set(entry) - {"path", "headers"}:
            raise ConfigError(f"{where}: each read is a path or a table with path and headers, got {entry!r}")
        path, headers = entry.get("path"), entry.get("headers", {})
        if not isinstance(path, str) or not path.strip() or urlsplit(path).scheme or urlsplit(path).netloc:
            raise ConfigError(f"{where}: a read's path is relative to the FHIR base, e.g. Patient/123; got {path!r}")
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ConfigError(f"{where}: a read's headers must be a table of strings")
        _headers(headers, where)
        defaults = {} if any(k.lower() == "accept" for k in headers) else {"Accept": "application/fhir+json"}
        merged: dict[str, str] = {**defaults, **headers}
        reads.append(ProtectedRead(path.strip().lstrip("/"), tuple(merged.items())))
    return reads


def _resolve(value: str, base: Path) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _shown(raw: _Values, option: str, path: Path) -> str:
    """The path as the user wrote it, plus where it resolved to when that differs."""
    written = raw.values.get(option)
    candidates = written if isinstance(written, list) else [written]
    for text in candidates:
        if isinstance(text, str) and _resolve(text, raw.base_dir.get(option, Path.cwd())) == path:
            return text if Path(text) == path else f"{text} (resolved to {path})"
    return str(path)


def _build(raw: _Values, source: str, environ: Mapping[str, str]) -> TargetConfig:
    v: dict[str, Any] = {}
    for key, (kind, default) in SCHEMA.items():
        v[key] = _coerce(key, raw.values[key], raw) if key in raw.values else default
        if key in raw.values and kind in ("str", "list") and default and not v[key]:
            # A blank string or list where the option has a default would reach the checks as None or [] (an
            # empty client_secret_env even crashed the environment lookup): say so instead of guessing.
            empty = "an empty list" if kind == "list" else "empty"
            raise ConfigError(f"{raw.where(key)} must not be {empty}; leave it out for the default, {default!r}")

    for key in URL_OPTIONS:
        if v[key] is not None and not (key == "http.proxy" and v[key].lower() in ("none", "off", "direct")):
            _check_url(key, v[key], raw)
    if v["http.proxy"] is None:
        _check_environment_proxies(environ)
    elif v["http.proxy"].lower() not in ("none", "off", "direct"):
        _check_proxy_support(v["http.proxy"], raw.where("http.proxy"))
    base_url = v["target.base_url"]
    if base_url is not None:
        base_url = base_url.rstrip("/")
    if not profiles.is_known(v["target.profile"]):
        raise ConfigError(
            f"{raw.where('target.profile')} must be one of {', '.join(profiles.names())}; got {v['target.profile']!r}"
        )
    chosen = profiles.get(v["target.profile"])
    profile, needs = chosen.name, chosen.needs

    key_paths: list[tuple[str, Path]] = []
    if v["auth.private_key"] is not None:
        key_paths.append(("auth.private_key", v["auth.private_key"]))
    key_paths += [("auth.private_keys", p) for p in v["auth.private_keys"]]
    keys = [_client_key(raw, option, key_path) for option, key_path in key_paths]
    other_key = None
    if v["auth.other_client_key"] is not None:
        other_key = _client_key(raw, "auth.other_client_key", v["auth.other_client_key"])

    for name in v["http.secret_headers"]:
        if not HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{raw.where('http.secret_headers')}: {name!r} is not an HTTP header name")

    for option in ("http.ca_bundle", "auth.client_secret_file"):
        file_path = v[option]
        if file_path is not None and not file_path.exists():
            raise ConfigError(f"file {_shown(raw, option, file_path)} does not exist ({raw.where(option)})")

    if v["http.ca_bundle"] is not None:
        import ssl

        try:
            ssl.create_default_context(cafile=str(v["http.ca_bundle"]))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(
                f"file {_shown(raw, 'http.ca_bundle', v['http.ca_bundle'])} is not a PEM CA bundle ({exc}) ({raw.where('http.ca_bundle')})"
            ) from None

    secret: str | None = None
    if v["auth.client_secret_file"] is not None:
        secret_path = v["auth.client_secret_file"]
        try:
            secret = secret_path.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"client secret file {_shown(raw, 'auth.client_secret_file', secret_path)} cannot be read: "
                f"{getattr(exc, 'strerror', None) or exc} ({raw.where('auth.client_secret_file')})"
            ) from None
        if secret is None:
            raise ConfigError(f"client secret file is empty ({raw.where('auth.client_secret_file')})")
    elif environ.get(v["auth.client_secret_env"]):
        secret = environ[v["auth.client_secret_env"]]

    if base_url is not None:
        chosen_by = _profile_origin(raw)
        if v["auth.client_id"] is None and needs.client_id:
            raise ConfigError(
                f"auth.client_id is required for profile {profile} ({chosen_by}): "
                f"set it in the config file, --client-id or CONFORMANCE_CLIENT_ID"
            )
        if needs.private_key and not keys:
            raise ConfigError(
                f"profile {profile} ({chosen_by}) needs at least one private key: "
                "auth.private_key / auth.private_keys, --private-key or CONFORMANCE_PRIVATE_KEY"
            )
        if needs.client_secret and secret is None:
            raise ConfigError(
                f"profile {profile} ({chosen_by}) needs a client secret: set the environment variable "
                f"{v['auth.client_secret_env']} (auth.client_secret_env) or auth.client_secret_file"
            )

    jwks_host = None
    jwks_parts = ("jwks_host.listen", "jwks_host.public_url", "jwks_host.client_id")
    given = [part for part in jwks_parts if v[part] is not None]
    if given:
        listen = v["jwks_host.listen"] or ""
        host, _, port = listen.rpartition(":")
        if listen and (not host or not port.isdigit() or not 1 <= int(port) <= 65535):
            raise ConfigError(f"{raw.where('jwks_host.listen')} must be host:port with a port 1-65535, got {listen!r}")
        missing = [part for part in jwks_parts if v[part] is None]
        if missing:  # half a jwks_host section would be ignored without a word
            raise ConfigError(
                f"jwks_host needs listen, public_url and client_id together: {' and '.join(missing)} missing "
                f"({raw.where(given[0])})"
            )
        jwks_host = JwksHostConfig(host, int(port), v["jwks_host.public_url"], v["jwks_host.client_id"])

    return TargetConfig(
        base_url=base_url,
        profile=profile,
        patient_id=v["target.patient_id"],
        client_id=v["auth.client_id"],
        keys=keys,
        jwks_url=v["auth.jwks_url"],
        other_client_id=v["auth.other_client_id"],
        other_client_key=other_key,
        expiry_client_id=v["auth.expiry_client_id"],
        client_secret=secret,
        special_client_id=v["auth.special_client_id"],
        special_client_secret=environ.get(v["auth.special_client_secret_env"] or "") or None,
        other_tenant_base_url=v["target.other_tenant_base_url"],
        token_url=v["target.token_url"],
        udap=_udap_config(raw, v, chosen, base_url, environ),
        scopes=v["auth.scopes"],
        unauthorized_scope=v["auth.unauthorized_scope"],
        v2_scopes=v["auth.v2_scopes"],
        reads=v["target.reads"]
        or ([ProtectedRead(f"Patient/{v['target.patient_id']}")] if v["target.patient_id"] else []),
        timeout=v["http.timeout"],
        verify_tls=v["http.verify_tls"],
        ca_bundle=v["http.ca_bundle"],
        headers=v["http.headers"],
        secret_headers=v["http.secret_headers"],
        max_body_bytes=v["http.max_body_bytes"],
        proxy=v["http.proxy"],
        retry_attempts=v["http.retry_attempts"],
        retry_budget=v["http.retry_budget"],
        max_rps=v["http.max_rps"],
        concurrency=v["http.concurrency"],
        expiry_wait=v["checks.expiry_wait"],
        jwks_host=jwks_host,
        source=source,
    )


def _profile_origin(raw: _Values) -> str:
    """Where the profile was chosen, for messages about what it needs."""
    return raw.where("target.profile") if "target.profile" in raw.values else "the default profile"


def _client_key(raw: _Values, option: str, path: Path) -> ClientKey:
    """A client key file loaded and checked, or a ConfigError naming the file and the option."""
    if not path.exists():
        raise ConfigError(f"private key file {_shown(raw, option, path)} does not exist ({raw.where(option)})")
    try:
        key = load_key(path)
    except KeyFileError as exc:
        raise ConfigError(f"{exc} ({raw.where(option)})") from None
    except jwt.InvalidKeyError:  # a PEM EC key on a curve JOSE has no name for
        raise ConfigError(
            f"private key {_shown(raw, option, path)} is an EC key on curve {_curve_of(path)}, which JWS cannot sign "
            f"with; use P-256, P-384 or P-521 (RFC 7518 §3.4) ({raw.where(option)})"
        ) from None
    return _signs_jws(_strong_enough(key, path, raw, option), path, raw, option)


def _curve_of(path: Path) -> str:
    """The curve of a PEM EC key, for the message (load_key's error only shows an object repr)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, TypeError, ValueError):
        return "unknown"
    return key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else "unknown"


def _strong_enough(key: ClientKey, path: Path, raw: _Values, option: str) -> ClientKey:
    """RSA keys below 2048 bits are refused: RFC 7518 §3.3 makes 2048 a MUST, and a server that accepts a weaker
    key would pass checks it ought to fail."""
    bits = key.rsa_bits
    if bits is not None and bits < MIN_RSA_BITS:
        raise ConfigError(
            f"private key {_shown(raw, option, path)} is RSA {bits} bits; RS256/RS384 need at least {MIN_RSA_BITS} "
            f"bits (RFC 7518 §3.3): make one with `conformance keys generate` ({raw.where(option)})"
        )
    return key


def _signs_jws(key: ClientKey, path: Path, raw: _Values, option: str) -> ClientKey:
    """The key's alg (a JWK's own, or the default) is one its type signs with, and an EC key's curve is the
    alg's: otherwise every token request fails on the client side and the target is judged on nothing."""
    shown = _shown(raw, option, path)
    if key.alg not in JWS_ALGS[key.kty]:
        raise ConfigError(
            f"private key {shown} has alg {key.alg!r}, which an {key.kty} key cannot sign client assertions with; "
            f"use one of {', '.join(JWS_ALGS[key.kty])} ({raw.where(option)})"
        )
    if isinstance(key.private_key, ec.EllipticCurvePrivateKey) and key.private_key.curve.name != EC_CURVES[key.alg]:
        raise ConfigError(
            f"private key {shown} is on curve {key.private_key.curve.name}, but {key.alg} signs with "
            f"{EC_CURVES[key.alg]} (RFC 7518 §3.4) ({raw.where(option)})"
        )
    return key


def _certified(raw: _Values, v: dict[str, Any], cert_option: str, key_option: str) -> CertifiedKey | None:
    cert_path, key_path = v[cert_option], v[key_option]
    if cert_path is None and key_path is None:
        return None
    if cert_path is None or key_path is None:
        missing, present = (cert_option, key_option) if cert_path is None else (key_option, cert_option)
        raise ConfigError(f"{missing} is needed together with {present} ({raw.where(present)})")
    for option, path in ((cert_option, cert_path), (key_option, key_path)):
        if not path.exists():
            raise ConfigError(f"file {_shown(raw, option, path)} does not exist ({raw.where(option)})")
    try:
        certified = load_certified_key(cert_path, key_path)
    except PkiError as exc:
        raise ConfigError(f"{exc} ({raw.where(cert_option)})") from None
    return _certified_strong_enough(certified, raw, key_option, key_path)


def _certified_strong_enough(certified: CertifiedKey, raw: _Values, option: str, path: Path) -> CertifiedKey:
    """UDAP signs with RS256 too: the same 2048-bit minimum as client keys (RFC 7518 §3.3)."""
    key = certified.private_key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise ConfigError(
            f"private key {_shown(raw, option, path)} is RSA {key.key_size} bits; RS256 needs at least "
            f"{MIN_RSA_BITS} bits (RFC 7518 §3.3): ask the community for a new certificate ({raw.where(option)})"
        )
    return certified


def _udap_config(
    raw: _Values, v: dict[str, Any], chosen: profiles.Profile, base_url: str | None, environ: Mapping[str, str]
) -> UdapConfig | None:
    """The [udap] section, validated only for a configured target of a profile that needs it."""
    if not chosen.needs.udap or base_url is None:
        return None
    profile = chosen.name
    if v["udap.registration"] not in ("new", "either"):
        raise ConfigError(f"{raw.where('udap.registration')} must be new or either")
    if v["udap.version"] not in UDAP_VERSIONS:
        raise ConfigError(f"{raw.where('udap.version')} must be one of {', '.join(UDAP_VERSIONS)}")
    client = _certified(raw, v, "udap.cert_chain", "udap.private_key")
    if client is None and v["udap.pkcs12"] is not None:
        path = v["udap.pkcs12"]
        if not path.exists():
            raise ConfigError(f"file {_shown(raw, 'udap.pkcs12', path)} does not exist ({raw.where('udap.pkcs12')})")
        password_env = v["udap.pkcs12_password_env"]
        password = environ.get(password_env, "").encode() if password_env else None
        try:
            client = load_pkcs12(path, password or None)
        except PkiError as exc:
            raise ConfigError(f"{exc} ({raw.where('udap.pkcs12')})") from None
        client = _certified_strong_enough(client, raw, "udap.pkcs12", path)
    if client is None:
        raise ConfigError(
            f"profile {profile} ({_profile_origin(raw)}) needs the client certificate issued by the trust community: "
            "udap.cert_chain + udap.private_key, or udap.pkcs12 (`conformance pki init` makes a test one)"
        )
    anchors: list[x509.Certificate] = []
    if v["udap.trust_anchors"]:
        for option_path in v["udap.trust_anchors"]:
            if not option_path.exists():
                raise ConfigError(
                    f"file {_shown(raw, 'udap.trust_anchors', option_path)} does not exist ({raw.where('udap.trust_anchors')})"
                )
        try:
            anchors = load_anchors(v["udap.trust_anchors"])
        except PkiError as exc:
            raise ConfigError(f"{exc} ({raw.where('udap.trust_anchors')})") from None
    elif chosen.needs.udap_trust_anchors:
        raise ConfigError(
            f"profile {profile} ({_profile_origin(raw)}) needs udap.trust_anchors to validate the server's "
            "signed_metadata"
        )
    client_uri = v["udap.client_uri"] or next(iter(client.san_uris()), None)
    certificate_option = "udap.cert_chain" if v["udap.cert_chain"] is not None else "udap.pkcs12"
    if client_uri is None:
        raise ConfigError(
            f"the client certificate has no URI subjectAltName ({raw.where(certificate_option)}); set udap.client_uri"
        )
    if client_uri not in client.san_uris():
        raise ConfigError(
            f"{raw.where('udap.client_uri')} is {client_uri}, not a URI subjectAltName of the client certificate "
            f"({raw.where(certificate_option)})"
        )
    fixtures = {}
    for name in UDAP_FIXTURES:
        certified = _certified(raw, v, f"udap.{name}_cert_chain", f"udap.{name}_private_key")
        if certified is not None:
            fixtures[name] = certified
    config = UdapConfig(
        client=client,
        anchors=anchors,
        client_uri=client_uri,
        version=v["udap.version"],
        community=v["udap.community"],
        purpose_of_use=v["udap.purpose_of_use"],
        scopes=v["udap.scopes"],
        registration_content_type=v["udap.registration_content_type"],
        registration=v["udap.registration"],
        fixtures=fixtures,
    )
    if v["udap.organization_id"]:
        config.organization_id = v["udap.organization_id"]
    if v["udap.organization_name"]:
        config.organization_name = v["udap.organization_name"]
    return config
