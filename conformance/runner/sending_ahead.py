"""The `send_ahead` fixture: a module's cases sent side by side, owned by the checks that will read them.

A module's case fixture asks `send_ahead(build)` for its `answer_once`. The
plan comes from the selected checks (after -k, -m and the profile filter): the
cases their `case` parameter names, and those a check that asks by name
declares with `@pytest.mark.asks(*keys)` (`of=NAME` when the module has more than one
such fixture, each made with `send_ahead(build, name=NAME)`), in run order, each owned by the first
check that reads it (who carries the finding, should that request take the
target down). A key no selected check declares is sent when asked. Under xdist a worker is handed checks one batch at a time and
cannot know which of a module's cases it will need, so it sends each when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest

from conformance.checking.cases import answer_once, case_key
from conformance.flows.target import Target
from conformance.runner.check_ids import check_id

CaseT = TypeVar("CaseT")
AnswerT = TypeVar("AnswerT")
SendAhead = Callable[..., Callable[[Any], Any]]


def planned_cases(
    items: Sequence[pytest.Item],
    module: object,
    param: str,
    check_id: Callable[[pytest.Item], str],
    name: str | None = None,
) -> list[tuple[Any, str]]:
    """(case, first reader's check id) for each distinct case the module's selected checks will ask for: their
    `param` parameter and the keys of their `asks` markers addressed to `name` (`asks(..., of=name)`; a marker
    without `of` is for the module's unnamed send_ahead). Two send_ahead fixtures of one module must name
    different parameters, or each would plan the other's cases."""
    plan: dict[str, tuple[Any, str]] = {}
    for item in items:
        if getattr(item, "module", None) is not module or "send_ahead" not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        cases = [callspec.params[param]] if callspec is not None and param in callspec.params else []
        if isinstance(item, pytest.Item):
            cases += [
                key for marker in item.iter_markers("asks") if marker.kwargs.get("of") == name for key in marker.args
            ]
        for case in cases:
            plan.setdefault(case_key(case), (case, check_id(item)))
    return list(plan.values())


@pytest.fixture(scope="module")
def send_ahead(request: pytest.FixtureRequest, target: Target) -> SendAhead:
    """answer_once(build) for this module, with its upcoming cases sent ahead when the run allows."""

    def make(
        build: Callable[[CaseT], AnswerT], *, param: str = "case", name: str | None = None
    ) -> Callable[[CaseT], AnswerT]:
        """`name`: which `asks(..., of=name)` markers plan this fixture's cases, when a module has several."""
        upcoming = planned_cases(request.session.items, request.module, param, check_id, name)
        return answer_once(build, upcoming=upcoming, pool=target.http.pool)

    return make
