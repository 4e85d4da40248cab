"""Negative checks share one shape: a list of cases, each sent once, read by several checks.

With a pool (`conformance.core.concurrency`), the first check that asks for a
case has every upcoming case of its group sent at once; each check then reads
its own answer. Without one (`--concurrency 1`, or under xdist, where a worker
cannot know which checks it will be given), each case is sent when a check
first asks for it. Either way a case is sent once: what it returned or raised
is handed to every check that asks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from conformance.core.concurrency import Answer, ExchangePool

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
    answers: dict[str, Answer[AnswerT]] = {}
    sent_ahead: dict[str, Future[Answer[AnswerT]]] = {}

    def send_the_group() -> None:
        assert pool is not None
        pool.drain()  # groups never overlap: the previous group's slow jobs finish first
        for case, owner in upcoming:
            key = case_key(case)
            if key not in sent_ahead and key not in answers:
                sent_ahead[key] = pool.submit(owner, functools.partial(build, case))

    def run(case: CaseT) -> AnswerT:
        key = case_key(case)
        if key not in answers:
            if (
                pool is not None
                and pool.enabled
                and key not in sent_ahead
                and any(case_key(c) == key for c, _ in upcoming)
            ):
                send_the_group()
            future = sent_ahead.pop(key, None)
            if future is None:
                # Sent now, in the asking check, which records its exchanges and notes itself. What it raised is
                # kept too: a later reader of the same case gets the same outcome, not a second request.
                answers[key] = Answer.of(functools.partial(build, case))
            else:
                # The first reader carries the exchanges as evidence, as it would had it sent them itself.
                answers[key] = future.result()
                answers[key].cite()
        return answers[key].result()

    return run
