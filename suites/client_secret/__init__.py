"""Checks: Cerner system accounts (client_secret_basic)."""
