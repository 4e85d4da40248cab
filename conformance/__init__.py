"""Conformance checks for FHIR system-to-system (B2B) authorization."""

__version__ = "0.1.0"
