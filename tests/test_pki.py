"""Test PKI for UDAP: the community verifies, negative fixtures fail for the right reason, files round-trip."""

from __future__ import annotations

import base64
import random
import stat
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conformance.crypto import jose
from conformance.crypto.pki import (
    CertifiedKey,
    CommunityPki,
    PkiError,
    certificates_from_x5c,
    create_community,
    issue,
    load_anchors,
    load_certified_key,
    load_pkcs12,
    san_uris,
    verify_chain,
    write_community,
)

CLIENT_URI = "https://client.example.org/udap"
SERVER_URIS = ["https://fhir.example.org/r4", "https://fhir.example.org/r4/TENANT"]

WRITTEN_FILES = {
    "community-root.pem",
    "intermediate.pem",
    "client-cert.pem",
    "client-key.pem",
    "server-cert.pem",
    "server-key.pem",
    "expired-client-cert.pem",
    "expired-client-key.pem",
    "untrusted-root.pem",
    "untrusted-client-cert.pem",
    "untrusted-client-key.pem",
    "other-client-cert.pem",
    "other-client-key.pem",
    "README.txt",
}


@pytest.fixture(scope="module")
def pki() -> CommunityPki:
    return create_community(CLIENT_URI, SERVER_URIS)


def verify(certified: CertifiedKey, pki: CommunityPki, **kwargs: datetime) -> None:
    verify_chain(certified.certificate, list(certified.chain), pki.anchors, **kwargs)


def same(a: CertifiedKey, b: CertifiedKey) -> bool:
    """Key objects do not compare equal, so compare their serialisations."""
    return a.certificate == b.certificate and a.chain == b.chain and a.private_key_pem() == b.private_key_pem()


def der_b64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize("member", ["client", "server", "other_client"])
def test_community_leaves_verify_against_the_root(pki: CommunityPki, member: str) -> None:
    certified: CertifiedKey = getattr(pki, member)
    assert certified.chain == (pki.intermediate.certificate,)
    verify(certified, pki)


def test_certificates_have_the_shape_udap_expects(pki: CommunityPki) -> None:
    assert pki.anchors == [pki.root.certificate]
    assert pki.root.chain == () and pki.intermediate.chain == ()
    assert pki.client.san_uris() == [CLIENT_URI]
    assert pki.server.san_uris() == SERVER_URIS
    assert pki.expired_client.san_uris() == pki.untrusted_client.san_uris() == [CLIENT_URI]
    constraints = pki.intermediate.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    now = datetime.now(UTC)
    for certified in (pki.root, pki.intermediate, pki.client, pki.server, pki.other_client):
        certificate = certified.certificate
        assert isinstance(certified.private_key, rsa.RSAPrivateKey) and certified.private_key.key_size == 2048
        assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
        assert certificate.not_valid_before_utc < now - timedelta(minutes=30)
    leaf = pki.client.certificate
    assert timedelta(days=364) < leaf.not_valid_after_utc - leaf.not_valid_before_utc < timedelta(days=367)
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert not leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    server_ekus = pki.server.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in server_ekus
    assert pki.untrusted_client.certificate.issuer == pki.untrusted_root.certificate.subject


def test_expired_client_fails_with_expiry_in_the_message(pki: CommunityPki) -> None:
    assert pki.expired_client.certificate.not_valid_after_utc < datetime.now(UTC) - timedelta(hours=12)
    with pytest.raises(PkiError, match="expired on"):
        verify(pki.expired_client, pki)


def test_verification_time_is_honoured(pki: CommunityPki) -> None:
    during = pki.expired_client.certificate.not_valid_before_utc + timedelta(days=30)
    verify(pki.expired_client, pki, at=during)
    with pytest.raises(PkiError, match="not valid before"):
        verify(pki.client, pki, at=pki.client.certificate.not_valid_before_utc - timedelta(days=1))


def test_untrusted_client_fails(pki: CommunityPki) -> None:
    with pytest.raises(PkiError, match="untrusted"):
        verify(pki.untrusted_client, pki)
    with pytest.raises(PkiError, match="untrusted"):  # the community's intermediate does not help
        verify_chain(pki.untrusted_client.certificate, [pki.intermediate.certificate], pki.anchors)


def test_missing_intermediate_is_reported(pki: CommunityPki) -> None:
    with pytest.raises(PkiError, match=r"untrusted.*0 intermediate"):
        verify_chain(pki.client.certificate, [], pki.anchors)


def test_foreign_anchor_trusts_only_its_own(pki: CommunityPki) -> None:
    verify_chain(pki.untrusted_client.certificate, [], [pki.untrusted_root.certificate])
    with pytest.raises(PkiError, match="untrusted"):
        verify_chain(pki.client.certificate, list(pki.client.chain), [pki.untrusted_root.certificate])


