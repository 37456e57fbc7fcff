"""optimas-lg against plain Optuna TPE on the order-support agent (issue 13, item 3).

The system is ``tests/graphs/orders.py``: async LLM triage (a deterministic fake chat
model), ``MessagesState``, a lookup subgraph whose two numeric knobs only pay off
together, and a refund desk the default knobs never reach. Both methods get the same
data (``orders.examples(72, seed)``: 24 train, 24 validation, 24 test) and the same
budget of system runs, for several seeds:

- ``optimas``: ``optimas_lg.optimize`` as shipped (default ``OptimizeConfig``, only the
  seed and ``max_system_runs`` set); its runs count everything the job ran (baseline,
  collect, pair rollouts, searches, validation, final test).
- ``optuna``: a seeded ``TPESampler`` over every non-prompt knob, ``study.optimize`` on the
  mean metric over the 24 training examples, ``budget // 24`` trials; the best trial's
  config is then scored on validation and test (those runs are not counted: Optuna's
  count is its trials only, in its favour).

    OPTIMAS_LG_HOME=$(mktemp -d) OPTIMAS_LG_MODEL_CACHE=storage/models \\
        .venv/bin/python -m bench.orders_vs_optuna [--seeds 0,1,2] [--budget 960]

Prints one line per method and seed and a mean row; writes docs/bench/orders_vs_optuna.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/orders_vs_optuna.py` must import tests/graphs

import optimas_lg  # noqa: E402
from optimas_lg.execution.runner import run_examples  # noqa: E402
from optimas_lg.graph.knobs import defaults  # noqa: E402
from optimas_lg.loop.config import OptimizeConfig  # noqa: E402
from optimas_lg.proposers.numeric import suggest  # noqa: E402
from optimas_lg.store import Store, queries  # noqa: E402
from tests.graphs import orders  # noqa: E402

OUT = ROOT / "docs" / "bench" / "orders_vs_optuna.json"


def split(seed: int) -> tuple[list, list, list]:
    data = orders.examples(72, seed=seed)
    return data[:24], data[24:48], data[48:]


def mean_score(system: optimas_lg.System, examples: list, knobs: dict[str, Any], store: Store) -> float:
    summary = run_examples(system, examples, orders.resolved, knobs, store, concurrency=8, progress=False)
    return sum(r.score or 0.0 for r in summary.results) / len(examples)


def run_optimas(seed: int, budget: int, home: Path) -> dict[str, Any]:
    train, val, test = split(seed)
    store = Store(f"sqlite:///{home}/optimas-{seed}.db")
    start = time.perf_counter()
    result = optimas_lg.optimize(orders.graph, train, orders.resolved, valset=val, testset=test, store=store,
                                 settings=OptimizeConfig(seed=seed, write_report=False), max_system_runs=budget,
                                 progress=False)
    return {"method": "optimas", "seed": seed, "val": result.val_after, "test": result.test_after,
            "val_before": result.val_before, "test_before": result.test_before,
            "system_runs": queries.job_spend(store, result.job_id)[0], "seconds": round(time.perf_counter() - start, 1),
            "best": {k: v for k, v in result.best_knobs.items() if k != "triage_prompt"}}


def run_optuna(seed: int, budget: int, home: Path) -> dict[str, Any]:
    train, val, test = split(seed)
    system = optimas_lg.System.load(orders.graph)
    store = Store(f"sqlite:///{home}/optuna-{seed}.db")
    knobs = [k for k in system.knobs.values() if k.kind != "prompt"]
    base = defaults(system.knobs)
    start = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        return mean_score(system, train, {**base, **{k.name: suggest(trial, k) for k in knobs}}, store)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    trials = budget // len(train)
    study.optimize(objective, n_trials=trials)
    best = {**base, **{k.name: suggest(study.best_trial, k) for k in knobs}}
    seconds = time.perf_counter() - start
    return {"method": "optuna", "seed": seed, "val": mean_score(system, val, best, store),
            "test": mean_score(system, test, best, store), "system_runs": trials * len(train),
            "seconds": round(seconds, 1), "best": {k.name: best[k.name] for k in knobs}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget", type=int, default=960, help="system runs per method and seed")
    parser.add_argument("--home", default="/tmp/orders_vs_optuna", help="where the stores go")
    args = parser.parse_args()
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for run in (run_optuna, run_optimas):
            row = run(seed, args.budget, home)
            rows.append(row)
            print(f"{row['method']:8} seed {seed}  val {row['val']:.3f}  test {row['test']:.3f}  "
                  f"runs {row['system_runs']:4}  {row['seconds']:6.1f}s  {row['best']}", flush=True)
    for method in ("optuna", "optimas"):
        mine = [r for r in rows if r["method"] == method]
        print(f"{method:8} mean    val {sum(r['val'] for r in mine) / len(mine):.3f}  "
              f"test {sum(r['test'] for r in mine) / len(mine):.3f}  "
              f"runs {sum(r['system_runs'] for r in mine) / len(mine):6.1f}")
    OUT.write_text(json.dumps({"budget": args.budget, "machine": f"{platform.machine()}, {platform.python_version()}",
                               "rows": rows}, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
