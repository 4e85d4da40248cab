"""Checks: Carequality on Cerner."""
