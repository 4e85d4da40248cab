"""X.509 certificates for UDAP: a test trust community, loading real ones, and chain checks.

UDAP (HL7 FAST Security) authenticates clients and servers with certificates issued by
a trust community. `create_community` makes a throw-away community so the reference
server can sign its `signed_metadata` and trust client certificates, the suite can sign
software statements and client assertions with an `x5c` header, and negative checks
have an expired certificate and one from a foreign community to present. Users with a
real community certificate load it with `load_certified_key` or `load_pkcs12`.

Chains are judged by `cryptography.x509.verification` (never by hand); `verify_chain`
turns its errors into sentences an integration engineer can act on.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from conformance.crypto import jose

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CLOCK_SKEW = timedelta(hours=1)
CA_LIFETIME = timedelta(days=3652)
LEAF_LIFETIME = timedelta(days=365)
CA_BACKDATE = timedelta(days=3 * 365)
EXPIRED_BACKDATE = timedelta(days=730)
MAX_CHAIN_DEPTH = 8

_STANDARD_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class PkiError(ValueError):
    """A certificate or key problem; the message says what is wrong and with which file or entry."""


@dataclass(frozen=True)
class CertifiedKey:
    """A private key with its certificate and the intermediates a verifier needs (never the anchor)."""

    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    def x5c(self) -> list[str]:
        """The JOSE `x5c` header (RFC 7515 4.1.6): standard base64 DER, leaf first."""
        return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in self.certificates]

    @property
    def certificates(self) -> list[x509.Certificate]:
        return [self.certificate, *self.chain]

    def san_uris(self) -> list[str]:
        """The leaf's URI SANs; UDAP matches the client's `iss` (or server's base URL) against them."""
        return san_uris(self.certificate)

    def certificate_pem(self) -> bytes:
        """Leaf then intermediates, the order `load_certified_key` and TLS stacks expect."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates)

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def client_key(self, alg: str | None = None) -> jose.ClientKey:
        """The key as a `jose.ClientKey` so `jose.sign` can sign with it.

        `alg` defaults to RS256 for RSA keys (UDAP's default) and to the curve's ES alg for EC keys.
        """
        alg = alg or (
            "RS256" if isinstance(self.private_key, rsa.RSAPrivateKey) else jose.default_alg(self.private_key)
        )
        is_rsa_alg = alg.startswith(("RS", "PS"))
        if is_rsa_alg != isinstance(self.private_key, rsa.RSAPrivateKey):
            kind = "RSA" if isinstance(self.private_key, rsa.RSAPrivateKey) else "EC"
            raise PkiError(f"the key of {describe(self.certificate)} is {kind} and cannot sign {alg}")
        return jose.ClientKey(jose.public_jwk(self.private_key.public_key())["kid"], alg, self.private_key)


@dataclass(frozen=True)
class CommunityPki:
    """A complete test trust community plus the certificates negative checks present."""

    root: CertifiedKey
    intermediate: CertifiedKey
    client: CertifiedKey
    server: CertifiedKey
    expired_client: CertifiedKey
    untrusted_root: CertifiedKey
    untrusted_client: CertifiedKey
    other_client: CertifiedKey

    @property
    def anchors(self) -> list[x509.Certificate]:
        """The trust anchors a relying party of this community configures."""
        return [self.root.certificate]


def describe(certificate: x509.Certificate) -> str:
    """A short human name for a certificate in messages: its subject DN."""
    return f"'{certificate.subject.rfc4514_string() or '(empty subject)'}'"


def san_uris(certificate: x509.Certificate) -> list[str]:
    """The uniformResourceIdentifier entries of the certificate's SubjectAlternativeName."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value.get_values_for_type(x509.UniformResourceIdentifier))


def _now() -> datetime:
    return datetime.now(UTC)


def _is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _public_der(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def issue(
    issuer: CertifiedKey | None,
    *,
    common_name: str,
    san_uris: Sequence[str] = (),
    is_ca: bool = False,
    path_length: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key: PrivateKey | None = None,
    organization: str | None = None,
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = None,
) -> CertifiedKey:
    """Issue a certificate (self-signed when `issuer` is None) that `verify_chain` accepts.

    Defaults: a fresh RSA 2048 key, SHA-256, validity from one hour ago (clock skew) for
    10 years (CA) or 1 year (leaf). Leaves get EKU clientAuth unless `extended_key_usage`
    says otherwise (an empty sequence omits the extension). A leaf without `san_uris` is
    allowed (as a negative fixture) but fails `verify_chain`.
    """
    if issuer is not None and not _is_ca(issuer.certificate):
        raise PkiError(f"{describe(issuer.certificate)} is not a CA certificate and cannot issue {common_name!r}")
    private_key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = not_before or _now() - CLOCK_SKEW
    end = not_after or start + (CA_LIFETIME if is_ca else LEAF_LIFETIME)
    if end <= start:
        raise PkiError(
            f"{common_name!r}: not_after {end:%Y-%m-%d %H:%M} is not after not_before {start:%Y-%m-%d %H:%M}"
        )
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    subject = x509.Name(attributes)
    issuer_name = issuer.certificate.subject if issuer else subject
    signing_key = issuer.private_key if issuer else private_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    if san_uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri) for uri in san_uris]), critical=False
        )
    ekus = (
        list(extended_key_usage)
        if extended_key_usage is not None
        else ([] if is_ca else [ExtendedKeyUsageOID.CLIENT_AUTH])
    )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    certificate = builder.sign(signing_key, hashes.SHA256())
    chain: tuple[x509.Certificate, ...] = ()
    if issuer is not None:
        chain = issuer.chain if _is_self_signed(issuer.certificate) else (issuer.certificate, *issuer.chain)
    return CertifiedKey(certificate, private_key, chain)


