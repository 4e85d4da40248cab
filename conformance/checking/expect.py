"""Small assertions checks are written with; each raises a structured outcome.

They describe what came back in the words a report reader needs ("expected 400
or 401, got 200") and attach the exchange, so the failure can show a curl line.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, NoReturn

from conformance.core.config import ProtectedRead
from conformance.core.outcomes import CheckFailure, NotApplicable, PreconditionFailed, note
from conformance.core.recording import Exchange, cite
from conformance.core.redaction import active


def describe(exchange: Exchange, limit: int = 300) -> str:
    """'HTTP 400 (application/json) {...}', with secrets masked by the run's redactor."""
    redactor = active()
    if exchange.status is None:
        return f"no response ({redactor.text(exchange.error or 'unknown error')})"
    body = " ".join(redactor.body(exchange.response_body, exchange.response_header("content-type")).split())
    if len(body) > limit:
        body = body[:limit] + "…"
    media = exchange.response_header("content-type") or "no Content-Type"
    return f"HTTP {exchange.status} ({media}) {body}".rstrip()


def fail(
    title: str, *, expected: str, actual: str, exchange: Exchange | None = None, requirement: str | None = None
) -> NoReturn:
    """Raise a CheckFailure; `requirement` overrides the check's own (its level then decides the verdict)."""
    if exchange is not None:
        cite(exchange)
    raise CheckFailure(title, expected=expected, actual=actual, exchange=exchange, requirement=requirement)


def no_server_error(exchange: Exchange, what: str) -> None:
    """A 5xx is a failure whatever the check's own level: the server broke, it did not decide."""
    answered(exchange)
    if exchange.status is not None and exchange.status >= 500:
        fail(
            f"the server failed (5xx) on {what}",
            expected="a 4xx refusal or a proper answer",
            actual=describe(exchange),
            exchange=exchange,
            requirement="SBS-NO-5XX",
        )


def answered(exchange: Exchange) -> Exchange:
    """The exchange (now cited as evidence), or a NoResponse (broken) outcome when the target never answered."""
    cite(exchange)
    return exchange.require_response()


def precondition(ok: object, message: str) -> None:
    if not ok:
        raise PreconditionFailed(message)


def applicable(ok: object, message: str) -> None:
    if not ok:
        raise NotApplicable(message)


def status(exchange: Exchange, allowed: Collection[int], title: str) -> int:
    answered(exchange)
    assert exchange.status is not None
    if exchange.status not in allowed:
        wanted = " or ".join(str(s) for s in sorted(allowed))
        fail(title, expected=f"HTTP {wanted}", actual=describe(exchange), exchange=exchange)
    return exchange.status


def json_object(exchange: Exchange, title: str) -> dict[str, Any]:
    answered(exchange)
    body = exchange.json_object()
    if body is None:
        fail(title, expected="a JSON object body", actual=describe(exchange), exchange=exchange)
    return body


def media_type(exchange: Exchange, allowed: Collection[str], title: str) -> str:
    answered(exchange)
    if exchange.media_type not in allowed:
        fail(
            title,
            expected=f"Content-Type {' or '.join(sorted(allowed))}",
            actual=f"Content-Type {exchange.response_header('content-type') or '(none)'}",
            exchange=exchange,
        )
    note("Content-Type", exchange.response_header("content-type"))
    return exchange.media_type


def header_has_token(exchange: Exchange, name: str, token: str, title: str) -> None:
    """A comma-separated header (Cache-Control, Pragma) contains a directive, ignoring case."""
    answered(exchange)
    value = exchange.response_header(name) or ""
    directives = [d.strip().split("=")[0].lower() for d in value.split(",")]
    if token.lower() not in directives:
        fail(title, expected=f"{name}: {token}", actual=f"{name}: {value or '(absent)'}", exchange=exchange)
    note(name, value)


def bearer_challenge(exchange: Exchange, what: str) -> str:
    """A refusal at the FHIR API carries WWW-Authenticate: Bearer (RFC 6750 §3: MUST, whatever the status)."""
    challenge = exchange.response_header("www-authenticate") or ""
    if not challenge.lower().startswith("bearer"):
        fail(
            f"the refusal of {what} has no Bearer challenge",
            expected="WWW-Authenticate: Bearer …",
            actual=challenge or "(absent)",
            exchange=exchange,
        )
    return challenge


def field(body: dict[str, Any], name: str, exchange: Exchange, title: str) -> Any:
    if name not in body:
        fail(title, expected=f"a '{name}' member", actual=f"members {sorted(body)}", exchange=exchange)
    return body[name]


def no_member(exchange: Exchange, name: str, title: str, expected: str) -> None:
    """Fail when the response's JSON object has `name` (a refresh_token where none may be issued)."""
    if name in (exchange.json_object() or {}):
        fail(title, expected=expected, actual=f"{name} present", exchange=exchange)


def short_json(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def string_array(document: dict[str, Any], member: str, exchange: Exchange) -> list[str]:
    """`document[member]` as an array of strings, or a failure saying what it was instead."""
    value = document.get(member)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(
            f"{member} is not an array of strings",
            expected="an array of strings",
            actual=repr(value),
            exchange=exchange,
        )
    return value


def array_contains(document: dict[str, Any], member: str, wanted: str, exchange: Exchange, title: str) -> list[str]:
    """The discovery idiom: a metadata array that must list one value."""
    values = string_array(document, member, exchange)
    if wanted not in values:
        fail(title, expected=f'"{wanted}" in {member}', actual=repr(values), exchange=exchange)
    return values


def document(exchange: Exchange, what: str, resource_type: str | None = None) -> dict[str, Any]:
    """The body of a 200 as a JSON object (of `resource_type`), or a precondition failure naming `what`."""
    answered(exchange)
    body = exchange.json_object() if exchange.status == 200 else None
    if body is None or (resource_type is not None and body.get("resourceType") != resource_type):
        raise PreconditionFailed(f"could not read {what}")
    return body


def items(value: Any) -> list[Any]:
    """A JSON array's elements, or [] for anything else (checks that need an array fail elsewhere)."""
    return value if isinstance(value, list) else []


def objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects in an array; strings, numbers and non-arrays contribute nothing."""
    return [v for v in items(value) if isinstance(v, dict)]


def member(value: Any, name: str) -> Any:
    """`value[name]` when value is a JSON object, else None."""
    return value.get(name) if isinstance(value, dict) else None


def configured_read(exchange: Exchange, read: ProtectedRead, title: str) -> None:
    """A configured read made with a token that covers it: 2xx, and for Type/id the resource asked for.

    A 404 means the configured resource is not there: the check is not applicable, never failed."""
    answered(exchange)
    applicable(exchange.status != 404, f"the configured read {read.path} answers 404 (set target.reads)")
    if exchange.status is None or not 200 <= exchange.status < 300:
        fail(title, expected="HTTP 2xx", actual=describe(exchange), exchange=exchange)
    if read.instance_id is None:
        return
    body = json_object(exchange, "the read must return JSON")
    if body.get("resourceType") != read.resource_type or body.get("id") != read.instance_id:
        fail(
            "the read did not return the requested resource",
            expected=read.path,
            actual=f"{body.get('resourceType')}/{body.get('id')}",
            exchange=exchange,
        )
