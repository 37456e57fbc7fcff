"""Ctrl-C stops a batch of runs at once (issue 14, item 6): nothing new starts, what is in
flight finishes (threads) or is cancelled (async), the finished runs are kept and reported,
and ``optimas-lg run`` marks its job interrupted and exits non-zero."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optimas_lg.cli import app
from optimas_lg.cli import run as cli_run
from optimas_lg.data import Example
from optimas_lg.errors import Interrupted
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph.system import System
from optimas_lg.store import Store, models
from tests.graphs import slow

ROOT = Path(__file__).resolve().parents[2]
N = 40


def interrupt_after(seconds: float) -> None:
    """Ctrl-C the main thread after ``seconds``."""
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT)).start()


@pytest.mark.parametrize("graph", [slow.graph, slow.async_graph], ids=["threads", "async"])
def test_ctrl_c_stops_a_batch_and_keeps_what_finished(graph, store):
    examples = [Example(str(n), {"n": n}) for n in range(N)]
    interrupt_after(slow.DELAY * 2.5)  # during the third wave of two runs
    t0 = time.perf_counter()
    with pytest.raises(Interrupted) as stop:
        run_examples(System.load(graph), examples, slow.metric, {}, store, concurrency=2, progress=False)
    elapsed = time.perf_counter() - t0
    summary = stop.value.done
    assert elapsed < slow.DELAY * 4  # not the 20 waves a full batch takes
    assert 4 <= summary.n_runs <= 6 and summary.n_runs + stop.value.pending == N
    assert summary.mean == 1.0 and summary.n_failed == 0
    assert [r.example_key for r in summary.results] == sorted((r.example_key for r in summary.results), key=int)
    # the finished runs are recorded; a cancelled async run leaves no row
    recorded = {r.id for r in store.select(models.Run)}
    assert recorded == {r.run_id for r in summary.results}


def test_cli_run_stops_on_sigint_with_a_summary_and_an_interrupted_job(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"e{n}", "n": n}) + "\n" for n in range(N)))
    log = tmp_path / "started.log"
    db = tmp_path / "store.db"
    env = {**os.environ, "OPTIMAS_LG_HOME": str(tmp_path / "home"), "SLOW_GRAPH_LOG": str(log),
           "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "optimas_lg.cli.main", "run", "tests/graphs/slow.py:graph", "--data", str(data),
           "--metric", "tests/graphs/slow.py:metric", "--concurrency", "2", "--store", f"sqlite:///{db}"]
    errors = (tmp_path / "stderr.log").open("w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().split()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.log").read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    first = proc.stdout.readline()
    assert time.monotonic() - t0 < slow.DELAY * 4  # the summary, at once (exit itself then takes a while)
    # read the rest through the same buffered pipe: communicate() would skip what readline() buffered
    out = first + proc.stdout.read()
    proc.wait(timeout=60)
    assert proc.returncode == 130, (tmp_path / "stderr.log").read_text()
    started = len(log.read_text().split())
    assert started < N
    assert "interrupted:" in out and "examples not run" in out and "mean score 1.0000" in out, out
    with Store(f"sqlite:///{db}") as s:
        (job,) = s.select(models.Job)
        runs = s.select(models.Run)
        assert job.status == "interrupted" and job.finished_at is not None
        assert job.meta["not_run"] == N - len(runs) and job.meta["n_runs"] == len(runs)
        assert len(runs) == started  # threads finish the runs in flight, and each is recorded


def test_cli_run_marks_its_job_failed_when_the_batch_dies(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli_run, "run_examples", disk_full)
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"n": 1}) + "\n")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(app, ["run", "tests/graphs/slow.py:graph", "--data", str(data), "--metric",
                                      "tests/graphs/slow.py:metric", "--store", url])
    assert result.exit_code != 0 and isinstance(result.exception, OSError)
    with Store(url) as s:
        (job,) = s.select(models.Job)
        assert job.status == "failed" and "No space left on device" in job.meta["error"]