def create_community(
    client_uri: str,
    server_uris: list[str],
    *,
    name: str = "Conformance Test Community",
    key_size: int = 2048,
) -> CommunityPki:
    """A fresh test community: root, intermediate, client and server leaves, and negative fixtures.

    `key_size` below 2048 makes certificates `verify_chain` rejects (its RSA minimum).
    """

    def new_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)

    if not server_uris:
        raise PkiError("create_community needs at least one server URI for the server certificate's SAN")
    now = _now()
    # The CAs predate the expired client (issued two years ago) so that it once was valid
    # and fails only because it expired, as a real expired certificate would.
    ca_start, ca_end = now - CA_BACKDATE, now + CA_LIFETIME
    root = issue(
        None,
        common_name=f"{name} Root CA",
        organization=name,
        is_ca=True,
        key=new_key(),
        not_before=ca_start,
        not_after=ca_end,
    )
    intermediate = issue(
        root,
        common_name=f"{name} Intermediate CA",
        organization=name,
        is_ca=True,
        path_length=0,
        key=new_key(),
        not_before=ca_start,
        not_after=ca_end,
    )
    client = issue(
        intermediate, common_name="Conformance Test Client", organization=name, san_uris=[client_uri], key=new_key()
    )
    server = issue(
        intermediate,
        common_name="Conformance Test Server",
        organization=name,
        san_uris=server_uris,
        extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        key=new_key(),
    )
    expired_client = issue(
        intermediate,
        common_name="Conformance Test Client (expired)",
        organization=name,
        san_uris=[client_uri],
        not_before=now - EXPIRED_BACKDATE,
        not_after=now - timedelta(days=1),
        key=new_key(),
    )
    foreign = "Untrusted Foreign Community"
    untrusted_root = issue(None, common_name=f"{foreign} Root CA", organization=foreign, is_ca=True, key=new_key())
    untrusted_client = issue(
        untrusted_root,
        common_name="Conformance Test Client",
        organization=foreign,
        san_uris=[client_uri],
        key=new_key(),
    )
    other_client = issue(
        intermediate,
        common_name="Conformance Test Other Client",
        organization=name,
        san_uris=[client_uri.rstrip("/") + "/other"],
        key=new_key(),
    )
    return CommunityPki(
        root=root,
        intermediate=intermediate,
        client=client,
        server=server,
        expired_client=expired_client,
        untrusted_root=untrusted_root,
        untrusted_client=untrusted_client,
        other_client=other_client,
    )


