"""FHIR-side checks use the protected reads the user configures, not only Patient/{id}."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.config import ProtectedRead
from conformance.crypto.jose import jwks, load_key
from conformance.mock.server import MockServer
from conformance.mock.store import Client
from conformance.profiles import registry as profiles
from conformance.profiles.smart_backend import CLIENT_ID, CLIENT_SCOPES
from conformance.runner.configuration import ConfigError, load_config
from tests.conftest import SuiteWorker, run_suites

BEARER_CHECKS = (
    "format/test_json_format.py::test_format_json_gets_fhir_json",
    "format/test_json_format.py::test_accept_fhir_json_gets_fhir_json",
    "scopes/test_scopes.py::test_garbage_token_gets_401",
    "scopes/test_scopes.py::test_tampered_token_gets_401",
    "scopes/test_scopes.py::test_lowercase_bearer_scheme_is_accepted",
    "token/test_token_success.py::test_fhir_request_without_token_gets_401",
)


def test_reads_come_from_the_config_with_their_headers(tmp_path: Path) -> None:
    config = tmp_path / "target.toml"
    config.write_text(
        '[target]\nbase_url = "https://fhir.example.org/r4"\nreads = ["Patient/123", '
        '{ path = "Group/abc/$export", headers = { Prefer = "respond-async" } }]\n'
        '[auth]\nclient_id = "c"\nprivate_key = "k.pem"\n'
    )
    (tmp_path / "k.pem").write_bytes(_pem())
    loaded = load_config(config, environ={})
    assert loaded.reads == [
        ProtectedRead("Patient/123"),
        ProtectedRead("Group/abc/$export", (("Accept", "application/fhir+json"), ("Prefer", "respond-async"))),
    ]


def test_the_patient_id_is_the_default_read() -> None:
    loaded = load_config(None, {"target.patient_id": "7"}, environ={})
    assert loaded.reads == [ProtectedRead("Patient/7")]


@pytest.mark.parametrize(
    ("reads", "message"),
    [
        ('"Patient/1"', "must be a list"),
        ('["https://other.example/Patient/1"]', "relative to the FHIR base"),
        ('[{ path = "Patient/1", verb = "POST" }]', "a path or a table with path and headers"),
        ('[{ path = "Patient/1", headers = { Prefer = 1 } }]', "headers must be a table of strings"),
    ],
)
def test_bad_reads_are_configuration_errors(tmp_path: Path, reads: str, message: str) -> None:
    config = tmp_path / "target.toml"
    config.write_text(f"[target]\nreads = {reads}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(config, environ={})


def _pem() -> bytes:
    from conformance.crypto.jose import generate_rsa

    return generate_rsa().private_pem()


def test_a_read_that_answers_404_makes_its_checks_not_applicable(
    tmp_path: Path, keys_dir: Path, suite_worker: SuiteWorker
) -> None:
    key = load_key(keys_dir / "client-rs384.pem")
    with MockServer(profiles.DEFAULT.server_settings()) as server:
        server.ctx.store.put_client(Client(CLIENT_ID, jwks=jwks([key]), scopes=CLIENT_SCOPES))
        config = tmp_path / "target.toml"
        config.write_text(
            f'[target]\nbase_url = "{server.fhir_base}"\nreads = ["Patient/no-such-patient"]\n'
            f'[auth]\nclient_id = "{CLIENT_ID}"\nprivate_key = "{keys_dir}/client-rs384.pem"\n'
            'scopes = ["system/Patient.read", "system/Observation.read"]\n'
        )
        keyword = " or ".join(c.split("::")[1] for c in BEARER_CHECKS)
        _, results = run_suites(tmp_path, "--conformance-config", str(config), "-k", keyword, worker=suite_worker)
    for check in BEARER_CHECKS:
        assert results[check]["outcome"] == "not-applicable", (check, results[check])
