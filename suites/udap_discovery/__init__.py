"""Checks: UDAP discovery metadata and signed_metadata."""
