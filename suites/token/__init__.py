"""Checks: token."""
