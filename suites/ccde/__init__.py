"""Checks: consumer-centered data exchange (test.fhir.org)."""
