"""The batcher alone, with a fake model: grouping, keys, caps, failures, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from optimas_lg.errors import ModelServerError
from optimas_lg.llm.batching import Batcher


class Recorder:
    def __init__(self, delay: float = 0.0):
        self.batches: list[tuple[str, list[int]]] = []
        self.delay = delay

    def __call__(self, key, payloads):
        self.batches.append((key, list(payloads)))
        time.sleep(self.delay)
        return [ValueError(f"bad {p}") if p < 0 else p * 10 for p in payloads]


def test_concurrent_jobs_share_a_batch_and_keys_never_mix():
    run = Recorder()
    batcher = Batcher(run, max_batch=8, max_wait=0.2)
    futures = [batcher.submit("a" if i % 2 else "b", i) for i in range(6)]
    assert [f.result(timeout=5) for f in futures] == [0, 10, 20, 30, 40, 50]
    batcher.close()
    assert sorted(run.batches) == [("a", [1, 3, 5]), ("b", [0, 2, 4])]


def test_batch_cap_counts_rows_and_oldest_goes_first():
    run = Recorder()
    batcher = Batcher(run, max_batch=4, max_wait=0.2)
    futures = [batcher.submit("k", i, size=2) for i in range(5)]
    [f.result(timeout=5) for f in futures]
    batcher.close()
    assert [payloads for _, payloads in run.batches] == [[0, 1], [2, 3], [4]]


def test_jobs_queued_during_a_batch_go_without_waiting_again():
    run = Recorder(delay=0.3)
    batcher = Batcher(run, max_batch=8, max_wait=0.05)
    first = batcher.submit("k", 0)
    time.sleep(0.1)  # the first batch is running now
    later = [batcher.submit("k", i) for i in (1, 2, 3)]
    [f.result(timeout=5) for f in [first, *later]]
    batcher.close()
    assert [payloads for _, payloads in run.batches] == [[0], [1, 2, 3]]


def test_a_failing_job_or_batch_fails_only_its_own_requests():
    batcher = Batcher(Recorder(), max_batch=8, max_wait=0.05)
    good, bad = batcher.submit("k", 1), batcher.submit("k", -1)
    assert good.result(timeout=5) == 10
    with pytest.raises(ValueError, match="bad -1"):
        bad.result(timeout=5)
    batcher.close()

    def explode(key, payloads):
        raise RuntimeError("model crashed")

    batcher = Batcher(explode, max_batch=8, max_wait=0.0)
    with pytest.raises(RuntimeError, match="model crashed"):
        batcher.submit("k", 1).result(timeout=5)
    assert batcher._thread.is_alive()  # the worker survives to serve the next batch
    batcher.close()


def test_close_fails_queued_jobs_and_refuses_new_ones():
    started = threading.Event()

    def slow(key, payloads):
        started.set()
        time.sleep(0.3)
        return payloads

    batcher = Batcher(slow, max_batch=1, max_wait=0.0)
    running = batcher.submit("k", 1)
    started.wait(5)
    queued = batcher.submit("k", 2)
    batcher.close()
    assert running.result(timeout=5) == 1
    with pytest.raises(ModelServerError, match="shut down"):
        queued.result(timeout=5)
    with pytest.raises(ModelServerError, match="shutting down"):
        batcher.submit("k", 3)


def test_cancelled_jobs_are_skipped():
    run = Recorder()
    batcher = Batcher(run, max_batch=8, max_wait=0.2)
    dropped, kept = batcher.submit("k", 1), batcher.submit("k", 2)
    assert dropped.cancel()
    assert kept.result(timeout=5) == 20
    batcher.close()
    assert run.batches == [("k", [2])]
