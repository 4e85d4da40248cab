"""The reference server ("the mock"): a Starlette app that emulates each supported system.

It is both the thing users develop against and the thing the suites certify.
Every deliberate misbehaviour is a named fault (see `faults`), so each check can
be proven to fail against it.
"""
