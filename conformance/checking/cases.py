"""Negative checks share one shape: a list of cases, each sent once, read by several checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar


class HasId(Protocol):
    @property
    def id(self) -> str: ...


CaseT = TypeVar("CaseT", bound=HasId)
AnswerT = TypeVar("AnswerT")


def answer_once(build: Callable[[CaseT], AnswerT]) -> Callable[[CaseT], AnswerT]:
    """Send each case the first time a check asks for it, then hand every later check the same answer."""
    answers: dict[str, AnswerT] = {}

    def run(case: CaseT) -> AnswerT:
        if case.id not in answers:
            answers[case.id] = build(case)
        return answers[case.id]

    return run
