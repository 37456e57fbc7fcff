"""Measure a system's ``Demos`` knob: the optimas-lg loop on the training split with only that
knob free, per seed, then every demo set its gate tested (kept or rejected) scored on val and
test against the knob held at ``[]``, paired.

Every other knob stays at its default in both arms, so the loop's only lever is the demo set
(on this CPU the loop over all knobs does not fit a useful budget). The loop sees only the
training split: it carves its gate examples out of it (``--val-fraction``; the gate needs at
least 10). ``--system`` is an example package exporting ``builder``, ``graph``, ``metric``,
``load_split`` and ``AgentConfig`` with one ``Demos`` knob.

``nice -n 10 python -m examples.demos_ab --system examples.hotpotqa --seeds 0 1 --budget 100
--out docs/examples/measure/hotpotqa_demos.json``; docs/optimizers.md records the output.
``--stores sqlite:///.../optimas.db ...`` scores the sets of finished loops (job 1 of each store).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType

from examples.paper_eval import evaluate, paired
from optimas_lg.api import optimize
from optimas_lg.graph.system import System
from optimas_lg.loop.records import Decision
from optimas_lg.loop.report import load_history
from optimas_lg.store import Store


def demos_knob(system: ModuleType) -> str:
    """The name of the system's one ``Demos`` knob."""
    names = [k.name for k in System.load(system.builder).knobs.values() if k.kind == "demos"]
    if len(names) != 1:
        raise SystemExit(f"{system.__name__} has {len(names)} Demos knobs ({names}); this measures exactly one")
    return names[0]


def sources_heading(knob: str) -> str:
    return f"### `{knob}`: where each demo came from"


def demo_sources(report: str | None, knob: str) -> str:
    """The report's table of where each kept demo of ``knob`` came from ("" when none was kept)."""
    heading = sources_heading(knob)
    if not report or heading not in report:
        return ""
    section = report.split(heading, 1)[1]
    return heading + section.split("\n#", 1)[0].rstrip()


def tested_sets(decisions: list[Decision], knob: str) -> list[list[dict]]:
    """The demo sets the gate tested, kept or not, in order."""
    return [d.changes[knob].new for d in decisions if knob in d.changes]


def finished_job(url: str, knob: str) -> dict:
    """What a finished loop's store says: the sets its gate tested and the one it kept."""
    history = load_history(Store(url), 1)
    decisions = [logged.record for logged in history.decisions]
    kept = [d.changes[knob].new for d in decisions if d.accepted and knob in d.changes]
    return {"store": url, "tested": tested_sets(decisions, knob), "demos": kept[-1] if kept else []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, help="example package, e.g. examples.offline_qa")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--budget", type=int, default=100, help="system runs per loop (max_system_runs)")
    parser.add_argument("--iterations", type=int, default=1, help="rounds per loop (max_iterations)")
    parser.add_argument("--val-fraction", type=float, default=0.5, help="share of train the loop's gate uses")
    parser.add_argument("--stores", nargs="+", help="score the sets of these finished loops instead of running")
    parser.add_argument("--out", type=Path, help="write per-example scores, kept demos and sources to this JSON")
    args = parser.parse_args()
    system = importlib.import_module(args.system)
    knob = demos_knob(system)
    train = system.load_split("train")
    jobs = [finished_job(url, knob) for url in args.stores or []]
    for seed in [] if args.stores else args.seeds:
        start = time.perf_counter()
        store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='demos-ab-')}/optimas.db")
        result = optimize(system.builder, train, system.metric, seed=seed, store=store,
                          settings={"kinds": ["demos"], "val_fraction": args.val_fraction},
                          max_system_runs=args.budget, max_iterations=args.iterations, progress=True)
        report = Path(result.report).read_text() if result.report else None
        jobs.append({"seed": seed, "seconds": round(time.perf_counter() - start), "stop": result.stop_reason,
                     "gate_val": [result.val_before, result.val_after], "demos": result.best_knobs[knob],
                     "tested": tested_sets(result.decisions, knob), "sources": demo_sources(report, knob)})
        print(f"seed {seed}: {jobs[-1]['seconds']} s, stop {result.stop_reason}, loop val "
              f"{result.val_before:.3f} -> {result.val_after:.3f}, {len(jobs[-1]['demos'])} demos kept", flush=True)
        print(jobs[-1]["sources"] or "(no demos kept)", flush=True)
    # a loop that kept [] scores as the other arm by construction; every tested set is scored
    sets = {f"job {i + 1} set {j + 1}{' (kept)' if demos == job['demos'] else ''}": demos
            for i, job in enumerate(jobs) for j, demos in enumerate(job["tested"])}
    scored = {}
    for split in ("val", "test") if sets else ():
        examples = system.load_split(split)
        configs = [system.AgentConfig(), *(dataclasses.replace(system.AgentConfig(), **{knob: demos})
                                           for demos in sets.values())]
        scores = [[score for _, score in evaluate(system, examples, config)] for config in configs]
        scored[split] = {"keys": [ex.key for ex in examples], "no demos": scores[0], **dict(zip(sets, scores[1:]))}
        for name, s in zip(sets, scores[1:]):
            gain, stderr = paired(scores[0], s)
            print(f"{split} n={len(examples)} {name}: {statistics.fmean(scores[0]):.3f} without demos, "
                  f"{statistics.fmean(s):.3f} with them ({gain:+.3f} +- {stderr:.3f} paired)", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"system": args.system, "budget": args.budget, "jobs": jobs,
                                        "scores": scored}, indent=1) + "\n")


if __name__ == "__main__":
    main()
