"""Rows per second ingested into the store on SQLite and on PostgreSQL, measured in one run.

The workload is what recording a dataset run writes: runs, each with its node calls, put
from worker threads through the store's background ``BatchWriter``; for comparison, one
transaction per row through ``insert_many``. PostgreSQL is a local PostgreSQL 15 server the
script starts in a temporary folder (``tests/postgres.py``) with its durable defaults
(fsync and synchronous commit on); SQLite runs in WAL mode with synchronous=NORMAL, the
store's settings. Backends alternate over three repeats; the medians are kept.

Run: .venv/bin/python bench/store_ingest.py   (writes docs/bench/store_ingest.json)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/store_ingest.py` must import tests/postgres.py

import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import psycopg  # noqa: E402

from optimas_lg.store import Store  # noqa: E402
from optimas_lg.store import models as m  # noqa: E402
from optimas_lg.store.models import utcnow  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

RUNS = 2_000
NODE_CALLS_PER_RUN = 10
PRODUCERS = 4  # worker threads recording at once, as `optimas-lg run --concurrency 4`
SINGLE_ROWS = 1_000
REPEATS = 3
GOAL_BATCHED = 20_000
OUT = ROOT / "docs" / "bench" / "store_ingest.json"


def _run_rows(i: int) -> list[tuple[type, dict]]:
    run_id = str(uuid.uuid4())
    rows: list[tuple[type, dict]] = [(m.Run, {
        "id": run_id, "example_key": f"ex{i}", "purpose": "eval", "inputs": {"question": f"question {i}"},
        "output": {"answer": f"answer {i}"}, "status": "done", "score": 0.5, "started_at": utcnow(), "latency_s": 0.1})]
    for step in range(NODE_CALLS_PER_RUN):
        rows.append((m.NodeCall, {
            "id": str(uuid.uuid4()), "run_id": run_id, "node": f"node{step}", "step": step, "task_id": "",
            "inputs": {"question": f"question {i}", "context": ["fact"] * 5}, "reads": ["question", "context"],
            "output": {"answer": f"answer {i}"}, "knobs": {"top_k": 3}, "started_at": utcnow(), "latency_s": 0.01}))
    return rows


def _batched(url: str) -> float:
    """Rows/s from the first put until everything is committed."""
    work = [_run_rows(i) for i in range(RUNS)]
    with Store(url) as store:
        writer = store.writer

        def produce(k: int) -> None:
            for rows in work[k::PRODUCERS]:
                for table, row in rows:
                    writer.put(table, row)

        producers = [threading.Thread(target=produce, args=(k,)) for k in range(PRODUCERS)]
        start = time.perf_counter()
        for p in producers:
            p.start()
        for p in producers:
            p.join()
        writer.flush()
        seconds = time.perf_counter() - start
        assert store.count(m.Run) == RUNS and store.count(m.NodeCall) == RUNS * NODE_CALLS_PER_RUN
    return RUNS * (1 + NODE_CALLS_PER_RUN) / seconds


def _single(url: str) -> float:
    """Rows/s with one transaction per node-call row."""
    with Store(url) as store:
        run_id = str(uuid.uuid4())
        store.insert_many(m.Run, [{"id": run_id}])
        rows = [row for _, row in _run_rows(0)[1:]] * (SINGLE_ROWS // NODE_CALLS_PER_RUN)
        rows = [{**row, "id": str(uuid.uuid4()), "run_id": run_id} for row in rows]
        start = time.perf_counter()
        for row in rows:
            store.insert_many(m.NodeCall, [row])
        return len(rows) / (time.perf_counter() - start)


def _summary(batched: list[float], single: list[float]) -> dict:
    b, s = statistics.median(batched), statistics.median(single)
    return {"batched_rows_per_s": round(b), "single_rows_per_s": round(s), "batched_vs_single": round(b / s, 1),
            "batched_repeats": [round(x) for x in batched]}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, PostgresServer(fast=False) as server:
        files = iter(range(1_000))
        backends = {"sqlite": lambda: f"sqlite:///{folder}/store{next(files)}.db",
                    "postgresql": server.create_database}
        batched: dict[str, list[float]] = {name: [] for name in backends}
        single: dict[str, list[float]] = {name: [] for name in backends}
        for _ in range(REPEATS):  # interleaved, so that a change of load on this shared machine hits both
            for name, new_url in backends.items():
                batched[name].append(_batched(new_url()))
                single[name].append(_single(new_url()))
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres") as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
    sqlite, postgresql = (_summary(batched[name], single[name]) for name in backends)
    ratio = postgresql["batched_rows_per_s"] / sqlite["batched_rows_per_s"]
    result = {
        "workload": {"runs": RUNS, "node_calls_per_run": NODE_CALLS_PER_RUN, "producer_threads": PRODUCERS,
                     "batched_rows": RUNS * (1 + NODE_CALLS_PER_RUN), "single_rows": SINGLE_ROWS, "repeats": REPEATS},
        "sqlite": {**sqlite, "settings": "WAL, synchronous=NORMAL"},
        "postgresql": {**postgresql, "settings": f"PostgreSQL {version}, local TCP, fsync and synchronous_commit on"},
        "postgresql_vs_sqlite_batched": round(ratio, 2),
        "goal_batched_rows_per_s": GOAL_BATCHED,
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }
    print(f"{'':12}{'batched writer':>18}{'one per insert':>18}{'ratio':>8}  goal >= {GOAL_BATCHED:,} batched")
    for name, r in (("sqlite", sqlite), ("postgresql", postgresql)):
        met = "met" if r["batched_rows_per_s"] >= GOAL_BATCHED else "NOT met"
        print(f"{name:12}{r['batched_rows_per_s']:>11,} rows/s{r['single_rows_per_s']:>11,} rows/s"
              f"{r['batched_vs_single']:>7}x  {met}")
    print(f"PostgreSQL / SQLite, batched: {ratio:.2f}x ({result['workload']['batched_rows']:,} rows: {RUNS:,} runs, "
          f"each with {NODE_CALLS_PER_RUN} node calls; load average {result['load_average_1m']} "
          f"on {result['cpus']} cores)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
