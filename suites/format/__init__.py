"""Checks: format."""
