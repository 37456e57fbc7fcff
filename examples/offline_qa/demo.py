"""``make demo``: optimize the offline QA agent end to end and show what changed.

Runs optimas-lg's optimizer loop on the agent in ``examples/offline_qa`` with the local
SmolLM2-135M model (no network), then prints the paired gain on the held-out test
split and where the report is.
"""

from __future__ import annotations

import math
import time

from rich.console import Console

from examples.offline_qa import builder, load_split, metric
from optimas_lg import optimize
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.report import load_history
from optimas_lg.lrf import LRFConfig
from optimas_lg.lrf.collect import PairConfig
from optimas_lg.store import Store

# Sized for about ten minutes on an idle 2-core CPU: RL on LoRA weights is left out here (it
# works, see docs/optimizers.md, but a GRPO run alone takes minutes on this machine).
DEMO_CONFIG = OptimizeConfig(
    kinds=["choice", "int", "float", "prompt"],
    proposers={"prompt": {"rounds": 1, "num_candidates": 3, "max_tokens": 120}},
    pairs=PairConfig(samples=3, calls_per_node=12),
    lrf=LRFConfig(epochs=3, max_tokens=128, progress=False),
    adapt_examples=4,
)
# The budget counts system runs, not seconds, so a slower machine gets the same result.
MAX_SYSTEM_RUNS = 700
MAX_ITERATIONS = 6


def _test_scores(store: Store, job_id: int, label: str) -> list[float]:
    found = load_history(store, job_id).evaluation("test", label)
    assert found is not None, f"job {job_id} has no test evaluation {label!r}"
    return [s or 0.0 for s in found.scores]


def main() -> None:
    console = Console()
    train, val, test = load_split("train"), load_split("val"), load_split("test")
    console.print(f"[bold]optimas-lg demo[/]: optimizing examples/offline_qa (rewrite → retrieve → answer) on "
                  f"SmolLM2-135M, {len(train)} train / {len(val)} val / {len(test)} test questions, "
                  f"budget {MAX_ITERATIONS} iterations or {MAX_SYSTEM_RUNS} system runs", highlight=False)
    start = time.perf_counter()
    store = Store()
    result = optimize(builder, train, metric, valset=val, testset=test, settings=DEMO_CONFIG, store=store,
                      max_iterations=MAX_ITERATIONS, max_system_runs=MAX_SYSTEM_RUNS)
    changed = {k: v for k, v in result.best_knobs.items() if result.initial_knobs.get(k) != v}
    console.print(f"\njob {result.job_id}: val {result.val_before:.3f} → {result.val_after:.3f}  "
                  f"({result.stop_reason})\nchanged knobs: {changed or 'none'}\nreport: {result.report}",
                  highlight=False)

    before = _test_scores(store, result.job_id, "baseline")
    after = _test_scores(store, result.job_id, "final")
    diffs = [b - a for a, b in zip(before, after, strict=True)]
    mean = sum(diffs) / len(diffs)
    stderr = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    console.print(f"\n[bold]test[/] ({len(test)} questions): {result.test_before:.3f} → {result.test_after:.3f}  "
                  f"gain {mean:+.3f} ± {stderr:.3f} (paired stderr)", highlight=False)
    console.print(f"done in {time.perf_counter() - start:.0f}s; store job {result.job_id}: "
                  f"`optimas-lg report {result.job_id}` rewrites the report", highlight=False)


if __name__ == "__main__":
    main()