def test_other_client_is_trusted_but_names_a_different_uri(pki: CommunityPki) -> None:
    verify(pki.other_client, pki)
    assert pki.other_client.san_uris() == [CLIENT_URI + "/other"]
    assert san_uris(pki.other_client.certificate) != san_uris(pki.client.certificate)


def test_leaves_that_cannot_sign_or_have_no_san_are_rejected(pki: CommunityPki) -> None:
    no_san = issue(pki.intermediate, common_name="no san", key=pki.client.private_key)
    with pytest.raises(PkiError, match=r"'CN=no san' was rejected: .*subjectAltName \(2\.5\.29\.17\)"):
        verify(no_san, pki)

    template = pki.client.certificate
    encipher_only = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "encipherment only")]))
        .issuer_name(template.issuer)
        .public_key(pki.client.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
        .add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(template.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, critical=False)
        .add_extension(template.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value, critical=False)
        .sign(pki.intermediate.private_key, hashes.SHA256())
    )
    with pytest.raises(PkiError, match="digitalSignature"):
        verify_chain(encipher_only, [pki.intermediate.certificate], pki.anchors)
    with pytest.raises(PkiError, match="no trust anchors"):
        verify_chain(pki.client.certificate, list(pki.client.chain), [])


def test_any_extended_key_usage_is_accepted_on_a_leaf(pki: CommunityPki) -> None:
    """UDAP leaves sign JWTs, not TLS handshakes: a serverAuth-only signing certificate still verifies."""
    for ekus in ([ExtendedKeyUsageOID.SERVER_AUTH], [ExtendedKeyUsageOID.CODE_SIGNING], []):
        leaf = issue(
            pki.intermediate,
            common_name="signer",
            san_uris=SERVER_URIS[:1],
            extended_key_usage=ekus,
            key=pki.server.private_key,
        )
        verify(leaf, pki)


def test_issue_refuses_a_leaf_as_issuer(pki: CommunityPki) -> None:
    with pytest.raises(PkiError, match="not a CA"):
        issue(pki.client, common_name="x", san_uris=["https://x"])


def test_x5c_is_standard_base64_and_round_trips(pki: CommunityPki) -> None:
    x5c = pki.client.x5c()
    assert x5c == [der_b64(pki.client.certificate), der_b64(pki.intermediate.certificate)]
    assert all("\n" not in entry and len(entry) % 4 == 0 for entry in x5c)
    assert certificates_from_x5c(x5c) == [pki.client.certificate, pki.intermediate.certificate]
    leaf, *chain = certificates_from_x5c(x5c)
    verify_chain(leaf, chain, pki.anchors)


def _x5c_variants(pki: CommunityPki) -> dict[str, tuple[object, str]]:
    der = pki.client.certificate.public_bytes(serialization.Encoding.DER)
    standard = base64.b64encode(der).decode()
    url = base64.urlsafe_b64encode(der).decode()
    assert url != standard
    pem = pki.client.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return {
        "base64url": ([standard, url], r"x5c\[1\].*base64url"),
        "pem": ([pem], r"x5c\[0\].*PEM"),
        "line breaks": (["\n".join(textwrap.wrap(standard, 64))], r"x5c\[0\].*whitespace"),
        "trailing newline": ([standard + "\n"], "whitespace"),
        "unpadded": (["YWJjZA"], "multiple of 4"),
        "bad character": (["YWJj*A=="], r"unexpected character '\*'"),
        "not a certificate": (["YWJjZA=="], "not a DER X.509 certificate"),
        "empty list": ([], "empty array"),
        "string": (standard, "must be a JSON array"),
        "object": ({"x5c": [standard]}, "must be a JSON array"),
        "null": (None, "must be a JSON array"),
        "number entry": ([standard, 42], r"x5c\[1\] must be a string"),
        "empty entry": ([""], "empty string"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "base64url",
        "pem",
        "line breaks",
        "trailing newline",
        "unpadded",
        "bad character",
        "not a certificate",
        "empty list",
        "string",
        "object",
        "null",
        "number entry",
        "empty entry",
    ],
)
def test_x5c_parsing_is_strict(pki: CommunityPki, case: str) -> None:
    value, message = _x5c_variants(pki)[case]
    with pytest.raises(PkiError, match=message):
        certificates_from_x5c(value)


