"""Which requests go through an HTTP proxy: `http.proxy`, else HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY.

Corporate networks reach staging servers only through a proxy. The rules follow
the usual environment conventions (lower- or upper-case names, NO_PROXY hosts
and domain suffixes, `*` for none) with one addition: loopback addresses never
go through a proxy taken from the environment, so the embedded reference server
works whatever the environment says (an explicit `http.proxy` applies to every
host). The redirect and credential rules of the recorder apply unchanged,
because they act on URLs before any transport sees the request.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import httpx

LOOPBACK_PATTERNS = ("all://127.0.0.1", "all://localhost", "all://[::1]")
NO_PROXY_WORDS = frozenset({"", "none", "off", "direct"})


def proxy_settings(explicit: str | None, environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """(proxy URL by scheme, NO_PROXY entries). `explicit` wins over the environment; "none" means no proxy."""
    if explicit is not None:
        if explicit.strip().lower() in NO_PROXY_WORDS:
            return {}, []
        return {"http": explicit, "https": explicit}, []
    found = urllib.request.getproxies_environment() if environ is None else _from(environ)
    bypass = [entry.strip() for entry in found.pop("no", "").split(",") if entry.strip()]
    if "*" in bypass:
        return {}, []
    proxies = {scheme: with_scheme(found[scheme]) for scheme in ("http", "https") if found.get(scheme)}
    for scheme in ("http", "https"):
        if scheme not in proxies and found.get("all"):
            proxies[scheme] = with_scheme(found["all"])
    return proxies, bypass


ENVIRONMENT_NAMES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def with_scheme(url: str) -> str:
    """`proxy.corp:3128` means http://proxy.corp:3128, as curl and httpx read it (surrounding spaces dropped)."""
    url = url.strip()
    return url if "://" in url else f"http://{url}"


def _from(environ: Mapping[str, str]) -> dict[str, str]:
    """getproxies_environment() for a given mapping: lower-case names win over upper-case ones."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if name.lower().endswith("_proxy") and value:
            scheme = name.lower()[: -len("_proxy")]
            if name.islower() or scheme not in found:
                found[scheme] = value
    return found


def _bypass_pattern(entry: str) -> str:
    """A NO_PROXY entry as an httpx mount pattern: a host matches itself and its subdomains (`example.com`,
    `.example.com` and `*.example.com` alike), an IP address only itself. CIDR ranges are not supported."""
    if "://" in entry:
        return entry
    if entry.startswith("["):  # [v6] or [v6]:port
        entry = entry[1 : entry.find("]")] if "]" in entry else entry.strip("[")
    elif entry.count(":") == 1:  # host:port
        entry = entry.split(":")[0]
    host = entry.lstrip("*").lstrip(".")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"all://*{host}"
    return f"all://[{address}]" if address.version == 6 else f"all://{address}"


def proxy_mounts(
    explicit: str | None, make_transport: Callable[[str], httpx.BaseTransport], environ: Mapping[str, str] | None = None
) -> dict[str, httpx.BaseTransport | None]:
    """httpx mounts: a proxy transport per proxied scheme, None (direct) for loopback and NO_PROXY hosts."""
    proxies, bypass = proxy_settings(explicit, environ)
    if not proxies:
        return {}
    mounts: dict[str, httpx.BaseTransport | None] = {
        f"{scheme}://": make_transport(url) for scheme, url in proxies.items()
    }
    for entry in bypass:
        if "/" not in entry:  # CIDR ranges cannot be expressed as mount patterns: documented as unsupported
            mounts[_bypass_pattern(entry)] = None
    if explicit is None:
        for pattern in LOOPBACK_PATTERNS:
            mounts[pattern] = None
    return mounts


def proxy_credentials(explicit: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Passwords inside proxy URLs: secrets the redactor must mask."""
    proxies, _ = proxy_settings(explicit, environ)
    return [urlsplit(url).password or "" for url in proxies.values() if urlsplit(url).password]
