"""The batcher alone, with a fake decoder: joining, keys, caps, failures, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from optimas_lg.errors import ModelServerError
from optimas_lg.llm.batching import Batcher, CancelledByClient


class CountdownBatch:
    """A fake running batch: payload ``p`` takes ``p`` steps and returns ``p * 10``;
    a negative payload is refused at once. Logs which jobs each step saw."""

    def __init__(self, key, log, delay=0.0, fail_step=False):
        self.key, self.log, self.delay, self.fail_step = key, log, delay, fail_step
        self.left: dict[int, int] = {}
        self.payloads: dict[int, int] = {}

    def __len__(self):
        return len(self.left)

    def add(self, jobs):
        refused = [(job_id, ValueError(f"bad {p}")) for job_id, p in jobs if p < 0]
        for job_id, p in jobs:
            if p >= 0:
                self.left[job_id], self.payloads[job_id] = max(p, 1), p
        return refused

    def step(self):
        if self.fail_step:
            raise RuntimeError("model crashed")
        time.sleep(self.delay)
        self.log.append((self.key, sorted(self.payloads[j] for j in self.left)))
        done = []
        for job_id in list(self.left):
            self.left[job_id] -= 1
            if self.left[job_id] == 0:
                del self.left[job_id]
                done.append((job_id, self.payloads[job_id] * 10))
        return done

    def remove(self, job_ids):
        self.log.append((self.key, "removed", sorted(self.payloads[j] for j in job_ids)))
        for job_id in job_ids:
            del self.left[job_id]

    def close(self):
        self.log.append((self.key, "closed"))


def opener(log, **kw):
    return lambda key: CountdownBatch(key, log, **kw)


def test_concurrent_jobs_share_a_batch_and_keys_never_mix():
    log = []
    batcher = Batcher(opener(log), max_batch=8, max_wait=0.2)
    futures = [batcher.submit("a" if i % 2 else "b", i + 1) for i in range(6)]
    assert [f.result(timeout=5) for f in futures] == [10, 20, 30, 40, 50, 60]
    batcher.close()
    steps = [(key, rows) for key, rows in log if rows != "closed"]
    assert steps[0] == ("b", [1, 3, 5])  # the oldest job's key opens the batch with all its jobs
    assert all(rows in ([1, 3, 5], [3, 5], [5]) for key, rows in steps if key == "b")
    assert all(rows in ([2, 4, 6], [4, 6], [6]) for key, rows in steps if key == "a")


def test_finished_rows_leave_and_queued_jobs_join_the_running_batch():
    log = []
    batcher = Batcher(opener(log, delay=0.05), max_batch=2, max_wait=0.0)
    first, long = batcher.submit("k", 1), batcher.submit("k", 6)
    later = batcher.submit("k", 2)  # no room yet: joins when the 1-step job leaves
    assert [f.result(timeout=5) for f in (first, long, later)] == [10, 60, 20]
    batcher.close()
    steps = [rows for _, rows in log if rows != "closed"]
    assert steps[0] == [1, 6]
    assert steps[1] == [2, 6]  # joined after one step, not after the long job ended
    assert len([s for s in log if s[1] == "closed"]) == 1  # one batch served all three


def test_batch_cap_counts_rows():
    log = []
    batcher = Batcher(opener(log), max_batch=4, max_wait=0.2)
    futures = [batcher.submit("k", 3, size=2) for _ in range(3)]
    [f.result(timeout=5) for f in futures]
    batcher.close()
    assert max(len(rows) for _, rows in log if rows != "closed") == 2  # 2 jobs x 2 rows fill 4 rows


def test_an_older_job_of_another_key_stops_joins_so_it_is_not_starved():
    log = []
    batcher = Batcher(opener(log, delay=0.05), max_batch=8, max_wait=0.0)
    a1 = batcher.submit("a", 4)
    time.sleep(0.08)  # a's batch is running
    b1 = batcher.submit("b", 1)
    a2 = batcher.submit("a", 1)
    [f.result(timeout=5) for f in (a1, b1, a2)]
    batcher.close()
    keys = [key for key, rows in log if rows == "closed"]
    assert keys == ["a", "b", "a"]  # a2 waited for b instead of joining the running a batch


def test_a_refused_job_or_a_failed_batch_fails_only_its_own_requests():
    batcher = Batcher(opener([]), max_batch=8, max_wait=0.05)
    good, bad = batcher.submit("k", 1), batcher.submit("k", -1)
    assert good.result(timeout=5) == 10
    with pytest.raises(ValueError, match="bad -1"):
        bad.result(timeout=5)
    batcher.close()

    log = []
    batcher = Batcher(opener(log, fail_step=True), max_batch=8, max_wait=0.0)
    with pytest.raises(RuntimeError, match="model crashed"):
        batcher.submit("k", 1).result(timeout=5)
    assert batcher._thread.is_alive()  # the worker survives to serve the next batch
    assert log == [("k", "closed")]  # and the failed batch was released
    batcher.close()

    def broken_open(key):
        raise RuntimeError("cannot load the model")

    batcher = Batcher(broken_open, max_batch=8, max_wait=0.0)
    with pytest.raises(RuntimeError, match="cannot load"):
        batcher.submit("k", 1).result(timeout=5)
    batcher.close()


def test_close_fails_queued_jobs_and_refuses_new_ones():
    log = []
    started = threading.Event()

    class Slow(CountdownBatch):
        def step(self):
            started.set()
            return super().step()

    batcher = Batcher(lambda key: Slow(key, log, delay=0.3), max_batch=1, max_wait=0.0)
    running = batcher.submit("k", 1)
    started.wait(5)
    queued = batcher.submit("k", 2)
    batcher.close()
    assert running.result(timeout=5) == 10
    with pytest.raises(ModelServerError, match="shut down"):
        queued.result(timeout=5)
    with pytest.raises(ModelServerError, match="shutting down"):
        batcher.submit("k", 3)


def test_cancelled_jobs_are_skipped():
    log = []
    batcher = Batcher(opener(log), max_batch=8, max_wait=0.2)
    dropped, kept = batcher.submit("k", 1), batcher.submit("k", 2)
    assert dropped.cancel()
    assert kept.result(timeout=5) == 20
    batcher.close()
    assert [rows for _, rows in log if rows != "closed"] == [[2], [2]]


def test_a_job_cancelled_while_running_leaves_its_batch_at_the_next_step():
    log = []
    started = threading.Event()

    class Watched(CountdownBatch):
        def step(self):
            started.set()
            return super().step()

    batcher = Batcher(lambda key: Watched(key, log, delay=0.02), max_batch=8, max_wait=0.0)
    abandoned, other = batcher.submit("k", 1000), batcher.submit("k", 5)
    started.wait(5)
    batcher.cancel(abandoned)
    with pytest.raises(CancelledByClient):
        abandoned.result(timeout=5)
    assert other.result(timeout=5) == 50  # its neighbour in the batch is untouched
    batcher.close()
    assert ("k", "removed", [1000]) in log
    assert sum(1 for entry in log if entry[1] not in ("closed", "removed")) < 100  # not 1000 steps


def test_a_batch_whose_cleanup_fails_does_not_stop_the_worker(caplog):
    class BadClose(CountdownBatch):
        def close(self):
            raise RuntimeError("adapter context broke")

    batcher = Batcher(lambda key: BadClose(key, []), max_batch=8, max_wait=0.0)
    assert batcher.submit("k", 1).result(timeout=5) == 10
    assert batcher.submit("k", 2).result(timeout=5) == 20  # the worker still serves
    batcher.close()
    assert "closing a batch" in caplog.text
