"""The documented example configuration stays valid."""

from __future__ import annotations

from pathlib import Path

from conformance.crypto.jose import generate_ec, generate_rsa
from conformance.runner.configuration import load_config
from tests.conftest import ROOT


def test_example_config_loads_once_its_keys_exist(tmp_path: Path) -> None:
    text = (ROOT / "examples/target.example.toml").read_text()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/client-rs384.pem").write_bytes(generate_rsa().private_pem())
    (tmp_path / "keys/client-es384.pem").write_bytes(generate_ec().private_pem())
    (tmp_path / "target.toml").write_text(text)
    config = load_config(tmp_path / "target.toml", environ={})
    assert config.profile == "smart-backend"
    assert [k.alg for k in config.keys] == ["RS384", "ES384"]
