"""The embedded run for the UDAP profiles: a test trust community, the server's certificate, the client's identity.

The community (CAs and client certificates) is generated once, or loaded from
the keys directory; the server's signing certificate is issued for each run,
since its SAN must be the base URL, port included.
"""

from __future__ import annotations

from pathlib import Path

from conformance.config import UdapConfig
from conformance.pki import CertifiedKey, create_community, issue, load_certified_key, write_pem

CLIENT_URI = "https://conformance.example.org/client"
COMMUNITY = "urn:conformance:test-community"
MEMBERS = ("root", "intermediate", "client", "other", "lifecycle", "expired", "untrusted_root", "untrusted")


def _save(directory: Path, members: dict[str, CertifiedKey]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, certified in members.items():
        write_pem(directory / f"{name}-cert.pem", certified.certificate_pem(), secret=False, overwrite=True)
        write_pem(directory / f"{name}-key.pem", certified.private_key_pem(), secret=True, overwrite=True)


def community(directory: Path | None = None) -> dict[str, CertifiedKey]:
    """The test community's members, loaded from `directory` when all are there, else made (and saved)."""
    if directory is not None and all((directory / f"{m}-cert.pem").exists() for m in MEMBERS):
        return {m: load_certified_key(directory / f"{m}-cert.pem", directory / f"{m}-key.pem") for m in MEMBERS}
    pki = create_community(CLIENT_URI, ["http://127.0.0.1/fhir"])
    members = {
        "root": pki.root,
        "intermediate": pki.intermediate,
        "client": pki.client,
        "other": pki.other_client,
        "lifecycle": issue(
            pki.intermediate, common_name="conformance lifecycle client", san_uris=[f"{CLIENT_URI}/lifecycle"]
        ),
        "expired": pki.expired_client,
        "untrusted_root": pki.untrusted_root,
        "untrusted": pki.untrusted_client,
    }
    if directory is not None:
        _save(directory, members)
    return members


def server_certificate(members: dict[str, CertifiedKey], fhir_base: str) -> CertifiedKey:
    """The certificate that signs this run's signed_metadata: its SAN is the base URL exactly."""
    return issue(members["intermediate"], common_name="conformance reference server", san_uris=[fhir_base])


def client_identity(members: dict[str, CertifiedKey]) -> UdapConfig:
    return UdapConfig(
        client=members["client"],
        anchors=[members["root"].certificate],
        client_uri=CLIENT_URI,
        community=COMMUNITY,
        organization_id="https://conformance.example.org/organization/1",
        organization_name="Conformance Test Organization",
        registration="new",
        fixtures={name: members[name] for name in ("other", "lifecycle", "expired", "untrusted")},
    )
