"""Checks: scopes."""
