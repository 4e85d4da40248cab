"""Independent exchanges side by side: a run bounded by its dependency chain, not its request count.

Checks read recorded answers; most answers do not depend on each other (the
bad token requests of one area, the Accept variants of one read). A check that
needs one of them has the whole group sent at once, at most `size` requests in
flight, and then reads its own answer as before.

What stays ordered, and why:
- Everything a check or fixture sends itself. `HttpRecorder.request` waits for
  every prefetched exchange still in flight before it sends, so a state-changing
  step (a registration, a rotation, a replay pair, an expiry wait) never
  overlaps the group, and the group sees the server as the check before it left it.
- A group's own multi-step cases (a replay sends the first use, then the second)
  run their steps in order inside one job.
- Groups never overlap: a new group starts only after the previous one drained.

Each job runs in a copy of the context of the check that started the group, so
the redactor still learns every signature the job makes, and with the check id
of the first check that will read its answer as the owner of its exchanges: a
request that takes the target down is blamed on that check, not on whichever
check happened to be running.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from conformance.core.outcomes import collecting_notes, note
from conformance.core.recording import Exchange, capturing, cite, one_after_another, sending_for

DEFAULT_CONCURRENCY = 8
"""Requests in flight at once within one group: enough that a 90-request run against a 50 ms WAN target takes a
handful of round trips per area, few enough for a staging server's connection limits (`--concurrency 1` sends
one at a time, as a rate-limited production server may need)."""

ResultT = TypeVar("ResultT")
_job = threading.local()


class Halted(Exception):
    """A job not started: the run stopped sending (the target went away). Its readers are reported not-run."""


@dataclass
class Answer(Generic[ResultT]):
    """What a job produced (or raised), the exchanges it made and the notes it recorded: the first reader cites
    them as evidence, as it would had it sent them itself."""

    value: ResultT | None = None
    error: BaseException | None = None
    traceback: TracebackType | None = None
    """The error's traceback as the job left it: raising it again for each reader would otherwise grow it."""
    exchanges: list[Exchange] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def cite(self) -> None:
        """Make this answer's exchanges and notes the evidence of the check running now."""
        cite(*self.exchanges)
        for key, value in self.notes:
            note(key, value)

    def result(self) -> ResultT:
        """The value, or the job's error raised again (with the job's traceback, not one grown per reader)."""
        if self.error is not None:
            raise self.error.with_traceback(self.traceback)
        return self.value  # type: ignore[return-value]

    @classmethod
    def of(cls, job: Callable[[], ResultT]) -> Answer[ResultT]:
        """Run `job` here and keep what it returned or raised."""
        answer: Answer[ResultT] = cls()
        try:
            answer.value = job()
        except KeyboardInterrupt:
            raise  # Ctrl-C stops the run now, not after the rest of the group
        except BaseException as exc:  # kept for every reader, each raises it in its own check
            answer.error, answer.traceback = exc, exc.__traceback__
        return answer


class ExchangePool:
    """Runs groups of independent jobs, at most `size` at a time; `size` 1 runs nothing ahead of its reader."""

    def __init__(
        self,
        size: int = DEFAULT_CONCURRENCY,
        *,
        halted: Callable[[], str | None] = lambda: None,
        asking: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.size = max(1, size)
        self.halted = halted
        """Why jobs not yet started must not send (the target is down), or None."""
        self.asking = asking
        """The check running now: the owner of jobs submitted without one."""
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.size > 1

    def submit(self, owner: str | None, job: Callable[[], ResultT]) -> Future[Answer[ResultT]]:
        """Start `job` in a copy of the caller's context; its exchanges are owned by `owner` (a check id)."""
        context = contextvars.copy_context()
        owner = owner or self.asking()

        def run() -> Answer[ResultT]:
            reason = self.halted()
            if reason is not None:
                return Answer(error=Halted(reason))
            _job.active = True
            try:
                with sending_for(owner), capturing() as captured, collecting_notes() as notes:
                    answer = Answer.of(job)
                answer.exchanges, answer.notes = list(captured), list(notes.items)
            finally:
                _job.active = False
            return answer

        with self._lock:
            if self._closed:
                raise RuntimeError("the exchange pool is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="exchange")
            future = self._executor.submit(context.run, run)
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
            if not self._pending:
                self._idle.notify_all()

    def side_by_side(self, jobs: Mapping[str, Callable[[], ResultT]]) -> dict[str, ResultT]:
        """Run independent jobs at once and return their results by name, as if run one after another: the
        exchanges are the caller's evidence, and the first job's exception (in the given order) is raised.

        Inside a job (a case sent ahead that has parts of its own) they run one after another: the job holds a
        worker, and waiting on workers from one could exhaust the pool."""
        if not self.enabled or self.in_a_job():
            return one_after_another(jobs)
        self.drain()  # groups never overlap: a group sent ahead finishes first
        futures = {name: self.submit(None, job) for name, job in jobs.items()}
        answers = {name: future.result() for name, future in futures.items()}
        for answer in answers.values():
            answer.cite()
        return {name: answer.result() for name, answer in answers.items()}

    @staticmethod
    def in_a_job() -> bool:
        return bool(getattr(_job, "active", False))

    def drain(self) -> None:
        """Wait until no job is in flight (a job's own requests never wait: they belong to the group)."""
        if self.in_a_job():
            return
        with self._lock:
            while self._pending:
                self._idle.wait()

    def close(self) -> None:
        with self._lock:
            executor, self._executor, self._closed = self._executor, None, True
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
