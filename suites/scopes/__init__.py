"""Checks: scope handling and token enforcement at the FHIR API."""
