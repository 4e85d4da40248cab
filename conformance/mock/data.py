"""Synthetic FHIR R4 resources the reference server serves. No real person is described."""

from __future__ import annotations

from typing import Any

DEFAULT_PATIENT_ID = "example"
CERNER_PATIENT_ID = "1316024"


def _patient(pid: str, family: str, given: str, birth: str, gender: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z"},
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.13.6", "value": f"MRN-{pid}"}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth,
    }


def _observation(oid: str, patient: str, code: str, display: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-01-02T09:30:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def resources() -> dict[str, dict[str, dict[str, Any]]]:
    """A fresh copy of the data set, keyed by resource type then id."""
    patients = [
        _patient(DEFAULT_PATIENT_ID, "Testperson", "Åsa", "1970-01-01", "female"),
        _patient("p2", "Sample", "Jordan", "1985-06-15", "male"),
        _patient(CERNER_PATIENT_ID, "Peters", "Tim", "1966-09-10", "male"),
        _patient("1", "Smart", "Nancy", "1980-08-11", "female"),
    ]
    observations = [
        _observation("obs-hr-1", DEFAULT_PATIENT_ID, "8867-4", "Heart rate", 72, "/min"),
        _observation("obs-wt-1", DEFAULT_PATIENT_ID, "29463-7", "Body weight", 64.5, "kg"),
        _observation("obs-hr-2", "p2", "8867-4", "Heart rate", 80, "/min"),
        _observation("obs-hr-3", CERNER_PATIENT_ID, "8867-4", "Heart rate", 66, "/min"),
    ]
    return {
        "Patient": {p["id"]: p for p in patients},
        "Observation": {o["id"]: o for o in observations},
    }


KNOWN_RESOURCE_TYPES = frozenset(
    {
        "Patient",
        "Observation",
        "Practitioner",
        "Encounter",
        "Condition",
        "DocumentReference",
        "Composition",
        "Binary",
        "AllergyIntolerance",
        "MedicationRequest",
    }
)
