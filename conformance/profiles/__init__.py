"""The profiles: one module per system, each declaring a `PROFILE` (see base.Profile); registry.py finds them."""
