"""JOSE and PKI: keys, JWKs, signed assertions, certificates and chains (the bottom layer)."""
