"""Node-call rows per second ingested into SQLite through the public store API:
the batched background writer vs one insert (one transaction) per row.

Run: .venv/bin/python bench/store_ingest.py   (writes docs/bench/store_ingest.json)
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path

from optimas_lg.store import Store
from optimas_lg.store import models as m

ROWS_BATCHED = 50_000
ROWS_SINGLE = 2_000


def _row(run_id: str, i: int) -> dict:
    return {"id": str(uuid.uuid4()), "run_id": run_id, "node": f"node{i % 10}", "step": i,
            "inputs": {"question": f"question {i}", "context": ["fact"] * 5},
            "reads": ["question", "context"], "output": {"answer": f"answer {i}"}, "knobs": {"top_k": 3}}


def _fresh_store(folder: str, name: str) -> tuple[Store, str]:
    store = Store(f"sqlite:///{folder}/{name}.db")
    run_id = str(uuid.uuid4())
    store.insert_many(m.Run, [{"id": run_id}])
    return store, run_id


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store, run_id = _fresh_store(folder, "batched")
        rows = [_row(run_id, i) for i in range(ROWS_BATCHED)]
        start = time.perf_counter()
        for row in rows:
            store.writer.put(m.NodeCall, row)
        store.writer.flush()
        batched = ROWS_BATCHED / (time.perf_counter() - start)
        assert store.count(m.NodeCall) == ROWS_BATCHED
        store.close()

        store, run_id = _fresh_store(folder, "single")
        rows = [_row(run_id, i) for i in range(ROWS_SINGLE)]
        start = time.perf_counter()
        for row in rows:
            store.insert_many(m.NodeCall, [row])
        single = ROWS_SINGLE / (time.perf_counter() - start)
        store.close()

    result = {"batched_rows_per_s": round(batched), "single_rows_per_s": round(single),
              "ratio": round(batched / single, 1), "goal_batched_rows_per_s": 20_000,
              "rows": {"batched": ROWS_BATCHED, "single": ROWS_SINGLE}}
    print(f"batched writer : {batched:>10,.0f} rows/s  ({ROWS_BATCHED:,} rows)")
    print(f"one per insert : {single:>10,.0f} rows/s  ({ROWS_SINGLE:,} rows)")
    print(f"ratio          : {batched / single:>10.1f}x   goal >= 20,000 rows/s batched: "
          f"{'met' if batched >= 20_000 else 'NOT met'}")
    out = Path(__file__).resolve().parent.parent / "docs" / "bench" / "store_ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
