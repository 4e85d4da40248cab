"""Checks: RFC 7591 dynamic registration of a SMART backend client (when registration_endpoint is advertised)."""