def test_write_community_writes_every_file_with_private_keys_0600(pki: CommunityPki, tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    written = write_community(pki, directory)
    assert {p.name for p in written} == WRITTEN_FILES == {p.name for p in directory.iterdir()}
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.name.endswith("-key.pem"):
            assert mode == 0o600, path.name
        else:
            assert not mode & 0o022, path.name
    readme = (directory / "README.txt").read_text()
    assert 3 <= len(readme.strip().splitlines()) <= 6 and "TEST" in readme and "client-key.pem" in readme

    client = load_certified_key(directory / "client-cert.pem", directory / "client-key.pem")
    assert same(client, pki.client)
    server = load_certified_key(directory / "server-cert.pem", directory / "server-key.pem")
    anchors = load_anchors([directory / "community-root.pem"])
    assert anchors == pki.anchors
    verify_chain(client.certificate, list(client.chain), anchors)
    verify_chain(server.certificate, list(server.chain), anchors)
    assert load_anchors([directory / "intermediate.pem"]) == [pki.intermediate.certificate]
    expired = load_certified_key(directory / "expired-client-cert.pem", directory / "expired-client-key.pem")
    with pytest.raises(PkiError, match="expired"):
        verify_chain(expired.certificate, list(expired.chain), anchors)
    untrusted = load_certified_key(directory / "untrusted-client-cert.pem", directory / "untrusted-client-key.pem")
    with pytest.raises(PkiError, match="untrusted"):
        verify_chain(untrusted.certificate, list(untrusted.chain), anchors)


def test_write_community_refuses_to_overwrite(pki: CommunityPki, tmp_path: Path) -> None:
    (tmp_path / "client-key.pem").write_text("mine")
    with pytest.raises(PkiError, match=r"client-key\.pem.*refusing to overwrite"):
        write_community(pki, tmp_path)
    assert (tmp_path / "client-key.pem").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["client-key.pem"]


def test_load_certified_key_accepts_traditional_keys_and_drops_a_root(pki: CommunityPki, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(pki.client.certificate_pem() + pki.root.certificate_pem())
    key = tmp_path / "key.pem"
    key.write_bytes(
        pki.client.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    assert same(load_certified_key(cert, key), pki.client)


def test_load_certified_key_rejects_a_key_for_another_certificate(pki: CommunityPki, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(pki.client.certificate_pem())
    key = tmp_path / "key.pem"
    key.write_bytes(pki.server.private_key_pem())
    with pytest.raises(PkiError, match=r"key\.pem does not match .*cert\.pem"):
        load_certified_key(cert, key)

    key.write_bytes(pki.intermediate.private_key_pem())
    with pytest.raises(PkiError, match=r"certificate #2 in the file: put the leaf first"):
        load_certified_key(cert, key)


def test_load_certified_key_reports_unusable_files(pki: CommunityPki, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(pki.client.certificate_pem())
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        pki.client.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(PkiError, match="encrypted"):
        load_certified_key(cert, encrypted)
    with pytest.raises(PkiError, match="cannot read key file"):
        load_certified_key(cert, tmp_path / "missing.pem")
    with pytest.raises(PkiError, match="no PEM certificate"):
        load_certified_key(encrypted, encrypted)
    with pytest.raises(PkiError, match="no trust anchors"):
        load_anchors([])


@pytest.mark.parametrize("password", [None, b"community-password"])
def test_load_pkcs12_round_trips(pki: CommunityPki, tmp_path: Path, password: bytes | None) -> None:
    extra = [pki.root.certificate, pki.intermediate.certificate]
    random.Random(4).shuffle(extra)
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    bundle = pkcs12.serialize_key_and_certificates(
        b"client", pki.client.private_key, pki.client.certificate, extra, encryption
    )
    path = tmp_path / "client.p12"
    path.write_bytes(bundle)
    loaded = load_pkcs12(path, password)
    assert same(loaded, pki.client)
    verify_chain(loaded.certificate, list(loaded.chain), pki.anchors)


def test_load_pkcs12_reports_a_wrong_or_missing_password(pki: CommunityPki, tmp_path: Path) -> None:
    bundle = pkcs12.serialize_key_and_certificates(
        b"client",
        pki.client.private_key,
        pki.client.certificate,
        [pki.intermediate.certificate],
        serialization.BestAvailableEncryption(b"right"),
    )
    path = tmp_path / "client.p12"
    path.write_bytes(bundle)
    with pytest.raises(PkiError, match=r"client\.p12.*password is wrong"):
        load_pkcs12(path, b"wrong")
    with pytest.raises(PkiError, match=r"client\.p12.*password is probably needed"):
        load_pkcs12(path, None)
    keyless = tmp_path / "keyless.p12"
    keyless.write_bytes(
        pkcs12.serialize_key_and_certificates(b"x", None, pki.client.certificate, None, serialization.NoEncryption())
    )
    with pytest.raises(PkiError, match="no private key"):
        load_pkcs12(keyless, None)


def test_client_key_signs_a_jwt_pyjwt_verifies_with_the_certificate(pki: CommunityPki) -> None:
    key = pki.client.client_key()
    public = pki.client.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert key.alg == "RS256"
    assert key.kid == jose.thumbprint(jose.public_jwk(public))
    token = jose.sign({"iss": CLIENT_URI, "sub": "client-1"}, key, header={"x5c": pki.client.x5c()})
    claims = jwt.decode(token, public, algorithms=["RS256"])
    assert claims == {"iss": CLIENT_URI, "sub": "client-1"}
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == key.kid
    assert certificates_from_x5c(header["x5c"])[0] == pki.client.certificate
    with pytest.raises(PkiError, match="cannot sign ES256"):
        pki.client.client_key("ES256")
