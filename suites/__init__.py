"""The conformance checks: one folder per area. They run against a target through the pytest plugin."""
