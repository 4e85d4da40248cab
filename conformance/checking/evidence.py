"""Renders recorded exchanges for humans: report attachments and curl lines.

Everything that leaves memory passes through the run's `Redactor` here, so a
report can be shared without leaking a secret, a key or a token.
"""

from __future__ import annotations

import shlex
from urllib.parse import parse_qsl, unquote_plus, urlencode

from conformance.core.recording import Exchange
from conformance.core.redaction import Redactor

MAX_SHOWN_BODY = 64 * 1024
_HIDDEN_REQUEST_HEADERS = frozenset({"user-agent", "content-length", "host", "accept-encoding", "connection"})


def _clip(text: str) -> str:
    if len(text) > MAX_SHOWN_BODY:
        return text[:MAX_SHOWN_BODY] + f"\n… [{len(text) - MAX_SHOWN_BODY} more characters not shown]"
    return text


def render_request(exchange: Exchange, redactor: Redactor) -> str:
    lines = [f"{exchange.method} {redactor.url(exchange.url)}"]
    lines += [f"{k}: {v}" for k, v in redactor.headers(exchange.request_headers)]
    if exchange.request_body:
        content_type = exchange.request_header("content-type")
        lines += ["", _clip(redactor.body(exchange.request_body, content_type))]
    return "\n".join(lines)


def render_response(exchange: Exchange, redactor: Redactor) -> str:
    if exchange.status is None:
        lines = [f"NO RESPONSE after {exchange.elapsed_ms:.0f} ms: {redactor.text(exchange.error or 'unknown error')}"]
        lines += [f"retried: {r}" for r in exchange.retries]
        if exchange.partial_status is not None:
            lines.append(f"(incomplete answer, not judged) HTTP {exchange.partial_status}")
            lines += [f"{k}: {v}" for k, v in redactor.headers(exchange.response_headers)]
            if exchange.response_body:
                content_type = exchange.response_header("content-type")
                lines += ["", _clip(redactor.body(exchange.response_body, content_type))]
        return "\n".join(lines)
    lines = [f"HTTP {exchange.status} ({exchange.elapsed_ms:.0f} ms)"]
    lines += [f"retried: {r}" for r in exchange.retries]
    lines += [f"redirect: {redactor.text(r)}" for r in exchange.redirects]
    lines += [f"{k}: {v}" for k, v in redactor.headers(exchange.response_headers)]
    if exchange.response_body:
        lines += ["", _clip(redactor.body(exchange.response_body, exchange.response_header("content-type")))]
    if exchange.truncated:
        lines.append("[body truncated at the size limit]")
    return "\n".join(lines)


def curl_command(exchange: Exchange, redactor: Redactor) -> str:
    """A curl line that repeats the request, with every secret masked."""
    parts = ["curl", "-sS", "-i"]
    if exchange.method != "GET":
        parts += ["-X", exchange.method]
    parts.append(shlex.quote(redactor.url(exchange.url)))
    for key, value in redactor.headers(exchange.request_headers):
        if key.lower() in _HIDDEN_REQUEST_HEADERS:
            continue
        parts += ["-H", shlex.quote(f"{key}: {value}")]
    if exchange.request_body:
        content_type = exchange.request_header("content-type") or ""
        pairs = form_pairs(exchange.request_body) if "x-www-form-urlencoded" in content_type else None
        if pairs is not None:
            for key, value in pairs:
                shown = redactor.body(urlencode([(key, value)]).encode(), content_type)
                parts += ["--data-urlencode", shlex.quote(unquote_plus(shown))]
        else:
            body = redactor.body(exchange.request_body, content_type)
            parts += ["--data-raw", shlex.quote(body if len(body) < 4000 else body[:4000] + "…")]
    return " ".join(parts)


def form_pairs(body: bytes) -> list[tuple[str, str]] | None:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (ValueError, UnicodeDecodeError):
        return None
