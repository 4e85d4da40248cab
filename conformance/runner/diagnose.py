"""Why does the token request fail? Probes that gather evidence and findings ranked by likelihood.

A team whose sandbox answers `403 Access denied` loses days guessing. This
module asks the target a few questions (discovery, one token request, the
server's clock) and turns the answers into findings, each with the exchanges
that support it, most likely first. It says what the evidence points to, not a
generic checklist.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from conformance.checking.evidence import render_request, render_response
from conformance.core.recording import Exchange
from conformance.flows import discovery
from conformance.flows.target import Target
from conformance.profiles import registry as profiles

SKEW_NOTICEABLE = 60
BLOCKING = 50
ASSERTION_LIFETIME = 300
TENANT_IN_TOKEN_URL = re.compile(r"/tenants/([^/]+)/")
SPECIAL_IN_SECRET = re.compile(r"[:+%\s]|[^\x00-\x7f]")


@dataclass
class Finding:
    code: str
    title: str
    likelihood: int
    explanation: str
    causes: list[str] = field(default_factory=list)
    evidence: list[Exchange] = field(default_factory=list)

    @property
    def problem(self) -> bool:
        return self.likelihood > 0


@dataclass
class Diagnosis:
    target: str
    profile: str
    findings: list[Finding]

    @property
    def healthy(self) -> bool:
        """No finding that would stop the client (low-likelihood loose ends are reported, not fatal)."""
        return not any(f.likelihood >= BLOCKING for f in self.findings)


def _tenant_of_fhir_base(base_url: str) -> str | None:
    parts = [p for p in urlsplit(base_url).path.split("/") if p]
    return parts[-1] if len(parts) >= 2 else None


def _server_clock_skew(exchanges: list[Exchange]) -> tuple[float, Exchange] | None:
    """Seconds the server's clock is ahead of ours (negative: behind), from a Date header."""
    for exchange in exchanges:
        header = exchange.response_header("date")
        if not header:
            continue
        try:
            server = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError):
            continue
        received = exchange.received_at or time.time()
        return server - received, exchange
    return None


def _cerner_reason(exchange: Exchange) -> str | None:
    uri = str((exchange.json_object() or {}).get("error_uri", ""))
    decoded = unquote(uri)
    return decoded.split("oauth2:token:")[-1].split("/")[0] if "oauth2:token:" in decoded else None


def _token_request(target: Target, token_url: str) -> Exchange | None:
    probe = profiles.get(target.config.profile).probe_token
    return probe(target, token_url) if probe is not None else None


