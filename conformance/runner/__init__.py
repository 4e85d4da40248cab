"""Turning a command line into a run: CLI, pytest plugin, configuration loading, embedded run, diagnose."""
