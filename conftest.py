"""Repository-wide pytest settings.

`pytest` at the root runs the project's tests (testpaths in pyproject.toml);
`pytest suites …` runs the conformance checks. Folders that hold no tests are
kept out of collection here.
"""

collect_ignore = ["benchmarks", "examples", "reports", "build"]
