"""Continuous batching: requests join a running batch between decode steps.

On CPU one decode step for 8 rows costs about twice a step for one row, so requests
that run together are worth gathering. Jobs carry a key (base model and adapter): a
batch holds jobs of one key only. When no batch runs, the oldest job's key opens one
after a short wait window (or at once when enough rows are queued); while it runs,
queued jobs of its key join at the next step boundary, up to ``max_batch`` rows, and
finished jobs leave at once. A job of another key that is older than the queued ones
stops new joins, so the batch drains and that key goes next: no key starves.
One worker thread runs the batch, which keeps the cores for one batch at a time.
A job ``cancel``ed while queued never runs; one cancelled while running leaves its
batch at the next step boundary, so an abandoned request stops costing decode steps.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from optimas_lg.errors import ModelServerError


class RunningBatch(Protocol):
    """What the batcher drives: jobs in, one step at a time, finished jobs out."""

    def __len__(self) -> int:
        """Rows still decoding."""

    def add(self, jobs: list[tuple[int, Any]]) -> list[tuple[int, BaseException]]:
        """Admit ``(job id, payload)`` jobs; returns the ones refused at once, with why."""

    def step(self) -> list[tuple[int, Any]]:
        """Advance every row one step; returns ``(job id, result)`` of the jobs that finished."""

    def remove(self, job_ids: list[int]) -> None:
        """Stop decoding these jobs (cancelled) and free what they hold."""

    def close(self) -> None:
        """Release what the batch holds (called once it is empty or failed)."""


OpenBatch = Callable[[Hashable], RunningBatch]


class CancelledByClient(ModelServerError):
    """The job was cancelled while it ran (its client disconnected)."""

    def __init__(self) -> None:
        super().__init__("the request was cancelled before it finished")
log = logging.getLogger(__name__)


@dataclass
class _Job:
    key: Hashable
    payload: Any
    size: int
    id: int
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Queue plus one worker thread that runs one ``RunningBatch`` at a time."""

    def __init__(self, open_batch: OpenBatch, max_batch: int = 8, max_wait: float = 0.02):
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait >= 0, got {max_batch}, {max_wait}")
        self.open_batch, self.max_batch, self.max_wait = open_batch, max_batch, max_wait
        self._queue: list[_Job] = []
        self._cancelled: set[Future] = set()  # running jobs to drop at the next step
        self._cond = threading.Condition()
        self._closed = False
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._loop, name="optimas-lg-batcher", daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, payload: Any, size: int = 1) -> Future:
        """Queue a job of ``size`` rows (``n`` choices take ``n`` rows); resolves to its result."""
        with self._cond:
            if self._closed:
                raise ModelServerError("the local model server is shutting down")
            job = _Job(key, payload, size, next(self._ids))
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def cancel(self, future: Future) -> None:
        """Give up on a submitted job (its client left): it never starts, or stops at the
        next step with ``CancelledByClient``."""
        if not future.cancel():  # already running: the worker drops it between steps
            with self._cond:
                self._cancelled.add(future)

    def close(self) -> None:
        """Finish the running batch, fail the queued jobs, stop the worker."""
        with self._cond:
            self._closed = True
            pending, self._queue = self._queue, []
            self._cond.notify()
        for job in pending:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(ModelServerError("the local model server shut down before this request ran"))
        self._thread.join()

    def _loop(self) -> None:
        batch: RunningBatch | None = None
        key: Hashable = None
        running: dict[int, _Job] = {}
        while True:
            with self._cond:
                if batch is None:
                    while not self._closed and not self._ready():
                        self._cond.wait(self._wait_time())
                    if self._closed:
                        return
                    key = self._queue[0].key
                rows = sum(job.size for job in running.values())
                joining = self._take(key, self.max_batch - rows, opening=batch is None)
                cancelled, self._cancelled = self._cancelled, set()
            if batch is None and not joining:
                continue  # every job of that key was cancelled
            running.update((job.id, job) for job in joining)
            try:
                if batch is None:
                    batch = self.open_batch(key)
                if joining:
                    self._resolve(running, batch.add([(job.id, job.payload) for job in joining]))
                dropped = [job_id for job_id, job in running.items() if job.future in cancelled]
                if dropped:
                    batch.remove(dropped)
                    self._resolve(running, [(job_id, CancelledByClient()) for job_id in dropped])
                self._resolve(running, batch.step())
            except Exception as exc:  # noqa: BLE001 - a failed batch fails its jobs, not the server
                self._resolve(running, [(job_id, exc) for job_id in running])
            if running and batch is not None and len(batch) > 0:
                continue
            self._resolve(running, [(job_id, ModelServerError("the batch ended before this request finished"))
                                    for job_id in running])
            if batch is not None:
                try:
                    batch.close()
                except Exception:  # noqa: BLE001 - the worker must outlive one batch's cleanup
                    log.exception("closing a batch of %r failed", key)
                batch = None

    def _rows_like_oldest(self) -> int:
        key = self._queue[0].key
        return sum(job.size for job in self._queue if job.key == key)

    def _ready(self) -> bool:
        return bool(self._queue) and (self._rows_like_oldest() >= self.max_batch or self._wait_time() <= 0)

    def _wait_time(self) -> float | None:
        return self._queue[0].arrived + self.max_wait - time.monotonic() if self._queue else None

    def _take(self, key: Hashable, room: int, opening: bool) -> list[_Job]:
        """Queued jobs of ``key`` that fit in ``room`` rows, oldest first. Opening a batch
        gathers them from the whole queue; joining a running one stops at the first job
        of another key, which is older and goes next. A job larger than a whole batch
        still goes, alone."""
        taken: list[_Job] = []
        for job in list(self._queue):
            if job.key != key:
                if opening:
                    continue
                break
            if job.size > room and (taken or room < self.max_batch):
                break
            self._queue.remove(job)
            if job.future.set_running_or_notify_cancel():
                taken.append(job)
                room -= job.size
        return taken

    @staticmethod
    def _resolve(running: dict[int, _Job], outcomes: list[tuple[int, Any]]) -> None:
        for job_id, outcome in outcomes:
            job = running.pop(job_id, None)
            if job is None:
                continue
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)
