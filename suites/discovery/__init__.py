"""Checks: discovery."""
