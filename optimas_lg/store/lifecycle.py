"""How a job's row ends: ``done`` is recorded by whoever finishes the work; any exit by
an exception goes through ``job_guard``, so no job is left ``running``; SIGTERM is one
(``sigterm_as_interrupt``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import traceback
from collections.abc import Iterator

from optimas_lg.store import models as m
from optimas_lg.store.store import Store


def end_job(store: Store, job_id: int, error: BaseException) -> None:
    """Mark an unfinished job ``interrupted`` (Ctrl-C, cancellation) or ``failed``, keeping
    its metadata and adding the error's one-line summary."""
    job = store.get(m.Job, job_id)
    if job is None or job.status == "done":
        return
    stopped = isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))
    summary = "".join(traceback.format_exception_only(error)).strip()
    store.finish_job(job_id, "interrupted" if stopped else "failed", {**(job.meta or {}), "error": summary})


@contextlib.contextmanager
def job_guard(store: Store, job_id: int) -> Iterator[None]:
    """Run work for a job; if it raises, record how the job ended and re-raise (a Ctrl-C
    with a note naming the job, so a caller of the Python API knows what to resume)."""
    try:
        yield
    except BaseException as exc:
        end_job(store, job_id, exc)
        note = f"optimas-lg job {job_id} is interrupted and can be resumed (resume={job_id})"
        if isinstance(exc, KeyboardInterrupt) and note not in getattr(exc, "__notes__", []):
            exc.add_note(note)
        raise


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (``kill``, a scheduler's stop) end the work the way Ctrl-C does: no new
    runs, the job marked ``interrupted`` and resumable, not killed while ``running``.

    Installed only from the main thread (Python delivers signals there) and only over the
    default handler: a library must not replace a handler the application set.
    """
    in_main = threading.current_thread() is threading.main_thread()
    if not in_main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
