"""The reference server's handlers for each system (a profile wires them into routes)."""
