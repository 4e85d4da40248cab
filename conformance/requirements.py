"""Requirement catalogue: the IDs, levels and spec links every check carries.

IDs come from the team's catalogues in shared/reference (SBS-* for SMART Backend
Services, OAuth, Cerner and CCDE; UDAP-*/CQ-*/CERNER-* for UDAP and Carequality).
The summaries are ours. A check's verdict follows its level: a SHALL miss fails,
anything weaker warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    SHALL = "SHALL"
    SHOULD = "SHOULD"
    MAY = "MAY"
    DE_FACTO = "de-facto"

    @property
    def fails_run(self) -> bool:
        """Only SHALL misses fail; the others are reported as warnings."""
        return self is Level.SHALL


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    summary: str
    url: str


SMART = "https://hl7.org/fhir/smart-app-launch/STU2.2"
SMART_CONF = f"{SMART}/conformance.html"
SMART_BACKEND = f"{SMART}/backend-services.html"
SMART_ASYM = f"{SMART}/client-confidential-asymmetric.html"
SMART_SCOPES = f"{SMART}/scopes-and-launch-context.html"
SMART_V1_CONF = "https://hl7.org/fhir/smart-app-launch/1.0.0/conformance/index.html"
RFC6749 = "https://www.rfc-editor.org/rfc/rfc6749"
RFC6750 = "https://www.rfc-editor.org/rfc/rfc6750"
RFC7523 = "https://www.rfc-editor.org/rfc/rfc7523"
RFC7521 = "https://www.rfc-editor.org/rfc/rfc7521"
FHIR_HTTP = "https://hl7.org/fhir/R4/http.html"
FHIR_CS = "https://hl7.org/fhir/R4/capabilitystatement.html"
FHIR_OAUTH_URIS = "https://hl7.org/fhir/R4/extension-oauth-uris.html"

S, SH, M, D = Level.SHALL, Level.SHOULD, Level.MAY, Level.DE_FACTO

_ROWS: list[tuple[str, Level, str, str]] = [
    # Discovery: .well-known/smart-configuration
    (
        "SBS-DISC-01",
        S,
        "smart-configuration is served as a JSON object without a token",
        SMART_CONF + "#using-well-known",
    ),
    (
        "SBS-DISC-02",
        S,
        "smart-configuration is JSON whatever the Accept header says",
        SMART_CONF + "#using-well-known",
    ),
    ("SBS-DISC-03", S, "token_endpoint is an absolute https URL", SMART_CONF + "#metadata"),
    ("SBS-DISC-04", S, "grant_types_supported contains client_credentials", SMART_CONF + "#metadata"),
    (
        "SBS-DISC-05",
        S,
        "capabilities is an array including client-confidential-asymmetric",
        SMART_ASYM + "#advertising-server-support-for-this-profile",
    ),
    (
        "SBS-DISC-06",
        S,
        "token_endpoint_auth_methods_supported contains private_key_jwt",
        SMART_ASYM + "#advertising-server-support-for-this-profile",
    ),
    (
        "SBS-DISC-07",
        S,
        "token_endpoint_auth_signing_alg_values_supported contains RS384 or ES384",
        SMART_ASYM + "#advertising-server-support-for-this-profile",
    ),
    ("SBS-DISC-08", SH, "scopes_supported is an array of scope strings", SMART_CONF + "#metadata"),
    (
        "SBS-DISC-09",
        SH,
        "code_challenge_methods_supported holds S256 and never plain",
        SMART_CONF + "#metadata",
    ),
    (
        "SBS-DISC-10",
        S,
        "conditional fields: authorization_endpoint with launch capabilities, issuer and jwks_uri with sso-openid-connect",
        SMART_CONF + "#metadata",
    ),
    ("SBS-DISC-11", S, "optional endpoint URLs, when present, are absolute", SMART_CONF + "#metadata"),
    (
        "SBS-DISC-12",
        SH,
        "permission-v1/permission-v2 advertised to match the scope syntax accepted",
        SMART_SCOPES,
    ),
    ("SBS-DISC-13", D, "token URL in smart-configuration equals the oauth-uris token URL", SMART_V1_CONF),
    # CapabilityStatement
    (
        "SBS-CAP-01",
        S,
        "CapabilityStatement is served at /metadata without a token",
        FHIR_HTTP + "#capabilities",
    ),
    (
        "SBS-CAP-02",
        S,
        "CapabilityStatement.format lists JSON and agrees with what the server serves",
        FHIR_CS,
    ),
    (
        "SBS-CAP-03",
        S,
        "CapabilityStatement has status, date, kind, fhirVersion 4.0.x, format and a server rest entry",
        FHIR_CS,
    ),
    (
        "SBS-CAP-04",
        SH,
        "rest.security carries the oauth-uris extension with the token URL (SHALL in SMART 1.0, deprecated in 2.x)",
        FHIR_OAUTH_URIS,
    ),
    ("SBS-CAP-05", SH, "rest.security.service has the SMART-on-FHIR coding", SMART_V1_CONF),
    (
        "SBS-CAP-06",
        S,
        "oauth-uris follows ext-1: sub-extensions with url and valueUri, no value on the parent",
        FHIR_OAUTH_URIS,
    ),
    # Token success
    (
        "SBS-TOKEN-01",
        S,
        "a valid client assertion gets HTTP 200 with an access token",
        SMART_BACKEND + "#issue-access-token",
    ),
    ("SBS-TOKEN-02", S, "token responses are application/json", RFC6749 + "#section-5.1"),
    (
        "SBS-TOKEN-03",
        S,
        "token responses carry Cache-Control: no-store (and Pragma: no-cache)",
        RFC6749 + "#section-5.1",
    ),
    ("SBS-TOKEN-03P", SH, "token responses carry Pragma: no-cache", RFC6749 + "#section-5.1"),
    ("SBS-TOKEN-04", S, "access_token is a non-empty string", SMART_BACKEND + "#issue-access-token"),
    ("SBS-TOKEN-05", S, "token_type is bearer (case-insensitive)", SMART_BACKEND + "#issue-access-token"),
    ("SBS-TOKEN-06", S, "expires_in is a positive number", SMART_BACKEND + "#issue-access-token"),
    ("SBS-TOKEN-06L", SH, "expires_in SHOULD NOT exceed 300 seconds", SMART_BACKEND + "#issue-access-token"),
    (
        "SBS-TOKEN-07",
        S,
        "scope is returned, space-separated, within what was requested",
        SMART_BACKEND + "#issue-access-token",
    ),
    ("SBS-TOKEN-08", SH, "no refresh_token for client_credentials", RFC6749 + "#section-4.4.3"),
    (
        "SBS-TOKEN-09",
        S,
        "the access token reads a resource inside its scope",
        SMART_BACKEND + "#access-fhir-api",
    ),
    (
        "SBS-TOKEN-11",
        S,
        "every advertised signing algorithm (RS384, ES384) gets a token",
        SMART_ASYM + "#registering-a-client-communicating-public-keys",
    ),
    (
        "SBS-TOKEN-12",
        S,
        "a client registered by JWKS URL gets a token (jku equal to the registered URL)",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-TOKEN-13",
        S,
        "consecutive assertions with fresh jti values are all accepted",
        SMART_ASYM + "#signature-verification",
    ),
    ("SBS-TOKEN-14", S, "unknown request parameters are ignored", RFC6749 + "#section-3.2"),
    # Token errors
    ("SBS-AERR-01", S, "wrong client_assertion_type is refused", RFC7521 + "#section-4.2"),
    ("SBS-AERR-02", S, "missing client_assertion_type is refused", RFC7521 + "#section-4.2"),
    ("SBS-AERR-03", S, "missing client_assertion is refused", RFC7521 + "#section-4.2"),
    ("SBS-AERR-04", S, "an unsupported grant_type gets unsupported_grant_type", RFC6749 + "#section-5.2"),
    ("SBS-AERR-05", S, "a missing grant_type gets invalid_request", RFC6749 + "#section-5.2"),
    ("SBS-AERR-06", S, "a malformed JWT is refused with invalid_client, never a 5xx", RFC7523 + "#section-3"),
    ("SBS-AERR-07", S, "a tampered or truncated signature is refused", RFC7523 + "#section-3"),
    (
        "SBS-AERR-08",
        S,
        "an assertion signed by an unregistered key is refused",
        SMART_ASYM + "#signature-verification",
    ),
    ("SBS-AERR-09", S, "alg none is refused", RFC7523 + "#section-3"),
    (
        "SBS-AERR-10",
        S,
        "HS256 keyed with the public key (algorithm confusion) is refused",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-AERR-11",
        SH,
        "an assertion without kid is refused (key resolution needs a kid)",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-AERR-12",
        S,
        "a kid not among the client's keys is refused",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-AERR-13",
        S,
        "a kid whose key type does not match alg is refused",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-AERR-14",
        S,
        "a jku other than the registered JWKS URL is refused",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-AERR-14F",
        D,
        "the server does not fetch a jku that is not the registered JWKS URL",
        SMART_ASYM + "#signature-verification",
    ),
    ("SBS-AERR-15", S, "iss must be the client_id", RFC7523 + "#section-3"),
    ("SBS-AERR-16", S, "sub must be the client_id", RFC7523 + "#section-3"),
    ("SBS-AERR-17", S, "an assertion without sub is refused", RFC7523 + "#section-3"),
    ("SBS-AERR-18", S, "an assertion without iss is refused", RFC7523 + "#section-3"),
    ("SBS-AERR-19", S, "an aud other than the token URL is refused", RFC7523 + "#section-3"),
    ("SBS-AERR-20", S, "an assertion without aud is refused", RFC7523 + "#section-3"),
    (
        "SBS-AERR-22",
        M,
        "aud = the FHIR base URL may be accepted or refused (recorded)",
        SMART_BACKEND + "#protocol-details",
    ),
    ("SBS-AERR-23", S, "an expired assertion is refused", RFC7523 + "#section-3"),
    ("SBS-AERR-24", S, "an assertion without exp is refused", RFC7523 + "#section-3"),
    ("SBS-AERR-25", SH, "exp more than five minutes ahead is refused", SMART_BACKEND + "#protocol-details"),
    ("SBS-AERR-26", S, "nbf in the future is refused", RFC7523 + "#section-3"),
    ("SBS-AERR-26I", SH, "iat in the future is refused", RFC7523 + "#section-3"),
    (
        "SBS-AERR-27",
        S,
        "an assertion without jti is refused (replay check needs it)",
        SMART_ASYM + "#signature-verification",
    ),
    ("SBS-AERR-28", S, "a replayed jti is refused", SMART_ASYM + "#signature-verification"),
    (
        "SBS-AERR-30",
        S,
        "two client authentication methods in one request get invalid_request",
        RFC6749 + "#section-2.3",
    ),
    ("SBS-AERR-31", S, "a client_id parameter naming another client is refused", RFC7521 + "#section-4.2"),
    ("SBS-AERR-32", S, "a repeated request parameter gets invalid_request", RFC6749 + "#section-3.2"),
    ("SBS-AERR-33", D, "a JSON body instead of a form is refused (400 or 415)", RFC6749 + "#section-3.2"),
    (
        "SBS-AERR-34",
        D,
        "GET on the token endpoint never yields a token (400 or 405)",
        RFC6749 + "#section-3.2",
    ),
    (
        "SBS-NO-5XX",
        S,
        "a client's mistake is answered with a 4xx, never a 5xx (derived)",
        "https://www.rfc-editor.org/rfc/rfc9110#section-15.6",
    ),
    ("SBS-AERR-35", S, "errors are 400, or 401 only for invalid_client", RFC6749 + "#section-5.2"),
    ("SBS-AERR-36", S, "errors are JSON with an error code of allowed characters", RFC6749 + "#section-5.2"),
    ("SBS-AERR-37", SH, "errors carry error_description or error_uri", SMART_BACKEND + "#issue-access-token"),
    (
        "SBS-AERR-38",
        D,
        "error responses from the token endpoint carry Cache-Control: no-store",
        RFC6749 + "#section-5.2",
    ),
    # JWKS
    (
        "SBS-JWKS-01",
        S,
        "the server fetches the registered JWKS URL to verify assertions",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-JWKS-02",
        S,
        "a key removed from the JWKS stops working once the JWKS says so",
        SMART_ASYM + "#signature-verification",
    ),
    ("SBS-JWKS-02N", S, "a key added to the JWKS starts working", SMART_ASYM + "#signature-verification"),
    (
        "SBS-JWKS-03",
        S,
        "a JWKS with two keys sharing the kid is refused",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-JWKS-04",
        S,
        "an unreachable or broken JWKS gives invalid_client, not a 5xx",
        SMART_ASYM + "#signature-verification",
    ),
    (
        "SBS-JWKS-06",
        S,
        "clients can be registered by inline JWKS and by JWKS URL",
        SMART_ASYM + "#registering-a-client-communicating-public-keys",
    ),
    # Scopes
    (
        "SBS-SCOPE-01",
        S,
        "scopes beyond the pre-authorization are narrowed away or refused with invalid_scope",
        SMART_BACKEND + "#evaluate-requested-access",
    ),
    (
        "SBS-SCOPE-02",
        S,
        "the granted scope is returned and is never wider than requested",
        RFC6749 + "#section-3.3",
    ),
    ("SBS-SCOPE-03", S, "SMART v2 scopes (.rs) work when permission-v2 is advertised", SMART_SCOPES),
    (
        "SBS-SCOPE-04",
        SH,
        "SMART v1 scopes (.read) work and come back in v1 form when permission-v1 is advertised",
        SMART_SCOPES,
    ),
    (
        "SBS-SCOPE-06",
        S,
        "an unknown resource scope gives invalid_scope or is dropped",
        RFC6749 + "#section-5.2",
    ),
    (
        "SBS-SCOPE-07",
        SH,
        "a request without scope is refused or states its default grant",
        RFC6749 + "#section-3.3",
    ),
    (
        "SBS-SCOPE-08",
        S,
        "a comma-separated scope list is not read as several scopes",
        RFC6749 + "#section-3.3",
    ),
    (
        "SBS-SCOPE-11",
        SH,
        "offline_access does not produce a refresh token",
        SMART_BACKEND + "#enforce-authorization",
    ),
    (
        "SBS-SCOPE-13",
        S,
        "wildcard system/*.read works when advertised, stating the grant",
        SMART_CONF + "#metadata",
    ),
    (
        "SBS-SCOPE-14",
        SH,
        "a token without Observation scope cannot read Observations",
        SMART_BACKEND + "#enforce-authorization",
    ),
    # Bearer use
    (
        "SBS-BEARER-01",
        S,
        "a FHIR request without a token gets 401 with WWW-Authenticate: Bearer",
        RFC6750 + "#section-3",
    ),
    (
        "SBS-BEARER-02",
        S,
        "a garbage or tampered token gets 401 with WWW-Authenticate: Bearer",
        RFC6750 + "#section-3.1",
    ),
    ("SBS-BEARER-02E", SH, 'the 401 challenge names error="invalid_token"', RFC6750 + "#section-3.1"),
    ("SBS-BEARER-03", S, "an expired token gets 401", SMART_BACKEND + "#access-fhir-api"),
    (
        "SBS-BEARER-07",
        D,
        "the Bearer scheme name is case-insensitive",
        "https://www.rfc-editor.org/rfc/rfc7235#section-2.1",
    ),
    ("SBS-BEARER-10", SH, "FHIR error responses are OperationOutcome", FHIR_HTTP + "#2.21.0.17"),
    # Format
    (
        "SBS-FMT-01",
        S,
        "Accept: application/fhir+json gets Content-Type application/fhir+json",
        FHIR_HTTP + "#mime-type",
    ),
    ("SBS-FMT-02", SH, "Accept: application/json is served as JSON", FHIR_HTTP + "#mime-type"),
    (
        "SBS-FMT-03",
        SH,
        "_format=json is honoured and overrides Accept (servers SHOULD support _format)",
        FHIR_HTTP + "#parameters",
    ),
    ("SBS-FMT-04", SH, "a JSON-only server answers an XML request with 406", FHIR_HTTP + "#mime-type"),
    (
        "SBS-FMT-04M",
        S,
        "a response's Content-Type matches its body (no JSON labelled XML)",
        FHIR_HTTP + "#mime-type",
    ),
    ("SBS-FMT-04U", SH, "an unknown _format gets 400 or 406", FHIR_HTTP + "#parameters"),
    ("SBS-FMT-06", M, "the DSTU2 type application/json+fhir gets JSON or 406", FHIR_HTTP + "#mime-type"),
    ("SBS-FMT-07", SH, "an fhirVersion parameter on Accept is accepted", FHIR_HTTP + "#version-parameter"),
    ("SBS-FMT-09", S, "bodies are UTF-8", FHIR_HTTP + "#mime-type"),
    ("SBS-FMT-10", SH, "FHIR API errors are OperationOutcome resources", FHIR_HTTP + "#2.21.0.17"),
]

UDAP_IG = "https://hl7.org/fhir/us/udap-security/STU2"
UDAP_DISC = f"{UDAP_IG}/discovery.html"
UDAP_REG = f"{UDAP_IG}/registration.html"
UDAP_B2B = f"{UDAP_IG}/b2b.html"
UDAP_GENERAL = f"{UDAP_IG}/general.html"
UDAP_ORG_DCR = "https://www.udap.org/udap-dynamic-client-registration.html"
UDAP_ORG_AUTHN = "https://www.udap.org/udap-jwt-client-auth.html"
UDAP_ORG_META = "https://www.udap.org/udap-server-metadata.html"
CERNER_NOTES = "https://github.com/MaxPhilips/wgm_notes/blob/master/carequality/test_server_faq.md"

_ROWS += [
    # UDAP discovery
    ("UDAP-DISC-01", S, "/.well-known/udap answers 200 with a JSON object, without authentication", UDAP_DISC),
    ("UDAP-DISC-03", SH, "UDAP metadata is served as application/json", UDAP_ORG_DCR),
    ("UDAP-DISC-04", S, 'udap_versions_supported is ["1"]', UDAP_DISC),
    (
        "UDAP-DISC-05",
        S,
        "udap_profiles_supported has udap_dcr, udap_authn, and udap_authz with client_credentials",
        UDAP_DISC,
    ),
    (
        "UDAP-DISC-06",
        S,
        "udap_authorization_extensions_supported is an array with hl7-b2b (client_credentials servers)",
        UDAP_DISC,
    ),
    (
        "UDAP-DISC-07",
        S,
        "udap_authorization_extensions_required is present when extensions are supported, and a subset (STU2)",
        UDAP_DISC,
    ),
    (
        "UDAP-DISC-08",
        S,
        "udap_certifications_supported (and _required when supported is not empty) are arrays of URIs",
        UDAP_DISC,
    ),
    (
        "UDAP-DISC-10",
        S,
        "grant_types_supported is a non-empty array; refresh_token only with authorization_code",
        UDAP_DISC,
    ),
    ("UDAP-DISC-11", S, "scopes_supported is an array of strings (required by STU2)", UDAP_DISC),
    ("UDAP-DISC-13", S, "token_endpoint is an absolute URL", UDAP_DISC),
    ("UDAP-DISC-14", S, 'token_endpoint_auth_methods_supported is exactly ["private_key_jwt"]', UDAP_DISC),
    ("UDAP-DISC-15", S, "token_endpoint_auth_signing_alg_values_supported contains RS256", UDAP_DISC),
    ("UDAP-DISC-16", S, "registration_endpoint is an absolute URL", UDAP_DISC),
    (
        "UDAP-DISC-17",
        S,
        "registration_endpoint_jwt_signing_alg_values_supported contains RS256 (required by STU2)",
        UDAP_DISC,
    ),
    ("UDAP-DISC-18", S, "signed_metadata is present as a compact JWS", UDAP_DISC),
    ("UDAP-DISC-21", S, "an unknown community gets 204 or the default metadata (404 allowed in STU1.0)", UDAP_DISC),
    ("UDAP-DISC-22", D, "UDAP endpoints in the CapabilityStatement, when present, equal the metadata", UDAP_DISC),
    ("UDAP-SIG-01", S, "signed_metadata is a three-part JWS with alg and x5c in its header", UDAP_DISC),
    ("UDAP-SIG-02", S, "signed_metadata is signed RS256 (STU1.1 and later)", UDAP_DISC),
    ("UDAP-SIG-03", S, "x5c is standard base64 DER and its leaf verifies the signature", UDAP_GENERAL),
    ("UDAP-SIG-04", S, "signed_metadata iss equals the FHIR base URL exactly", UDAP_DISC),
    ("UDAP-SIG-05", S, "signed_metadata iss is a URI subjectAltName of the signing certificate", UDAP_ORG_META),
    ("UDAP-SIG-06", S, "signed_metadata sub equals iss", UDAP_DISC),
    ("UDAP-SIG-07", S, "signed_metadata has numeric iat and exp, is unexpired and lives at most a year", UDAP_DISC),
    ("UDAP-SIG-08", S, "signed_metadata has a jti", UDAP_DISC),
    ("UDAP-SIG-09", S, "signed_metadata names the token and registration endpoints", UDAP_DISC),
    ("UDAP-SIG-10", S, "signed endpoint values equal the plain metadata values", UDAP_ORG_META),
    ("UDAP-SIG-11", S, "the signing certificate chains to a trusted community anchor", UDAP_GENERAL),
    # UDAP registration
    ("UDAP-REG-01", S, "a valid software statement registers with 201 Created", UDAP_REG),
    ("UDAP-REG-02", S, "the registration response holds a client_id", UDAP_REG),
    ("UDAP-REG-03", S, "the registration response returns the software statement unchanged", UDAP_ORG_DCR),
    ("UDAP-REG-04", S, "the registration response states the registered metadata", UDAP_ORG_DCR),
    (
        "UDAP-REG-05",
        SH,
        "the registration response has no JWT claims (iss, sub, aud, exp, iat, jti) and no empty values",
        UDAP_REG,
    ),
    (
        "UDAP-REG-06",
        S,
        "the registration response is application/json",
        "https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1",
    ),
    ("UDAP-REG-07", S, "the registered certificate authenticates the client at the token endpoint", UDAP_ORG_DCR),
    (
        "UDAP-REGERR-01",
        S,
        "a software statement whose signature does not match the x5c certificate is refused",
        UDAP_ORG_DCR,
    ),
    ("UDAP-REGERR-02", S, "iss must be a URI subjectAltName of the certificate", UDAP_ORG_DCR),
    (
        "UDAP-REGERR-03",
        S,
        "a certificate from an untrusted community is refused as unapproved_software_statement",
        UDAP_ORG_DCR,
    ),
    ("UDAP-REGERR-04", S, "an expired certificate is refused", UDAP_ORG_DCR),
    ("UDAP-REGERR-05", S, "sub must equal iss", UDAP_ORG_DCR),
    ("UDAP-REGERR-06", S, "aud must be the registration endpoint", UDAP_ORG_DCR),
    ("UDAP-REGERR-07", S, "an expired software statement, or one without exp, is refused", UDAP_ORG_DCR),
    ("UDAP-REGERR-08", SH, "a software statement living longer than five minutes is refused", UDAP_ORG_DCR),
    ("UDAP-REGERR-09", SH, "a software statement issued in the future is refused", UDAP_ORG_DCR),
    ("UDAP-REGERR-11", S, "a software statement without a usable x5c is refused", UDAP_GENERAL),
    ("UDAP-REGERR-12", S, "alg none or HS256 software statements are refused", UDAP_GENERAL),
    ("UDAP-REGERR-13", S, "missing or unsupported client metadata is refused as invalid_client_metadata", UDAP_REG),
    ("UDAP-REGERR-14", SH, "contacts must hold a mailto: URI", UDAP_REG),
    ("UDAP-REGERR-15", SH, "a registration asking only for unsupported scopes is refused", UDAP_REG),
    (
        "UDAP-REGERR-16",
        S,
        "a body that is not the registration JSON is refused",
        "https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2",
    ),
    ("UDAP-REGERR-19", SH, 'a registration without udap "1" is refused', UDAP_ORG_DCR),
    (
        "UDAP-REGERR-20",
        S,
        "a refused registration is a 400 (or 415) without a client_id",
        "https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2",
    ),
    ("UDAP-MOD-01", S, "registering the same iss again is a modification (SHOULD keep the client_id)", UDAP_REG),
    ("UDAP-MOD-04", S, "grant_types [] cancels the registration; the client_id then stops working", UDAP_REG),
    # UDAP token
    ("UDAP-TOK-01", S, "an x5c client assertion of a registered client gets a Bearer token", UDAP_B2B),
    ("UDAP-TOK-02", S, "token responses carry Cache-Control: no-store and Pragma: no-cache", RFC6749 + "#section-5.1"),
    ("UDAP-TOK-03", S, "access tokens live at most 60 minutes", UDAP_B2B),
    ("UDAP-TOK-04", S, "the token response states the granted scope", UDAP_GENERAL),
    ("UDAP-TOK-06", S, "an assertion from an untrusted or expired certificate is refused", UDAP_ORG_AUTHN),
    (
        "UDAP-TOK-07",
        S,
        "a trusted certificate with another SAN cannot authenticate the registered client",
        UDAP_ORG_AUTHN,
    ),
    ("UDAP-TOK-08", S, "iss and sub must be the registered client_id", UDAP_ORG_AUTHN),
    ("UDAP-TOK-10", S, "aud must be the token endpoint exactly", UDAP_ORG_AUTHN),
    ("UDAP-TOK-11", S, "an expired assertion is refused", UDAP_ORG_AUTHN),
    ("UDAP-TOK-11L", SH, "an assertion living longer than five minutes is refused", UDAP_ORG_AUTHN),
    ("UDAP-TOK-13", S, "an assertion without x5c, or with alg none, is refused", UDAP_GENERAL),
    ("UDAP-TOK-14", S, "the server verifies with the x5c certificate only, never a jwk in the header", UDAP_GENERAL),
    ("UDAP-TOK-16", S, "a missing assertion or wrong client_assertion_type is refused", RFC6749 + "#section-5.2"),
    ("UDAP-TOK-22", SH, "no refresh_token for client_credentials", RFC6749 + "#section-4.4.3"),
    ("UDAP-TOK-23", S, "the UDAP access token reads the patient; no token gets 401", FHIR_HTTP),
    ("UDAP-B2B-03", S, "hl7-b2b is required when the metadata says so: without it, invalid_grant", UDAP_B2B),
    ("UDAP-B2B-04", SH, "a malformed hl7-b2b object is refused with invalid_grant", UDAP_B2B),
    # Carequality on Cerner
    # Vendor rows: SHALL within the cerner-carequality profile, which exists to check them.
    ("CERNER-02", S, "the CapabilityStatement advertises the Carequality token and register URLs", CERNER_NOTES),
    ("CERNER-05", S, "the Carequality endpoints are absolute https URLs on the FHIR host", CERNER_NOTES),
    (
        "CERNER-06",
        S,
        'registration accepts application/json and application/fhir+json, and udap as 1 or "1"',
        CERNER_NOTES,
    ),
    ("CERNER-09", S, "FHIR reads must ask for JSON: without Accept or _format they are refused", CERNER_NOTES),
    ("CERNER-09J", S, "FHIR reads that ask for JSON (Accept or _format) are served", CERNER_NOTES),
]

CERNER_AUTH = "https://fhir.cerner.com/authorization/"
CERNER_R4 = "https://fhir.cerner.com/millennium/r4/"
_ROWS += [
    # Cerner system accounts (client_secret_basic); vendor rows are SHALL within the client-secret profile.
    (
        "SBS-BASIC-01",
        S,
        "HTTP Basic client authentication (client_secret_basic) gets a token",
        RFC6749 + "#section-2.3.1",
    ),
    ("SBS-BASIC-01D", S, "discovery advertises client_secret_basic and a token URL on this tenant", CERNER_AUTH),
    (
        "SBS-BASIC-02",
        S,
        "a wrong secret gets 401 invalid_client with WWW-Authenticate: Basic",
        RFC6749 + "#section-5.2",
    ),
    ("SBS-BASIC-03", S, "a malformed Basic header gets 401 invalid_client", RFC6749 + "#section-5.2"),
    ("SBS-BASIC-04", S, "an unknown client id gets 401 invalid_client", RFC6749 + "#section-5.2"),
    ("SBS-BASIC-05", S, "a request without credentials gets invalid_client", RFC6749 + "#section-5.2"),
    (
        "SBS-BASIC-07",
        S,
        "credentials are form-urlencoded before base64 (secrets with ':', '+', '%', non-ASCII)",
        RFC6749 + "#section-2.3.1",
    ),
    ("SBS-BASIC-08", S, "client_secret_post is refused when it is not advertised", RFC6749 + "#section-2.3.1"),
    ("SBS-BASIC-09", S, "a Basic header plus client_secret in the body gets invalid_request", RFC6749 + "#section-2.3"),
    (
        "SBS-BASIC-10",
        D,
        "the Basic scheme name is case-insensitive",
        "https://www.rfc-editor.org/rfc/rfc7235#section-2.1",
    ),
    ("SBS-BASIC-11", S, "a client cannot get tokens from another tenant's token URL", CERNER_AUTH),
    (
        "SBS-BASIC-12",
        D,
        "token errors carry an error_uri with a reason code and a Cerner-Correlation-Id header",
        CERNER_AUTH,
    ),
    ("SBS-BEARER-08", S, "a token of one tenant cannot read another tenant", CERNER_R4),
    ("SBS-TOKEN-09R", S, "an access token can be reused until it expires", SMART_BACKEND + "#access-fhir-api"),
    ("SBS-FMT-04C", S, "Cerner: a FHIR read that does not ask for JSON gets 406", CERNER_R4),
    ("SBS-SCOPE-12", S, "a request for only unauthorized scopes is refused or granted nothing", SMART_SCOPES),
]

CCDE_WIKI = "https://confluence.hl7.org/display/FHIR/201709+Consumer+Centered+Data+Exchange"
_ROWS += [
    # CCDE (test.fhir.org); de-facto rows, SHALL within the ccde profile, which exists to check them.
    ("SBS-CCDE-01", S, "$jwt?source= returns the server's JWT as application/jwt", CCDE_WIKI),
    ("SBS-CCDE-01E", S, "$jwt without source is refused with an OperationOutcome", CCDE_WIKI),
    ("SBS-CCDE-02", S, "a valid Consent is created (201 with an id)", CCDE_WIKI),
    ("SBS-CCDE-02E", S, "a Consent for a patient that does not exist is refused", CCDE_WIKI),
    ("SBS-CCDE-03", S, "$authorize with duration and jwt returns Parameters with the authorization id", CCDE_WIKI),
    (
        "SBS-CCDE-03E",
        S,
        "$authorize refuses an unknown consent, malformed Parameters and a JWT it did not issue",
        CCDE_WIKI,
    ),
    ("SBS-CCDE-04", S, "$connect answers with an OperationOutcome accepting the connection", CCDE_WIKI),
    (
        "SBS-CCDE-05",
        S,
        "the token endpoint exchanges the authorized Bearer JWT for a token naming the patient",
        CCDE_WIKI,
    ),
    (
        "SBS-CCDE-05E",
        S,
        "token requests with a missing or wrong JWT or authorization are refused (RFC 6749 400/401)",
        RFC6749 + "#section-5.2",
    ),
    ("SBS-CCDE-06", S, "a CCDE token reads its patient and no other", CCDE_WIKI),
    ("SBS-CCDE-07", S, "a CCDE token stops working when the authorization's duration ends", CCDE_WIKI),
    ("SBS-CCDE-08", S, "a CCDE token stops working when the consent is revoked", CCDE_WIKI),
]

CATALOGUE: dict[str, Requirement] = {rid: Requirement(rid, level, summary, url) for rid, level, summary, url in _ROWS}


def lookup(requirement_id: str) -> Requirement:
    """Return the catalogue row; an unknown ID is a programming error in a suite."""
    try:
        return CATALOGUE[requirement_id]
    except KeyError:
        raise KeyError(f"unknown requirement id {requirement_id!r}; add it to conformance/requirements.py") from None


def register(rows: list[tuple[str, Level, str, str]]) -> None:
    """Add catalogue rows (profile modules call this for their own requirement IDs)."""
    for rid, level, summary, url in rows:
        CATALOGUE[rid] = Requirement(rid, level, summary, url)
