"""Checks: UDAP JWT client authentication at the token endpoint."""
