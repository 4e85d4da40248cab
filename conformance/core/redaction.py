"""Masks secrets before anything is written to a report, a log or the console.

Exchanges are kept raw in memory because checks must read them; every rendering
(Allure attachment, curl line, failure text, JSON results) goes through a
`Redactor`. It masks by structure (Authorization values, secret form fields and
JSON members, JWT signatures, PEM private keys) and by value (secrets the run
knows about: the client secret, private key material, every access token seen).
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "[redacted]"
SIGNATURE_MASK = "[signature-redacted]"

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "apikey", "api-key"}
)
# Fields whose whole value is secret.
SECRET_FIELDS = frozenset(
    {"client_secret", "access_token", "refresh_token", "id_token", "password", "code", "code_verifier"}
)
# Fields holding a signed JWT: header and claims stay readable, the signature is masked.
SIGNED_FIELDS = frozenset({"client_assertion", "software_statement", "assertion", "jwt", "signed_metadata"})
# Private members of a JWK.
JWK_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})

_JWT_RE = re.compile(r"\b([A-Za-z0-9_-]{10,})\.([A-Za-z0-9_-]{2,}\.)([A-Za-z0-9_-]{8,})")
_CREDENTIAL_RE = re.compile(
    r"(?<![\w-])(Basic|Bearer)\s+"  # the scheme as a word of its own: not the `bearer` of `jwt-bearer`
    # A credential (token68, RFC 9110 §11.2): 12+ characters holding a digit or an inner . ~ + /, as random
    # tokens and JWTs do; not the next word of a sentence ("Bearer challenge.", "Bearer token_type",
    # "Basic realm=fhir") and never a command-line flag.
    r"(?=[A-Za-z0-9+/=._~-]*(?:[0-9]|[.~+/][A-Za-z0-9]))([A-Za-z0-9+/_~][A-Za-z0-9+/=._~-]{11,})",
    re.IGNORECASE,
)
_TEXT_SECRET_NAMES = "|".join(sorted(SECRET_FIELDS - {"code"}))
"""Secret names looked for in free text (not `code`, which is also an OperationOutcome issue's member)."""
_SECRET_MEMBER_RE = re.compile(r'("(?:' + _TEXT_SECRET_NAMES + r')"\s*:\s*")((?:[^"\\]|\\.){4,}\\?)', re.IGNORECASE)
"""A secret JSON member in text that does not parse (a body cut off mid-way): its value is masked all the same."""
_SECRET_PAIR_RE = re.compile(r"\b((?:" + _TEXT_SECRET_NAMES + r")=)([^&\s\"]{4,})", re.IGNORECASE)
_PEM_PRIVATE_RE = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL)


