"""Target configuration: precedence, validation and error messages that name the option and its origin."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.crypto.jose import generate_ec, generate_rsa
from conformance.runner.configuration import ConfigError, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def rsa_pem(tmp_path: Path) -> Path:
    return write(tmp_path / "client.pem", generate_rsa().private_pem().decode())


def test_no_target_means_the_embedded_server() -> None:
    config = load_config(environ={})
    assert config.embedded
    assert config.profile == "smart-backend"


def test_file_values_are_read_and_paths_resolve_next_to_the_file(tmp_path: Path, rsa_pem: Path) -> None:
    toml = write(
        tmp_path / "target.toml",
        '[target]\nbase_url = "https://fhir.example.org/r4/"\npatient_id = "42"\n'
        '[auth]\nclient_id = "abc"\nprivate_key = "client.pem"\nscopes = ["system/Patient.read"]\n'
        "[http]\ntimeout = 3\n",
    )
    config = load_config(toml, environ={})
    assert config.base_url == "https://fhir.example.org/r4"
    assert config.client_id == "abc"
    assert config.keys[0].alg == "RS384"
    assert config.timeout == 3.0
    assert config.patient_id == "42"


def test_flags_override_environment_which_overrides_the_file(tmp_path: Path, rsa_pem: Path) -> None:
    toml = write(
        tmp_path / "t.toml",
        f'[target]\nbase_url = "https://file.example"\n[auth]\nclient_id = "from-file"\nprivate_key = "{rsa_pem}"\n',
    )
    env = {"CONFORMANCE_CLIENT_ID": "from-env", "CONFORMANCE_TARGET_URL": "https://env.example"}
    config = load_config(toml, {"target.base_url": "https://flag.example"}, environ=env)
    assert config.base_url == "https://flag.example"
    assert config.client_id == "from-env"


def test_missing_key_file_names_the_option_and_the_file(tmp_path: Path) -> None:
    toml = write(
        tmp_path / "target.toml",
        '[target]\nbase_url = "https://x.example"\n[auth]\nclient_id = "c"\nprivate_key = "./key.pem"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_config(toml, environ={})
    message = str(err.value)
    assert "private key file ./key.pem" in message
    assert "does not exist" in message
    assert f"auth.private_key in {toml}" in message


def test_unknown_option_suggests_the_right_one(tmp_path: Path) -> None:
    toml = write(tmp_path / "t.toml", '[target]\nbse_url = "https://x.example"\n')
    with pytest.raises(ConfigError, match=r"unknown option target.bse_url .*did you mean target.base_url\?"):
        load_config(toml, environ={})


def test_secrets_are_refused_in_the_config_file(tmp_path: Path) -> None:
    toml = write(tmp_path / "t.toml", '[auth]\nclient_secret = "hunter2"\n')
    with pytest.raises(ConfigError, match="client_secret_env"):
        load_config(toml, environ={})


def test_client_secret_comes_from_the_named_environment_variable(tmp_path: Path) -> None:
    toml = write(
        tmp_path / "t.toml",
        '[target]\nbase_url = "https://x.example"\nprofile = "client-secret"\n'
        '[auth]\nclient_id = "c"\nclient_secret_env = "MY_SECRET"\n',
    )
    config = load_config(toml, environ={"MY_SECRET": "s3cr3t:+%"})
    assert config.client_secret == "s3cr3t:+%"
    assert "s3cr3t" not in repr(config)


def test_client_secret_from_a_file(tmp_path: Path) -> None:
    write(tmp_path / "secret.txt", "file-secret\n")
    toml = write(
        tmp_path / "t.toml",
        '[target]\nbase_url = "https://x.example"\nprofile = "client-secret"\n'
        '[auth]\nclient_id = "c"\nclient_secret_file = "secret.txt"\n',
    )
    assert load_config(toml, environ={}).client_secret == "file-secret"


def test_client_secret_profile_without_a_secret_is_an_error(tmp_path: Path) -> None:
    toml = write(
        tmp_path / "t.toml",
        '[target]\nbase_url = "https://x.example"\nprofile = "client-secret"\n[auth]\nclient_id = "c"\n',
    )
    with pytest.raises(ConfigError, match="CONFORMANCE_CLIENT_SECRET"):
        load_config(toml, environ={})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"target.base_url": "fhir.example.org"}, "must be an absolute http"),
        ({"target.profile": "oauth1"}, "must be one of"),
        ({"http.timeout": "soon"}, "must be a number"),
        ({"http.verify_tls": "maybe"}, "must be true or false"),
        ({"http.timeout": 0}, "between 0.1 and 600 seconds"),
    ],
)
def test_bad_values_are_explained(override: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, override, environ={})


def test_smart_backend_target_needs_client_id_and_key() -> None:
    with pytest.raises(ConfigError, match=r"auth\.client_id is required"):
        load_config(None, {"target.base_url": "https://x.example"}, environ={})
    with pytest.raises(ConfigError, match="needs at least one private key"):
        load_config(None, {"target.base_url": "https://x.example", "auth.client_id": "c"}, environ={})


def test_jwk_keys_and_several_keys(tmp_path: Path) -> None:
    import json

    from conformance.crypto.jose import private_jwk

    ec = generate_ec()
    jwk = {**private_jwk(ec.private_key), "kid": "my-ec"}
    write(tmp_path / "ec.jwk", json.dumps(jwk))
    write(tmp_path / "rsa.pem", generate_rsa().private_pem().decode())
    toml = write(
        tmp_path / "t.toml",
        '[target]\nbase_url = "https://x.example"\n[auth]\nclient_id = "c"\nprivate_keys = ["rsa.pem", "ec.jwk"]\n',
    )
    config = load_config(toml, environ={})
    assert [k.alg for k in config.keys] == ["RS384", "ES384"]
    assert config.key_for("ES384") is not None and config.key_for("ES384").kid == "my-ec"  # type: ignore[union-attr]


def test_not_a_key_is_explained(tmp_path: Path) -> None:
    write(tmp_path / "bad.pem", "hello")
    with pytest.raises(ConfigError, match=r"not a PEM private key .*auth.private_key"):
        load_config(
            None,
            {
                "target.base_url": "https://x.example",
                "auth.client_id": "c",
                "auth.private_key": str(tmp_path / "bad.pem"),
            },
            environ={},
        )


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    toml = write(tmp_path / "t.toml", "[target\n")
    with pytest.raises(ConfigError, match=f"{toml} is not valid TOML"):
        load_config(toml, environ={})


def test_environment_variables_are_substituted_in_file_values(tmp_path: Path, rsa_pem: Path) -> None:
    toml = write(
        tmp_path / "target.toml",
        '[target]\nbase_url = "https://${STAGING_HOST}/r4"\n'
        '[auth]\nclient_id = "${CLIENT}"\nprivate_key = "client.pem"\nscopes = ["system/${TYPE}.read"]\n'
        '[http]\nproxy = "none"\nsecret_headers = ["X-Cost$$Center"]\n',
    )
    config = load_config(toml, environ={"STAGING_HOST": "stage.example.org", "CLIENT": "c-1", "TYPE": "Patient"})
    assert config.base_url == "https://stage.example.org/r4"
    assert config.client_id == "c-1"
    assert config.scopes == ["system/Patient.read"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "https://${MISSING}/r4",
            "target.base_url in {path} uses ${MISSING}, but environment variable MISSING is not set",
        ),
        ("https://${not a name}/r4", "target.base_url in {path}: ${not a name} is not an environment variable name"),
    ],
)
def test_a_substitution_that_cannot_be_made_names_the_option_and_the_variable(
    tmp_path: Path, value: str, message: str
) -> None:
    toml = write(tmp_path / "target.toml", f'[target]\nbase_url = "{value}"\n')
    with pytest.raises(ConfigError) as error:
        load_config(toml, environ={})
    assert str(error.value) == message.replace("{path}", str(toml))


def test_substituted_header_values_are_masked_like_secrets(tmp_path: Path) -> None:
    toml = write(
        tmp_path / "target.toml",
        '[target]\nreads = [{ path = "Patient/1", headers = { X-Read-Key = "${READ_KEY}" } }]\n'
        '[http]\nheaders = { X-Gateway-Token = "${GW_TOKEN}", X-Team = "fhir" }\nsecret_headers = ["X-Other"]\n',
    )
    config = load_config(toml, environ={"GW_TOKEN": "gw-secret-value", "READ_KEY": "read-secret"})
    assert config.headers["X-Gateway-Token"] == "gw-secret-value"
    assert dict(config.reads[0].headers)["X-Read-Key"] == "read-secret"
    assert sorted(config.secret_headers) == ["X-Gateway-Token", "X-Other", "X-Read-Key"]
