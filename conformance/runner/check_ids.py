"""A check's stable id: what reports, waivers, baselines and fault catalogues name it by."""

from __future__ import annotations

from pathlib import Path

import pytest


def check_id(item: pytest.Item) -> str:
    """A stable id: the path below suites/ plus the test name, e.g. token/test_x.py::test_y[RS384]."""
    path = Path(str(item.path))
    relative = next(
        (path.relative_to(parent).as_posix() for parent in path.parents if parent.name == "suites"), path.name
    )
    return "::".join([relative, *item.nodeid.split("::")[1:]])