COMMUNITY_README = """\
A TEST UDAP trust community made by `conformance`: for conformance runs only, never for production.
community-root.pem is the trust anchor; intermediate.pem issued every other certificate here.
client-cert.pem (leaf + intermediate) + client-key.pem: the client; server-cert.pem + server-key.pem sign signed_metadata.
Negative fixtures: expired-client-*, untrusted-root.pem + untrusted-client-* (foreign CA), other-client-* (other SAN URI).
For a real community, replace client-cert.pem (leaf first, then intermediates) and client-key.pem with what your community
issued, and community-root.pem with its trust anchor(s); keep keys chmod 600.
"""


def write_community(pki: CommunityPki, directory: Path) -> list[Path]:
    """Write the community as PEM files (keys 0o600); refuses to overwrite anything."""
    files: list[tuple[str, bytes, bool]] = [
        ("community-root.pem", pki.root.certificate_pem(), False),
        ("intermediate.pem", pki.intermediate.certificate.public_bytes(serialization.Encoding.PEM), False),
        ("client-cert.pem", pki.client.certificate_pem(), False),
        ("client-key.pem", pki.client.private_key_pem(), True),
        ("server-cert.pem", pki.server.certificate_pem(), False),
        ("server-key.pem", pki.server.private_key_pem(), True),
        ("expired-client-cert.pem", pki.expired_client.certificate_pem(), False),
        ("expired-client-key.pem", pki.expired_client.private_key_pem(), True),
        ("untrusted-root.pem", pki.untrusted_root.certificate_pem(), False),
        ("untrusted-client-cert.pem", pki.untrusted_client.certificate_pem(), False),
        ("untrusted-client-key.pem", pki.untrusted_client.private_key_pem(), True),
        ("other-client-cert.pem", pki.other_client.certificate_pem(), False),
        ("other-client-key.pem", pki.other_client.private_key_pem(), True),
        ("README.txt", COMMUNITY_README.encode(), False),
    ]
    existing = [name for name, _, _ in files if (directory / name).exists()]
    if existing:
        raise PkiError(
            f"{directory} already holds {', '.join(existing)}; refusing to overwrite (pick an empty directory)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PkiError(f"cannot create {directory}: {exc.strerror}") from None
    written: list[Path] = []
    for name, content, secret in files:
        write_pem(directory / name, content, secret=secret)
        written.append(directory / name)
    return written


def write_pem(path: Path, content: bytes, *, secret: bool, overwrite: bool = False) -> None:
    """Write one PEM file; a private key is created 0o600, so it is never readable by others, not even briefly."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600 if secret else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        if secret:
            path.chmod(0o600)  # an existing file (overwrite) keeps its old mode otherwise
    except OSError as exc:
        raise PkiError(f"cannot write {path}: {exc.strerror}") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {what} {path}: {exc.strerror}") from None


def _load_pem_certificates(path: Path, what: str) -> list[x509.Certificate]:
    raw = _read(path, what)
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        raise PkiError(f"{path} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----' blocks)")
    try:
        return x509.load_pem_x509_certificates(raw)
    except ValueError as exc:
        raise PkiError(f"{path}: unreadable PEM certificate ({exc})") from None


def _order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """Intermediates in issuing order from the leaf up (as x5c needs), self-signed roots dropped."""
    pool = [c for c in others if not _is_self_signed(c) and c != leaf]
    ordered: list[x509.Certificate] = []
    current = leaf
    while True:
        parent = next((c for c in pool if c.subject == current.issuer and c not in ordered), None)
        if parent is None:
            break
        ordered.append(parent)
        current = parent
    return tuple(ordered + [c for c in pool if c not in ordered])


def _check_key(key: object, path: Path) -> PrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: only RSA and EC private keys are supported")
    return key


def load_certified_key(cert_path: Path, key_path: Path, *, trusted: bool = False) -> CertifiedKey:
    """A community-issued certificate (PEM: leaf first, then intermediates) and its unencrypted PEM key.

    trusted: a key this tool generated itself (the embedded-run key cache): the RSA consistency check, about 30 ms a
    key, is skipped. Never for a user's key file.
    """
    certificates = _load_pem_certificates(cert_path, "certificate file")
    raw_key = _read(key_path, "key file")
    try:
        loaded = serialization.load_pem_private_key(raw_key, password=None, unsafe_skip_rsa_key_validation=trusted)
    except TypeError:
        raise PkiError(
            f"{key_path} is encrypted; store the key unencrypted (chmod 600) or use a PKCS#12 file"
        ) from None
    except ValueError as exc:
        raise PkiError(f"{key_path} is not a PEM private key ({exc})") from None
    key = _check_key(loaded, key_path)
    leaf = certificates[0]
    public = _public_der(key.public_key())
    if _public_der(leaf.public_key()) != public:
        position = next((i for i, c in enumerate(certificates) if _public_der(c.public_key()) == public), None)
        hint = (
            f"; it matches certificate #{position + 1} in the file: put the leaf first"
            if position is not None
            else "; use the key the certificate was issued for"
        )
        raise PkiError(f"{key_path} does not match the first certificate in {cert_path} ({describe(leaf)}){hint}")
    return CertifiedKey(leaf, key, _order_chain(leaf, certificates[1:]))


def load_pkcs12(path: Path, password: bytes | None) -> CertifiedKey:
    """A PKCS#12 bundle as communities issue them: key, leaf and CA certificates (the root is dropped)."""
    raw = _read(path, "PKCS#12 file")
    try:
        bundle = pkcs12.load_pkcs12(raw, password)
    except ValueError:
        need = "a password is probably needed" if not password else "the password is wrong"
        raise PkiError(f"cannot open {path}: not a PKCS#12 file or {need}") from None
    if bundle.key is None:
        raise PkiError(f"{path} holds no private key; the bundle must include the key the certificate was issued for")
    key = _check_key(bundle.key, path)
    certificates = ([bundle.cert.certificate] if bundle.cert else []) + [c.certificate for c in bundle.additional_certs]
    public = _public_der(key.public_key())
    leaf = next((c for c in certificates if _public_der(c.public_key()) == public), None)
    if leaf is None:
        raise PkiError(f"{path} holds no certificate for its private key")
    return CertifiedKey(leaf, key, _order_chain(leaf, [c for c in certificates if c is not leaf]))


def load_anchors(paths: list[Path]) -> list[x509.Certificate]:
    """Trust anchors from PEM files (each may hold several certificates)."""
    anchors: list[x509.Certificate] = []
    for path in paths:
        anchors += _load_pem_certificates(path, "trust anchor file")
    if not anchors:
        raise PkiError("no trust anchors given: name at least one PEM file with the community's root certificate")
    return anchors


def certificates_from_x5c(x5c: object) -> list[x509.Certificate]:
    """Parse a JOSE `x5c` header strictly: a non-empty array of standard base64 DER (RFC 7515 4.1.6)."""
    if not isinstance(x5c, list):
        raise PkiError(f"x5c must be a JSON array of base64 certificates, got {type(x5c).__name__}")
    if not x5c:
        raise PkiError("x5c is an empty array; it must hold at least the signer's certificate")
    certificates = []
    for index, entry in enumerate(x5c):
        where = f"x5c[{index}]"
        if not isinstance(entry, str):
            raise PkiError(f"{where} must be a string, got {type(entry).__name__}")
        if not entry:
            raise PkiError(f"{where} is an empty string")
        if "-----BEGIN" in entry:
            raise PkiError(f"{where} is PEM text; x5c entries are bare base64 DER without '-----BEGIN' armour")
        if any(ch.isspace() for ch in entry):
            raise PkiError(f"{where} contains whitespace or line breaks; x5c entries are single-line base64")
        if "-" in entry or "_" in entry:
            raise PkiError(f"{where} uses base64url ('-' or '_'); x5c requires standard base64 (RFC 7515 4.1.6)")
        if not _STANDARD_BASE64.fullmatch(entry):
            bad = next(ch for ch in entry if not (ch.isalnum() and ch.isascii()) and ch not in "+/=")
            raise PkiError(f"{where} is not standard base64: unexpected character {bad!r} or misplaced '='")
        if len(entry) % 4:
            raise PkiError(f"{where} is not padded standard base64 (length {len(entry)} is not a multiple of 4)")
        try:
            der = base64.b64decode(entry, validate=True)
        except binascii.Error as exc:
            raise PkiError(f"{where} is not valid base64 ({exc})") from None
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise PkiError(f"{where} is base64 but not a DER X.509 certificate ({exc})") from None
    return certificates


def _ee_key_usage(_policy: Any, _certificate: x509.Certificate, value: x509.KeyUsage | None) -> None:
    """A leaf that signs JWTs must allow digitalSignature and must not be a certificate signer."""
    if value is None:
        return
    if value.key_cert_sign:
        raise ValueError("an end-entity keyUsage must not assert keyCertSign")
    if not value.digital_signature:
        raise ValueError("keyUsage does not allow digitalSignature, so this certificate cannot sign JWTs")


def udap_extension_policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """(CA policy, leaf policy) for UDAP: Web PKI rules, except that the leaf may carry any EKU.

    UDAP certificates sign JWTs rather than TLS handshakes and the IG sets no EKU, so the
    client verifier's "EKU, if present, must include clientAuth" would reject servers'
    signing certificates (serverAuth). Key usage, if present, must allow digitalSignature.
    """
    leaf = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ee_key_usage)
    )
    return ExtensionPolicy.webpki_defaults_ca(), leaf


