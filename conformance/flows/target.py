"""The run's view of the server under test: its config, the HTTP client, keys and helpers.

Created once per pytest session (per xdist worker). For an embedded run it also
owns the reference server and the JWKS host it started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.core.config import TargetConfig
from conformance.core.jwks_host import JwksHost
from conformance.core.pacing import Pacer, RetryBudget
from conformance.core.proxies import proxy_credentials
from conformance.core.recording import Exchange, HttpRecorder
from conformance.core.redaction import Redactor
from conformance.crypto.jose import ClientKey, generate_rsa, jwks, observe_signatures

SECRET_RESPONSE_FIELDS = ("access_token", "refresh_token", "id_token", "client_secret")


@dataclass
class JwksUrlClient:
    """A client registered by JWKS URL whose JWKS the suite serves (and can rotate)."""

    client_id: str
    host: JwksHost
    document: str
    keys: list[ClientKey]
    spare_key: ClientKey

    @property
    def url(self) -> str:
        return self.host.url(self.document)

    def publish(self, keys: list[ClientKey], cache_control: str = "no-store") -> None:
        self.host.publish(self.document, jwks(keys), cache_control=cache_control)


@dataclass
class Target:
    config: TargetConfig
    http: HttpRecorder
    redactor: Redactor
    other_client_key: ClientKey | None = None
    jwks_client: JwksUrlClient | None = None
    attacker_key: ClientKey | None = None
    attacker_host: JwksHost | None = None
    closers: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Every signature the suite makes while this target is open is a secret (see observe_signatures).
        self.closers.insert(0, observe_signatures(lambda signature: self.redactor.add_secret(signature, encoded=False)))

    @property
    def base_url(self) -> str:
        assert self.config.base_url is not None
        return self.config.base_url

    def close(self) -> None:
        self.http.close()
        for close in reversed(self.closers):
            close()


def observe_secrets(redactor: Redactor, exchange: Exchange) -> None:
    """Teach the redactor every token value a response hands out (JSON, BOM-prefixed JSON or a form)."""
    from urllib.parse import parse_qsl

    body: dict[str, Any] = exchange.json_object() or {}
    if not body and b"=" in exchange.response_body[:4096]:
        try:
            body = dict(parse_qsl(exchange.response_body.decode("utf-8", errors="replace").strip()))
        except ValueError:
            body = {}
    for name in SECRET_RESPONSE_FIELDS:
        value = body.get(name)
        if isinstance(value, str):
            redactor.add_secret(value)
    if exchange.media_type == "application/jwt":
        redactor.add_secret(exchange.text.strip())


def make_redactor(config: TargetConfig, extra_keys: Sequence[ClientKey] = ()) -> Redactor:
    from conformance.flows.oauth import basic_authorization

    redactor = Redactor(extra_secret_headers=config.secret_headers)
    redactor.add_secret(config.client_secret)
    redactor.add_secret(config.special_client_secret)
    for client, secret in (
        (config.client_id, config.client_secret),
        (config.special_client_id, config.special_client_secret),
    ):
        if client and secret:
            redactor.add_secret(basic_authorization(client, secret).split(" ", 1)[1])
    for key in [*config.keys, *extra_keys]:
        for secret in key.secret_strings():
            redactor.add_secret(secret)
    if config.udap is not None:
        for certified in [config.udap.client, *config.udap.fixtures.values()]:
            redactor.add_secret(certified.private_key_pem().decode())
    for name, value in config.headers.items():
        if redactor.is_secret_header(name):
            redactor.add_secret(value)
    return redactor


def open_target(config: TargetConfig, *, extra_keys: list[ClientKey] | None = None) -> Target:
    """HTTP client and redactor for a configured (non-embedded) target."""
    attacker = generate_rsa(kid="conformance-unregistered-key")
    extra = [*(extra_keys or []), attacker, *([config.other_client_key] if config.other_client_key else [])]
    redactor = make_redactor(config, extra)
    http = make_http(config, redactor)
    target = Target(config, http, redactor, other_client_key=config.other_client_key, attacker_key=attacker)
    if config.jwks_host is not None:
        host = JwksHost(
            config.jwks_host.listen_host,
            config.jwks_host.listen_port,
            public_base=config.jwks_host.public_url,
        )
        keys = [generate_rsa()]
        spare = generate_rsa()
        for key in (*keys, spare):
            for secret in key.secret_strings():
                redactor.add_secret(secret)
        target.jwks_client = JwksUrlClient(config.jwks_host.client_id, host, "client", keys, spare)
        target.jwks_client.publish(keys)
        target.closers.append(host.close)
    return target


def make_http(config: TargetConfig, redactor: Redactor) -> HttpRecorder:
    http = HttpRecorder(
        timeout=config.timeout,
        verify=config.verify,
        extra_headers=config.headers,
        max_body_bytes=config.max_body_bytes,
        proxy=config.proxy,
        retry=RetryBudget(attempts=config.retry_attempts, run_seconds=config.retry_budget),
        pacer=Pacer(config.max_rps),
    )
    for password in proxy_credentials(config.proxy):
        redactor.add_secret(password)
    http.observers.append(lambda exchange: observe_secrets(redactor, exchange))
    return http
