"""Measure the ``answer_demos`` knob: the optimas-lg loop on HotpotQA train with that knob free,
per seed, every demo set its gate tested (kept or rejected) scored on val and test against the
knob held at ``[]``, paired.

Every other knob stays at its default in both arms, so the loop's only lever is the demo set
(on this CPU the loop over all knobs does not fit a useful budget). The loop sees only the
training split: it carves its own gate examples out of it.

``nice -n 10 python -m examples.hotpotqa.demos_ab --seeds 0 1 --budget 100
--out docs/examples/measure/hotpotqa_demos.json``; docs/optimizers.md records the output.
``--stores sqlite:///.../optimas.db ...`` scores the sets of finished loops (job 1 of each store).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from examples.hotpotqa.agent import AgentConfig, builder
from examples.hotpotqa.data import load_split
from examples.hotpotqa.measure import run_configs
from examples.hotpotqa.metric import metric
from examples.paper_eval import paired
from optimas_lg.api import optimize
from optimas_lg.loop.records import Decision
from optimas_lg.loop.report import load_history
from optimas_lg.store import Store

SOURCES_HEADING = "### `answer_demos`: where each demo came from"


def demo_sources(report: str | None) -> str:
    """The report's table of where each kept demo came from ("" when none was kept)."""
    if not report or SOURCES_HEADING not in report:
        return ""
    section = report.split(SOURCES_HEADING, 1)[1]
    return SOURCES_HEADING + section.split("\n#", 1)[0].rstrip()


def tested_sets(decisions: list[Decision]) -> list[list[dict]]:
    """The demo sets the gate tested, kept or not, in order."""
    return [d.changes["answer_demos"].new for d in decisions if "answer_demos" in d.changes]


def finished_job(url: str) -> dict:
    """What a finished loop's store says: the sets its gate tested and the one it kept."""
    history = load_history(Store(url), 1)
    decisions = [logged.record for logged in history.decisions]
    kept = [d.changes["answer_demos"].new for d in decisions if d.accepted and "answer_demos" in d.changes]
    return {"store": url, "tested": tested_sets(decisions), "demos": kept[-1] if kept else []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--budget", type=int, default=100, help="system runs per loop (max_system_runs)")
    parser.add_argument("--iterations", type=int, default=1, help="rounds per loop (max_iterations): a round "
                        "that spends no system run does not bring the run budget closer")
    parser.add_argument("--stores", nargs="+", help="score the sets of these finished loops instead of running")
    parser.add_argument("--out", type=Path, help="write per-example scores, kept demos and sources to this JSON")
    args = parser.parse_args()
    train = load_split("train")
    jobs = [finished_job(url) for url in args.stores or []]
    for seed in [] if args.stores else args.seeds:
        start = time.perf_counter()
        store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='hotpot-demos-')}/optimas.db")
        result = optimize(builder, train, metric, settings={"kinds": ["demos"]}, seed=seed, store=store,
                          max_system_runs=args.budget, max_iterations=args.iterations, patience=None, progress=True)
        report = Path(result.report).read_text() if result.report else None
        jobs.append({"seed": seed, "seconds": round(time.perf_counter() - start), "stop": result.stop_reason,
                     "gate_val": [result.val_before, result.val_after], "demos": result.best_knobs["answer_demos"],
                     "tested": tested_sets(result.decisions),
                     "sources": demo_sources(report)})
        print(f"seed {seed}: {jobs[-1]['seconds']} s, stop {result.stop_reason}, loop val "
              f"{result.val_before:.3f} -> {result.val_after:.3f}, {len(jobs[-1]['demos'])} demos kept", flush=True)
        print(jobs[-1]["sources"] or "(no demos kept)", flush=True)
    # a loop that kept [] scores as the other arm by construction; every tested set is scored
    sets = {f"job {i + 1} set {j + 1}{' (kept)' if demos == job['demos'] else ''}": demos
            for i, job in enumerate(jobs) for j, demos in enumerate(job["tested"])}
    scored = {}
    for split in ("val", "test") if sets else ():
        examples = load_split(split)
        runs = run_configs(examples, [AgentConfig(), *(AgentConfig(answer_demos=demos) for demos in sets.values())])
        scores = [[metric(ex, state) for ex, (state, _, _) in zip(examples, run)] for run in runs]
        scored[split] = {"keys": [ex.key for ex in examples], "no demos": scores[0], **dict(zip(sets, scores[1:]))}
        for name, s in zip(sets, scores[1:]):
            gain, stderr = paired(scores[0], s)
            print(f"{split} n={len(examples)} {name}: F1 {statistics.fmean(scores[0]):.3f} without demos, "
                  f"{statistics.fmean(s):.3f} with them ({gain:+.3f} +- {stderr:.3f} paired)", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"budget": args.budget, "jobs": jobs, "scores": scored}, indent=1) + "\n")


if __name__ == "__main__":
    main()