def _validity_problem(certificates: list[x509.Certificate], at: datetime) -> str | None:
    """Which certificate is outside its validity period at `at`, for the message only."""
    for position, certificate in enumerate(certificates):
        name = "it" if position == 0 else f"its chain certificate {describe(certificate)}"
        if at > certificate.not_valid_after_utc:
            return f"{name} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
        if at < certificate.not_valid_before_utc:
            return f"{name} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC (clock skew?)"
    return None


_EXTENSION_NAMES = {
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string: "subjectAltName",
    ExtensionOID.BASIC_CONSTRAINTS.dotted_string: "basicConstraints",
    ExtensionOID.KEY_USAGE.dotted_string: "keyUsage",
    ExtensionOID.EXTENDED_KEY_USAGE.dotted_string: "extendedKeyUsage",
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string: "authorityKeyIdentifier",
    ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string: "subjectKeyIdentifier",
    ExtensionOID.NAME_CONSTRAINTS.dotted_string: "nameConstraints",
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string: "authorityInfoAccess",
}


def _reason(error: VerificationError) -> str:
    """The verifier's reason without its prefix and certificate repr, extension OIDs named."""
    text = str(error).removeprefix("validation failed: ")
    text = re.sub(r" \(encountered processing <Certificate\(.*?\)>\)", "", text)
    return re.sub(r"\b2\.5\.29\.\d+\b", lambda m: f"{_EXTENSION_NAMES.get(m[0], 'extension')} ({m[0]})", text)


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[x509.Certificate],
    *,
    at: datetime | None = None,
) -> None:
    """Check that `leaf` chains through `intermediates` to one of `anchors` at time `at` (default now).

    Uses cryptography's client verifier with `udap_extension_policies` (RSA keys of at
    least 2048 bits, SAN required, Web PKI CA rules). Raises PkiError saying why not.
    """
    if not anchors:
        raise PkiError("no trust anchors configured; cannot verify a certificate chain")
    moment = at or _now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ca_policy, ee_policy = udap_extension_policies()
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(moment)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, list(intermediates))
    except VerificationError as exc:
        reason = _reason(exc)
        subject = describe(leaf)
        if "not valid at validation time" in reason:
            detail = _validity_problem([leaf, *intermediates, *anchors], moment)
            when = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
            detail = detail or "a certificate in its chain is outside its validity period"
            raise PkiError(f"certificate {subject} is not valid at {when}: {detail}") from None
        if "candidates exhausted" in reason and "no interior errors" in reason:
            names = ", ".join(describe(a) for a in anchors)
            raise PkiError(
                f"certificate {subject} is untrusted: it does not chain (via the {len(intermediates)} intermediate(s) "
                f"given) to any trust anchor ({names}); issuer is '{leaf.issuer.rfc4514_string()}'"
            ) from None
        raise PkiError(f"certificate {subject} was rejected: {reason}") from None
