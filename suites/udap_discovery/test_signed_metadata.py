"""signed_metadata: who signed it, how, for whom, for how long, and whether it agrees with the plain metadata.

Details a naive suite misses: RS256 only; iss equal to the base URL with no
normalisation and a SAN URI of the certificate; sub = iss; at most a year of
life; x5c in standard base64; the signed endpoint values equal the plain ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import UdapConfig
from conformance.core.outcomes import note
from conformance.core.recording import Exchange
from conformance.crypto.pki import PkiError, san_uris, verify_chain
from conformance.flows import udap
from conformance.flows.target import Target

ONE_YEAR = 365 * 86400


@pytest.fixture(scope="module")
def signed(udap_metadata: dict[str, Any]) -> udap.SignedJwt:
    value = udap_metadata.get("signed_metadata")
    expect.precondition(isinstance(value, str), "no signed_metadata to check")
    try:
        return udap.read_signed_jwt(str(value))
    except ValueError as exc:
        raise expect.PreconditionFailed(f"signed_metadata is not a compact JWS: {exc}") from None


@pytest.mark.requirement("UDAP-SIG-01")
def test_is_a_jws_with_alg_and_x5c(udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange) -> None:
    value = udap_metadata.get("signed_metadata")
    expect.precondition(isinstance(value, str), "no signed_metadata")
    try:
        header = udap.read_signed_jwt(str(value)).header
    except ValueError as exc:
        expect.fail(
            "signed_metadata is not a compact JWS",
            expected="header.claims.signature",
            actual=str(exc),
            exchange=udap_metadata_exchange,
        )
    missing = [m for m in ("alg", "x5c") if m not in header]
    if missing or header.get("alg") == "none":
        expect.fail(
            "the signed_metadata header lacks alg/x5c or is unsigned",
            expected="alg (not none) and x5c",
            actual=expect.short_json(header),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-02")
def test_is_signed_rs256(signed: udap.SignedJwt, udap_metadata_exchange: Exchange, udap_config: UdapConfig) -> None:
    alg = signed.header.get("alg")
    if alg != "RS256":
        if udap_config.version == "STU1.0":
            note("alg", f"{alg} (RS256 became a SHALL in STU1.1)")
            return
        expect.fail(
            "signed_metadata must be signed RS256",
            expected="alg RS256",
            actual=f"alg {alg}",
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-03")
def test_x5c_leaf_verifies_the_signature(signed: udap.SignedJwt, udap_metadata_exchange: Exchange) -> None:
    if signed.x5c_problem:
        expect.fail(
            "x5c is not standard base64 DER certificates",
            expected="standard base64 (not base64url, not PEM)",
            actual=signed.x5c_problem,
            exchange=udap_metadata_exchange,
        )
    if signed.signature_problem:
        expect.fail(
            "the x5c leaf does not verify the signature",
            expected="a valid signature",
            actual=signed.signature_problem,
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-04")
def test_iss_is_the_base_url_exactly(signed: udap.SignedJwt, target: Target, udap_metadata_exchange: Exchange) -> None:
    if signed.claims.get("iss") != target.base_url:
        expect.fail(
            "signed_metadata iss is not the FHIR base URL the client used (no normalisation is allowed)",
            expected=target.base_url,
            actual=repr(signed.claims.get("iss")),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-05")
def test_iss_is_a_san_of_the_certificate(signed: udap.SignedJwt, udap_metadata_exchange: Exchange) -> None:
    expect.precondition(signed.certificates, "no usable x5c certificate")
    sans = san_uris(signed.certificates[0])
    if signed.claims.get("iss") not in sans:
        expect.fail(
            "signed_metadata iss is not a URI SAN of the signing certificate",
            expected=f"one of {sans}",
            actual=repr(signed.claims.get("iss")),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-06")
def test_sub_equals_iss(signed: udap.SignedJwt, udap_metadata_exchange: Exchange) -> None:
    if signed.claims.get("sub") != signed.claims.get("iss"):
        expect.fail(
            "signed_metadata sub differs from iss",
            expected=repr(signed.claims.get("iss")),
            actual=repr(signed.claims.get("sub")),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-07")
def test_lifetime_is_current_and_at_most_a_year(signed: udap.SignedJwt, udap_metadata_exchange: Exchange) -> None:
    iat, exp = signed.claims.get("iat"), signed.claims.get("exp")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp)):
        expect.fail(
            "iat and exp must be NumericDates",
            expected="numbers",
            actual=f"iat {iat!r}, exp {exp!r}",
            exchange=udap_metadata_exchange,
        )
    assert isinstance(iat, int | float) and isinstance(exp, int | float)
    now = datetime.now(UTC).timestamp()
    if exp <= now - 30:
        expect.fail(
            "signed_metadata has expired",
            expected="exp in the future",
            actual=f"expired {int(now - exp)} s ago",
            exchange=udap_metadata_exchange,
        )
    if exp - iat > ONE_YEAR:
        expect.fail(
            "signed_metadata lives longer than a year",
            expected="exp - iat ≤ 1 year",
            actual=f"{(exp - iat) / 86400:.0f} days",
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-08")
def test_has_a_jti(signed: udap.SignedJwt, udap_metadata_exchange: Exchange) -> None:
    if not isinstance(signed.claims.get("jti"), str) or not signed.claims["jti"]:
        expect.fail(
            "signed_metadata has no jti",
            expected="a jti string",
            actual=repr(signed.claims.get("jti")),
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-09")
def test_names_the_endpoints(
    signed: udap.SignedJwt, udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange
) -> None:
    wanted = ["token_endpoint", "registration_endpoint"] + (
        ["authorization_endpoint"] if "authorization_endpoint" in udap_metadata else []
    )
    missing = [m for m in wanted if not isinstance(signed.claims.get(m), str)]
    if missing:
        expect.fail(
            "signed_metadata lacks endpoint claims",
            expected=", ".join(wanted),
            actual=f"missing {', '.join(missing)}",
            exchange=udap_metadata_exchange,
        )


@pytest.mark.requirement("UDAP-SIG-10")
def test_signed_endpoints_equal_plain_ones(
    signed: udap.SignedJwt, udap_metadata: dict[str, Any], udap_metadata_exchange: Exchange
) -> None:
    for member in ("token_endpoint", "registration_endpoint", "authorization_endpoint"):
        present = member in udap_metadata or member in signed.claims
        if present and signed.claims.get(member) != udap_metadata.get(member):
            expect.fail(
                f"the signed {member} differs from the plain one (a conforming client must abort)",
                expected=repr(udap_metadata.get(member)),
                actual=repr(signed.claims.get(member)),
                exchange=udap_metadata_exchange,
            )


@pytest.mark.requirement("UDAP-SIG-11")
def test_signer_chains_to_a_trust_anchor(
    signed: udap.SignedJwt, udap_config: UdapConfig, udap_metadata_exchange: Exchange
) -> None:
    expect.precondition(signed.certificates, "no usable x5c certificate")
    expect.applicable(udap_config.anchors, "no trust anchors are configured (udap.trust_anchors)")
    try:
        verify_chain(signed.certificates[0], signed.certificates[1:], udap_config.anchors)
    except PkiError as exc:
        expect.fail(
            "the signed_metadata certificate is not trusted",
            expected="a chain to a configured anchor",
            actual=str(exc),
            exchange=udap_metadata_exchange,
        )
