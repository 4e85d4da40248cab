"""SMART scope syntax (v1 `.read`, v2 `.rs`), shared by checks and the reference server."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE_RE = re.compile(r"^(system|patient|user)/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$")
V1_PERMS = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}


@dataclass(frozen=True)
class SmartScope:
    context: str
    resource: str
    perms: frozenset[str]
    v1: bool
    text: str

    def covers(self, other: SmartScope) -> bool:
        return (
            self.context == other.context
            and (self.resource == "*" or self.resource == other.resource)
            and other.perms <= self.perms
        )

    def render(self, resource: str, perms: frozenset[str]) -> str:
        """The same syntax family (v1 or v2) for another resource and permission set."""
        if self.v1:
            suffix = next((name for name, p in V1_PERMS.items() if p == perms), None) or "read"
        else:
            suffix = "".join(c for c in "cruds" if c in perms)
        return f"{self.context}/{resource}.{suffix}"


def parse_scope(text: str) -> SmartScope | None:
    """Parse one SMART resource scope; None for anything else (offline_access, garbage)."""
    match = _SCOPE_RE.match(text)
    if not match or not match.group(3):
        return None
    context, resource, suffix = match.groups()
    if suffix in V1_PERMS:
        return SmartScope(context, resource, V1_PERMS[suffix], True, text)
    return SmartScope(context, resource, frozenset(suffix), False, text)


def split_scopes(value: object) -> list[str]:
    """RFC 6749 §3.3: scope is a space-delimited string (anything else holds no scope)."""
    if not isinstance(value, str):
        return []
    return [s for s in value.split(" ") if s]


def permits(scope_value: str, resource: str, perm: str) -> bool:
    """Whether a granted scope string allows `perm` (one of c r u d s) on `resource`."""
    for text in split_scopes(scope_value):
        scope = parse_scope(text)
        if scope and scope.resource in ("*", resource) and perm in scope.perms:
            return True
    return False


def is_v2(text: str) -> bool:
    scope = parse_scope(text)
    return scope is not None and not scope.v1


def beyond(granted: list[str], requested: list[str]) -> list[str]:
    """Granted scopes the request does not cover: neither echoed exactly nor implied by a requested SMART scope."""
    asked = [s for s in (parse_scope(t) for t in requested) if s]
    outside = []
    for text in granted:
        if text in requested:
            continue
        scope = parse_scope(text)
        if scope is None or not any(a.covers(scope) for a in asked):
            outside.append(text)
    return outside
