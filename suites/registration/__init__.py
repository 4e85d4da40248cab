"""Checks: UDAP dynamic client registration."""
