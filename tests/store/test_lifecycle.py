"""How a job ends: SIGTERM is turned into the interrupt that ``job_guard`` records."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from optimas_lg.store.lifecycle import sigterm_as_interrupt


def test_sigterm_stops_the_work_as_ctrl_c_does_and_only_inside():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives at once; this never ends
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_applications_own_handler_and_other_threads_are_left_alone():
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)

    seen = []

    def worker():  # signal.signal raises ValueError off the main thread; it must not be tried
        with sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]


def test_an_interrupted_job_is_recorded_and_the_interrupt_names_it_once(store):
    from optimas_lg.store import models as m
    from optimas_lg.store.lifecycle import job_guard

    job = store.create_job("optimize")
    with pytest.raises(KeyboardInterrupt) as raised, job_guard(store, job):
        with job_guard(store, job):  # nested, as in the loop
            raise KeyboardInterrupt
    assert store.get(m.Job, job).status == "interrupted"
    assert raised.value.__notes__ == [f"optimas-lg job {job} is interrupted and can be resumed (resume={job})"]