def diagnose(target: Target) -> Diagnosis:
    """Run the probes and rank what they found."""
    config = target.config
    base = target.base_url
    findings: list[Finding] = []
    smart_config = discovery.get_smart_configuration(target.http, base)
    capability = discovery.get_capability_statement(target.http, base)
    endpoints = discovery.resolve_token_endpoint(base, smart_config, capability)
    advertised = endpoints.token_url
    token_url = config.token_url or advertised
    uses_jwt = profiles.get(config.profile).client_auth != "client_secret_basic"

    if smart_config.status is None and capability.status is None:
        findings.append(
            Finding(
                "target-unreachable",
                "The FHIR server does not answer",
                95,
                smart_config.error or "no response",
                [
                    "the server is down or the URL is wrong",
                    "network path or firewall",
                    "TLS trust (set http.ca_bundle)",
                ],
                [smart_config],
            )
        )
        return Diagnosis(base, config.profile, findings)
    if token_url is None:
        findings.append(
            Finding(
                "no-token-url",
                "No token URL: discovery advertises none and none is configured",
                95,
                "Neither .well-known/smart-configuration nor the CapabilityStatement names a token endpoint.",
                ["the FHIR base URL is wrong (check the tenant id)", "discovery is not served at this base"],
                [smart_config, capability],
            )
        )
        return Diagnosis(base, config.profile, findings)

    if config.token_url and advertised and discovery.resolve(base, config.token_url) != advertised:
        findings.append(
            Finding(
                "token-url-differs",
                "The configured token URL differs from the one discovery advertises",
                40,
                f"Configured {config.token_url}; discovery says {advertised}.",
                ["the token URL was copied for another tenant or environment", "the server moved its token endpoint"],
                [smart_config],
            )
        )

    fhir_tenant = _tenant_of_fhir_base(base)
    match = TENANT_IN_TOKEN_URL.search(urlsplit(token_url).path)
    if match and fhir_tenant and match.group(1) != fhir_tenant:
        findings.append(
            Finding(
                "tenant-mismatch",
                "The token URL names a different tenant than the FHIR base URL",
                75,
                f"Token URL tenant {match.group(1)}; FHIR base tenant {fhir_tenant}. A token for one tenant does not open another.",
                [
                    "the token URL or the FHIR base was copied from another tenant",
                    "the tenant id has a stray character",
                ],
                [smart_config],
            )
        )

    token = _token_request(target, token_url)
    exchanges = [e for e in (token, smart_config, capability) if e is not None]
    if token is None:
        probed = sorted(p.name for p in profiles.PROFILES if p.probe_token is not None)
        findings.append(
            Finding(
                "no-token-probe",
                f"Diagnosis does not send a token request for profile {config.profile}",
                0,
                f"Only the {' and '.join(probed)} profiles are probed; run `conformance run` for the others.",
            )
        )
    else:
        findings += _token_findings(target, token, uses_jwt)

    skew = _server_clock_skew(exchanges)
    if skew is not None and abs(skew[0]) >= SKEW_NOTICEABLE:
        seconds, exchange = skew
        direction = "ahead of" if seconds > 0 else "behind"
        token_failed = token is not None and token.status != 200
        # With client assertions a skew this size breaks authentication; with a secret it is a loose end.
        likelihood = (
            90 if uses_jwt and abs(seconds) >= ASSERTION_LIFETIME - 30 and token_failed else 55 if uses_jwt else 20
        )
        findings.append(
            Finding(
                "clock-skew",
                f"The server's clock is {abs(seconds):.0f} s {direction} this machine's",
                likelihood,
                "Client assertions carry iat/exp (at most 5 minutes); a skew this large makes a fresh assertion look "
                "expired or not yet valid to the server. Fix NTP on whichever side is wrong.",
                ["this machine's clock is wrong", "the server's clock is wrong"],
                [exchange],
            )
        )

    supported = (smart_config.json_object() or {}).get("scopes_supported")
    if isinstance(supported, list):
        missing = [s for s in config.scopes if s not in supported]
        if missing:
            token_body = (token.json_object() or {}) if token is not None else {}
            scope_failure = token_body.get("error") == "invalid_scope" or (
                token is not None and _cerner_reason(token) == "empty-scopes"
            )
            findings.append(
                Finding(
                    "scope-not-advertised",
                    f"Requested scope(s) not listed in scopes_supported: {' '.join(missing)}",
                    80 if scope_failure else 30,
                    "The list need not be complete, but a scope the server does not list is the first suspect when scopes are refused.",
                    [
                        "the scope is misspelled or uses the other SMART version's syntax",
                        "the account was never granted it",
                    ],
                    [smart_config],
                )
            )
    findings.sort(key=lambda f: -f.likelihood)
    return Diagnosis(base, config.profile, findings)


