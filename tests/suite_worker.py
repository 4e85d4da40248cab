"""A long-lived process that runs the conformance suites on request (used by the fault matrix).

Importing pytest, the plugin, cryptography and the suites costs about a second;
the matrix runs the suites a few hundred times, so one worker per test process
pays it once. Each request is one JSON line {"args": [...], "cwd": "..."} on
stdin; the answer is one JSON line {"code": N, "output": "..."} on stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def main() -> None:
    import pytest

    protocol = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        os.chdir(request["cwd"])
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            try:
                code = int(pytest.main(request["args"]))
            except BaseException as exc:
                code = 99
                print(f"worker error: {type(exc).__name__}: {exc}")
        protocol.write(json.dumps({"code": code, "output": captured.getvalue()[-6000:]}) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
