"""Negative checks share one shape: a list of cases, each sent once, read by several checks.

With a pool (`conformance.core.concurrency`), the first check that asks for a
case has every upcoming case of its group sent at once; each check then reads
its own answer. Without one (`--concurrency 1`, or under xdist, where a worker
cannot know which checks it will be given), each case is sent when a check
first asks for it, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from conformance.core.concurrency import Answer, ExchangePool
from conformance.core.recording import cite

CaseT = TypeVar("CaseT")
AnswerT = TypeVar("AnswerT")


def case_key(case: Any) -> str:
    """A case's identity: its `id`, or the value itself for plain keys (an Accept variant, a scope)."""
    key = getattr(case, "id", case)
    return str(key)


def answer_once(
    build: Callable[[CaseT], AnswerT],
    *,
    upcoming: Sequence[tuple[CaseT, str | None]] = (),
    pool: ExchangePool | None = None,
) -> Callable[[CaseT], AnswerT]:
    """Send each case once and hand every check that asks the same answer.

    `upcoming` lists the cases the selected checks will ask for, each with the id of the first check that reads
    it (the owner of its exchanges). With an enabled `pool` they are all sent as soon as one is asked for."""
    answers: dict[str, AnswerT] = {}
    sent_ahead: dict[str, Future[Answer[AnswerT]]] = {}
    cited: set[str] = set()

    def send_the_group() -> None:
        assert pool is not None
        pool.drain()  # groups never overlap: the previous group's slow jobs finish first
        for case, owner in upcoming:
            key = case_key(case)
            if key not in sent_ahead and key not in answers:
                sent_ahead[key] = pool.submit(owner, functools.partial(build, case))

    def run(case: CaseT) -> AnswerT:
        key = case_key(case)
        if key in answers:
            return answers[key]
        if pool is not None and pool.enabled and key not in sent_ahead and any(case_key(c) == key for c, _ in upcoming):
            send_the_group()
        future = sent_ahead.get(key)
        if future is None:
            answers[key] = build(case)  # sent now, in the asking check (exceptions are not kept: asked again later)
            return answers[key]
        answer = future.result()
        if key not in cited:
            # The first reader carries the exchanges as evidence, as it would had it sent them itself.
            cited.add(key)
            cite(*answer.exchanges)
        if answer.error is not None:
            raise answer.error
        return answer.value  # type: ignore[return-value]

    return run