def _token_findings(target: Target, token: Exchange, uses_jwt: bool) -> list[Finding]:
    if token.status is None:
        return [
            Finding(
                "token-endpoint-unreachable",
                "The token endpoint did not answer",
                90,
                token.error or "no response",
                ["network path or firewall", "TLS trust (set http.ca_bundle)", "wrong host in the token URL"],
                [token],
            )
        ]
    body = token.json_object() or {}
    error = body.get("error")
    if token.status == 200 and body.get("access_token"):
        return [
            Finding(
                "token-works",
                "The token request succeeds",
                0,
                "The configured credentials get a token.",
                evidence=[token],
            )
        ]
    if token.status == 403 and "access denied" in token.text.lower():
        return [
            Finding(
                "access-denied",
                "The authorization server refuses this client outright (403 Access denied)",
                95,
                "A plain-text 403 instead of an OAuth error means the request never reached credential checking: "
                "the account itself is blocked.",
                [
                    "the system account's registration has expired or been revoked (renew or re-approve it)",
                    "this machine's IP address is not on the account's allow-list",
                    "the scopes the account was granted were withdrawn",
                    "the tenant (provider organisation) was deactivated or never enabled for the account",
                ],
                [token],
            )
        ]
    reason = _cerner_reason(token)
    if error == "invalid_client":
        causes = ["the client id or secret is wrong, or the secret was rotated"]
        secret = target.config.client_secret or ""
        if not uses_jwt and SPECIAL_IN_SECRET.search(secret):
            causes.append(
                "the secret has ':', '+', '%', spaces or non-ASCII: it must be form-urlencoded before base64 (RFC 6749 2.3.1); this tool does so, some clients do not"
            )
        if reason == "invalid-authorization-header":
            causes.insert(0, "the Authorization header is not valid HTTP Basic")
        if uses_jwt:
            causes = [
                "the public key (kid) is not the one registered for this client",
                "the assertion's aud is not the exact token URL",
                "the assertion looks expired or not yet valid (clock skew)",
                "the client id is not registered",
            ]
        return [
            Finding(
                "invalid-client",
                f"The server does not accept the client's credentials (HTTP {token.status} invalid_client)",
                85,
                f"Reason code: {reason}." if reason else "No reason code was given.",
                causes,
                [token],
            )
        ]
    if reason == "invalid-tenant" or (error == "invalid_grant" and TENANT_IN_TOKEN_URL.search(token.url)):
        return [
            Finding(
                "tenant-not-enabled",
                "The tenant in the token URL is unknown or not enabled for this client",
                85,
                "Cerner answers invalid_grant with reason invalid-tenant.",
                ["the tenant id in the token URL is wrong", "the account is not enabled for this tenant"],
                [token],
            )
        ]
    if error == "invalid_scope" or reason == "empty-scopes":
        return [
            Finding(
                "scopes-not-granted",
                "None of the requested scopes is granted to this client",
                80,
                f"Requested: {target.config.scope}.",
                ["the account lacks these scopes", "the scope syntax (v1/v2) is not the server's"],
                [token],
            )
        ]
    return [
        Finding(
            "token-error",
            f"The token request failed: HTTP {token.status} {error or ''}".strip(),
            60,
            "See the response for details.",
            [],
            [token],
        )
    ]


def render_text(report: Diagnosis, target: Target) -> str:
    lines = [f"diagnosis of {report.target} (profile {report.profile})", ""]
    for number, finding in enumerate(report.findings, 1):
        marker = "info" if not finding.problem else f"likelihood {finding.likelihood}"
        lines.append(f"{number}. {finding.title} [{marker}]")
        lines.append(f"   {finding.explanation}")
        for cause in finding.causes:
            lines.append(f"   - {cause}")
        for exchange in finding.evidence[:1]:
            lines.append("   evidence:")
            lines += ["     " + line for line in render_request(exchange, target.redactor).splitlines()[:6]]
            lines += ["     " + line for line in render_response(exchange, target.redactor).splitlines()[:12]]
        lines.append("")
    if report.healthy:
        lines.append(
            "no problem found that would stop the client"
            if any(f.problem for f in report.findings)
            else "no problem found"
        )
    return target.redactor.text("\n".join(lines))


def render_json(report: Diagnosis, target: Target) -> dict[str, Any]:
    redactor = target.redactor
    return {
        "target": report.target,
        "profile": report.profile,
        "healthy": report.healthy,
        "findings": [
            {
                "code": f.code,
                "title": redactor.text(f.title),
                "likelihood": f.likelihood,
                "explanation": redactor.text(f.explanation),
                "causes": [redactor.text(c) for c in f.causes],
                "evidence": [
                    {"request": render_request(e, redactor), "response": render_response(e, redactor)}
                    for e in f.evidence
                ],
            }
            for f in report.findings
        ],
    }
