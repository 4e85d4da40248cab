"""Consumer-Centered Data Exchange flows (HL7 2017 track, test.fhir.org): consent, authorization, token."""

from __future__ import annotations

from typing import Any

from conformance.core.recording import Exchange, HttpRecorder

SIMPLE_OAUTH = "http://hl7.org/fhir/ConsentDefinition/simple-oauth"
UCUM = "http://unitsofmeasure.org"


def get_jwt(http: HttpRecorder, base: str, source: str | None, *, purpose: str = "") -> Exchange:
    params = {"source": source} if source is not None else None
    return http.request("GET", f"{base}/$jwt", purpose=purpose or "get the target's JWT ($jwt)", params=params)


def connect(http: HttpRecorder, base: str, *, source: str, jwt: str, patient: str, consent: str = "") -> Exchange:
    form = [("source", source), ("consent", consent), ("expires_in", "3600"), ("patient", patient), ("jwt", jwt)]
    return http.request(
        "POST",
        f"{base}/$connect",
        purpose="start a connection ($connect)",
        form=form,
        headers={"Accept": "application/fhir+json"},
    )


def consent_resource(patient_id: str, **overrides: Any) -> dict[str, Any]:
    """A Consent as the CCDE track described it: active, the patient's, simple-oauth, permit access, user/*.*."""
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {
            "coding": [
                {"system": "http://hl7.org/fhir/ConsentDefinition", "code": "simple-oauth", "display": SIMPLE_OAUTH}
            ]
        },
        "provision": {
            "type": "permit",
            "action": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}
            ],
            "purpose": [{"system": "http://smarthealthit.org/fhir/scopes", "code": "user/*.*"}],
        },
    }
    for name, value in overrides.items():
        if value is None:
            consent.pop(name, None)
        else:
            consent[name] = value
    return consent


def post_consent(http: HttpRecorder, base: str, consent: dict[str, Any], *, purpose: str = "") -> Exchange:
    return http.request(
        "POST",
        f"{base}/Consent",
        purpose=purpose or "record the patient's consent",
        json_body=consent,
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )


def authorize_parameters(jwt: str | None, *, value: float = 3, unit: str = "mo") -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "duration", "valueDuration": {"value": value, "unit": unit, "system": UCUM, "code": unit}}
    ]
    if jwt is not None:
        parameters.append({"name": "jwt", "valueString": jwt})
    return {"resourceType": "Parameters", "parameter": parameters}


def authorize(http: HttpRecorder, base: str, consent_id: str, body: Any, *, purpose: str = "") -> Exchange:
    return http.request(
        "POST",
        f"{base}/Consent/{consent_id}/$authorize",
        purpose=purpose or "authorize the target ($authorize)",
        json_body=body,
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )


def consent_id_of(exchange: Exchange) -> str | None:
    body = exchange.json_object() or {}
    if isinstance(body.get("id"), str):
        return str(body["id"])
    location = exchange.response_header("location") or ""
    parts = location.rstrip("/").split("/")
    return parts[parts.index("Consent") + 1] if "Consent" in parts and parts.index("Consent") + 1 < len(parts) else None


def authorization_id_of(exchange: Exchange) -> str | None:
    for parameter in (exchange.json_object() or {}).get("parameter") or []:
        if isinstance(parameter, dict) and parameter.get("name") == "id":
            value = parameter.get("valueString") or parameter.get("valueId")
            return str(value) if value else None
    return None


def request_token(
    http: HttpRecorder, token_url: str, jwt: str | None, authorization_id: str, *, purpose: str = ""
) -> Exchange:
    headers = {"Accept": "application/json"}
    if jwt is not None:
        headers["Authorization"] = f"Bearer {jwt}"
    return http.request(
        "POST",
        token_url,
        purpose=purpose or "token for the authorization (Bearer JWT)",
        form=[("grant_type", "client_credentials"), ("scope", authorization_id)],
        headers=headers,
    )


def revoke(http: HttpRecorder, base: str, consent_id: str) -> Exchange:
    return http.request("DELETE", f"{base}/Consent/{consent_id}", purpose="revoke the consent")