def display_url(url: str) -> str:
    """A URL as reports show it: no password in the authority, query values masked (an api_key, say)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="[]")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class Redactor:
    """Knows the run's secrets and masks them wherever they could appear."""

    def __init__(self, extra_secret_headers: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] | None = None
        self._lock = threading.Lock()
        self._secret_headers = SECRET_HEADERS | {h.lower() for h in extra_secret_headers}

    def add_secret(self, value: str | None, *, encoded: bool = True) -> None:
        """Remember a value that must never be shown, in every encoding the suite sends it in (a target may echo
        any of them; `encoded=False` for values that are already base64url, such as signatures). Values under 4
        characters would mask too much."""
        if not value or len(value) < 4 or value in self._secrets:
            return
        found = {v for v in (encodings(value) if encoded else {value}) if len(v) >= 4}
        with self._lock:  # exchanges sent side by side teach it from several threads
            self._secrets.update(found)
            self._ordered = None

    def _longest_first(self) -> list[str]:
        """The known secrets, longest first (so a secret inside a longer one never leaves a piece of it), sorted
        again only after a secret was added. Masking is a substring test per secret: fast for the few hundred a
        run holds, where one compiled alternation cost seconds to rebuild each time a token arrived."""
        with self._lock:
            if self._ordered is None:
                self._ordered = sorted(self._secrets, key=len, reverse=True)
            return self._ordered

    @property
    def secrets_known(self) -> int:
        """Grows whenever a secret is learnt: text masked before and after may differ (a rendering cache key)."""
        return len(self._secrets)

    def is_secret_header(self, name: str) -> bool:
        return name.lower() in self._secret_headers

    def text(self, value: str) -> str:
        """Mask known secrets, JWT signatures and PEM private keys in free text."""
        for secret in self._longest_first():
            if secret in value:
                value = value.replace(secret, MASK)
        value = _PEM_PRIVATE_RE.sub(f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----", value)
        value = _CREDENTIAL_RE.sub(lambda m: f"{m.group(1)} {MASK}", value)
        value = _SECRET_MEMBER_RE.sub(lambda m: f"{m.group(1)}{MASK}", value)
        value = _SECRET_PAIR_RE.sub(lambda m: f"{m.group(1)}{MASK}", value)
        return _JWT_RE.sub(_mask_jwt_match, value)

    def header(self, name: str, value: str) -> str:
        lname = name.lower()
        if lname in self._secret_headers:
            if lname in ("authorization", "proxy-authorization") and " " in value.strip():
                scheme = value.strip().split(" ", 1)[0]
                return f"{scheme} {MASK}"
            return MASK
        return self.text(value)

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, self.header(k, v)) for k, v in headers]

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        if not parts.query:
            return self.text(url)
        query = urlencode(
            [(k, self._field(k, v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="/:*"
        )
        return self.text(urlunsplit(parts._replace(query=query)))

    def body(self, body: bytes, content_type: str | None) -> str:
        """Render a body for humans with secrets masked, whatever its declared type."""
        text = body.decode("utf-8", errors="replace")
        media = (content_type or "").split(";")[0].strip().lower()
        if media == "application/x-www-form-urlencoded":
            pairs = parse_qsl(text, keep_blank_values=True)
            if pairs:
                return self.text("&".join(f"{k}={self._field(k, v)}" for k, v in pairs))
        if "json" in media or text.lstrip().startswith(("{", "[")):
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
            else:
                return self.text(json.dumps(self.json_value(parsed), indent=2, ensure_ascii=False))
        return self.text(text)

    def json_value(self, value: Any, key: str | None = None, in_jwk: bool = False) -> Any:
        if isinstance(value, dict):
            jwk = "kty" in value
            return {k: self.json_value(v, k, jwk) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(v, key, in_jwk) for v in value]
        if isinstance(value, str) and key is not None:
            if in_jwk and key in JWK_PRIVATE_MEMBERS:
                return MASK
            return self._field(key, value)
        return value

    def _field(self, name: str, value: str) -> str:
        lname = name.lower()
        if lname in SECRET_FIELDS and value:
            return MASK
        if lname in SIGNED_FIELDS:
            return mask_signature(value)
        return value


def encodings(value: str) -> set[str]:
    """The value as sent and as a target might echo it: form- and percent-encoded, base64 (standard and URL-safe,
    padded or not), JSON- and HTML-escaped."""
    raw = value.encode("utf-8")
    forms = {
        value,
        quote_plus(value),
        quote(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
    }
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms |= {text, text.rstrip("=")}
    # JSON encoders that escape "/" (PHP's default) echo base64 and secrets as "ab\/cd".
    return forms | {form.replace("/", "\\/") for form in forms if "/" in form}


def _mask_jwt_match(match: re.Match[str]) -> str:
    """Mask the signature of anything shaped like a JWS whose first part decodes to a JSON object."""
    head = match.group(1)
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).lstrip()
    except (ValueError, TypeError):
        return match.group(0)
    if not decoded.startswith(b"{"):
        return match.group(0)
    return f"{head}.{match.group(2)}{SIGNATURE_MASK}"


_active: Redactor | None = None


def activate(redactor: Redactor | None) -> None:
    """Make `redactor` the one free-standing renderings (failure texts, skip reasons) go through."""
    global _active
    _active = redactor


def active() -> Redactor:
    """The run's redactor, or a fresh one that still masks by structure."""
    return _active if _active is not None else Redactor()


def derived_secret(value: str) -> str:
    """A value made from a secret (a token with one character changed) is a secret too: return it, registered
    with the run's redactor, so a target that echoes it cannot leak all but one character of the original."""
    active().add_secret(value)
    return value


def mask_signature(token: str) -> str:
    """Keep a JWT's header and claims readable and mask its signature."""
    parts = token.split(".")
    if len(parts) == 3 and parts[2]:
        return f"{parts[0]}.{parts[1]}.{SIGNATURE_MASK}"
    return token
