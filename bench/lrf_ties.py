"""Where the ties go: for each node of a system, the candidates the LRF curve's eval set is
built from, and why two distinct outputs of one call score the same.

Every candidate of every held-out call is scored as ``bench/lrf_curve.py`` scores its eval
set (same recording job, same ``PairConfig``), and its rollout's final output is kept. Each
comparison of two distinct outputs of one call is then one of:

* ``pair``: the scores differ (it makes a preference pair);
* ``same final``: the rest of the graph turned both into the same final output (the
  difference is absorbed downstream: no metric, however fine, could tell them apart);
* ``both zero``: different final outputs, both scored 0 (for STaRK: no gold entity in
  the ranking at all);
* ``both one``: different final outputs, both scored 1, the metric's best (for STaRK: a
  gold entity first in both rankings, the rest moved);
* ``same score``: different final outputs, the same score between 0 and 1 (for STaRK:
  the first gold entity at the same rank below the top, the rest of the ranking moved).

For a node whose output is one ranked list, ``prefix tie`` and ``prefix pair`` count the
comparisons where one output is a prefix of the other (only a ``top_k`` differed), and
``longer wins`` the prefix pairs the longer list won. ``at 1`` counts the comparisons
(and ties) of calls whose candidate at the current knobs already scored 1. Prints one Markdown table; run from
the repository root after the curve's recording exists:

    python bench/lrf_ties.py --system stark
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from lrf_curve import REPO, SYSTEMS, Cache, workspace

from optimas_lg.execution.replay import rollout_from, run_node
from optimas_lg.lrf.collect import collect_node_pairs
from optimas_lg.lrf.pairs import canonical_json
from optimas_lg.store import Store

OUT = REPO / "docs" / "bench" / "lrf_ties.json"


def _prefix_longer(a: Any, b: Any) -> int:
    """+1 when ``a``'s only list value extends ``b``'s (same keys otherwise), -1 when ``b``'s
    extends ``a``'s, 0 when neither is a prefix of the other."""
    lists = [k for k, v in a.items() if isinstance(v, list)]
    if a.keys() != b.keys() or len(lists) != 1 or any(a[k] != b[k] for k in a if k != lists[0]):
        return 0
    x, y = a[lists[0]], b[lists[0]]
    if len(x) > len(y) and x[: len(y)] == y:
        return 1
    if len(y) > len(x) and y[: len(x)] == x:
        return -1
    return 0


def scored(seen: list[dict], system: Any, node: str, state: Any, output: Any, example: Any, metric: Any,
           knobs: dict, **kw: Any) -> list:
    """``rollout_from``, keeping each candidate's output, final output and score in ``seen``."""
    rollouts = rollout_from(system, node, state, output, example, metric, knobs, **kw)
    final = rollouts[0].final_output if rollouts else None
    seen.append({"example": example.key, "input": canonical_json(state), "output": output,
                 "output_key": canonical_json(output), "final": canonical_json(final),
                 "score": rollouts[0].score if rollouts else None})
    return rollouts


def classify(candidates: list[dict]) -> Counter:
    """Counts of the comparison kinds (module docstring) over every two distinct outputs of one call."""
    out: Counter = Counter()
    by_call: dict[tuple[str, str], dict[str, dict]] = {}
    for cand in candidates:
        by_call.setdefault((cand["example"], cand["input"]), {}).setdefault(cand["output_key"], cand)
    for group in by_call.values():
        at_best = next(iter(group.values()))["score"] == 1  # the current knobs' candidate comes first
        for a, b in itertools.combinations(group.values(), 2):
            out["comparisons"] += 1
            out["at 1: comparisons"] += at_best
            out["at 1: ties"] += at_best and a["score"] == b["score"]
            longer = _prefix_longer(a["output"], b["output"])
            if a["score"] != b["score"]:
                out["pair"] += 1
                if longer:
                    out["prefix pair"] += 1
                    out["longer wins"] += (a["score"] > b["score"]) == (longer > 0)
                continue
            out["tie"] += 1
            if a["final"] == b["final"]:
                out["same final"] += 1
            elif a["score"] == 0:
                out["both zero"] += 1
            elif a["score"] == 1:
                out["both one"] += 1
            else:
                out["same score"] += 1
            out["prefix tie"] += bool(longer)
    out["calls"] = len(by_call)
    out["candidates"] = sum(map(len, by_call.values()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="stark")
    args = parser.parse_args()
    os.chdir(REPO)
    bench = SYSTEMS[args.system]
    cache = Cache(args.system)
    config = dataclasses.replace(bench.eval_pairs, concurrency=1)
    table: dict[str, dict] = {}
    with Store(cache.store_url()) as store:
        ws, _, held = workspace(bench, cache, store)
        knobs = ws.system.knob_values(bench.knobs)
        for node in ws.tunable_nodes():
            seen: list[dict] = []
            calls, run_keys = ws.node_calls(node, held)
            examples = {e.key: e for e in [*ws.trainset, *ws.testset]}
            collect_node_pairs(ws.system, node, calls, examples, run_keys, ws.metric, knobs, config,
                               run_node=run_node, rollout_from=functools.partial(scored, seen),
                               recorded_step=ws.recorded_step)
            table[node] = dict(classify([c for c in seen if c["score"] is not None]))
    OUT.write_text(json.dumps({"system": args.system, "pairs": dataclasses.asdict(config), "nodes": table},
                              indent=1) + "\n")
    kinds = ["calls", "candidates", "comparisons", "pair", "tie", "same final", "both zero", "both one", "same score",
             "prefix tie", "prefix pair", "longer wins", "at 1: comparisons", "at 1: ties"]
    print("| node | " + " | ".join(kinds) + " |\n| --- |" + " ---: |" * len(kinds))
    for node, row in table.items():
        print(f"| {node} | " + " | ".join(str(row.get(k, 0)) for k in kinds) + " |")
    print(f"wrote {Path(OUT).relative_to(REPO)}")


if __name__ == "__main__":
    main()
