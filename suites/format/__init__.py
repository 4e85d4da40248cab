"""Checks: JSON format enforcement on the FHIR API."""
