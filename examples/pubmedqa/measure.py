"""Measure PubMedQA's headroom on val: analyst model x analyst prompt x solver model, each
config paired per example against the default (SmolLM2 in both nodes, default prompts).

The analyst runs once per analyst config, and every solver config is scored on those same
findings (greedy decoding: what full graph runs of that config give), so the grid costs one
analyst pass per analyst config, not one per config. Each analyst config's findings, answers
and per-example scores go to ``<out>/pubmedqa_<model>_<prompt>.json``; a config whose file
exists is extended to the examples it lacks instead of rerun, so the grid can be run in parts.

``python -m examples.pubmedqa.measure --limit 40``; docs/examples/pubmedqa.md records the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from examples.paper_eval import node_pass, paired
from examples.pubmedqa.agent import AgentConfig, analyst, model_options, solver
from examples.pubmedqa.data import load_split
from examples.pubmedqa.metric import metric, parse_decision
from optimas_lg.data import Example

RESULTS_PROMPT = (
    "You read medical research abstracts. In one or two sentences, state what the study found: its "
    "results and conclusion, with the numbers or the direction of the effect. Do not restate the aim or "
    "the methods.")
"""An analyst prompt a user writes after reading wrong answers: the default analyst restated each
study's aim and methods, leaving the solver nothing to decide from."""

ANALYST_PROMPTS = {"default": AgentConfig.analyst_prompt, "results": RESULTS_PROMPT}
OUT_DIR = Path("docs/examples/measure")


def short(model: str) -> str:
    """``local/qwen2.5-coder-0.5b`` -> ``qwen2.5-coder-0.5b`` (file names, table rows)."""
    return model.rsplit("/", 1)[-1]


def measure_analyst(examples: Sequence[Example], model: str, prompt: str) -> dict[str, Any]:
    """One analyst pass of (``model``, ``prompt``), then every solver model on its findings."""
    config = dataclasses.replace(AgentConfig(), analyst_model=model, analyst_prompt=ANALYST_PROMPTS[prompt])
    found, seconds, tokens = node_pass(analyst, [dict(e.inputs) for e in examples], config)
    print(f"analyst {short(model)}/{prompt}: {seconds:.0f} s, {tokens} tokens", flush=True)
    solvers = []
    for solver_model in model_options():
        solved, s_seconds, s_tokens = node_pass(solver, found, dataclasses.replace(config, solver_model=solver_model))
        print(f"  solver {short(solver_model)}: {s_seconds:.0f} s, {s_tokens} tokens", flush=True)
        solvers.append({"model": solver_model, "seconds": s_seconds, "tokens": s_tokens,
                        "answers": [s["answer"] for s in solved],
                        "scores": [metric(e, s) for e, s in zip(examples, solved)]})
    return {"analyst_model": model, "analyst_prompt": prompt, "keys": [e.key for e in examples],
            "labels": [e.labels["answer"] for e in examples], "seconds": seconds, "tokens": tokens,
            "findings": [s["analysis"] for s in found], "solvers": solvers}


def extend(done: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The measurement ``done`` of an analyst config followed by ``new``, of the same config on
    further examples (seconds and tokens added up)."""
    solvers = [{**old, "seconds": old["seconds"] + more["seconds"], "tokens": old["tokens"] + more["tokens"],
                "answers": old["answers"] + more["answers"], "scores": old["scores"] + more["scores"]}
               for old, more in zip(done["solvers"], new["solvers"], strict=True)]
    return {**done, **{k: done[k] + new[k] for k in ("keys", "labels", "seconds", "tokens", "findings")},
            "solvers": solvers}


def table(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per config: accuracy, the paired difference to the default on that config's
    examples (n), decisions, cost per run."""
    rows = {(r["analyst_model"], r["analyst_prompt"], s["model"]): (r, s) for r in results for s in r["solvers"]}
    default = AgentConfig()
    base = rows.get((default.analyst_model, "default", default.solver_model))
    if base is None:
        raise SystemExit("no measurement of the default config yet: run without --analyst-models/--analyst-prompts")
    base_scores = dict(zip(base[0]["keys"], base[1]["scores"]))
    labels = Counter(base[0]["labels"])
    n = len(base_scores)
    lines = [f"val n={n} labels {dict(labels)}; chance 1/3, always-'yes' {labels['yes'] / n:.3f}"]
    for (model, prompt, solver_model), (r, s) in rows.items():
        if not set(r["keys"]) <= set(base_scores):
            continue  # examples the default was not measured on: nothing to pair with
        gain, stderr = paired([base_scores[k] for k in r["keys"]], s["scores"])
        decisions = Counter(parse_decision(a) for a in s["answers"])
        runs = len(r["keys"])
        lines.append(f"analyst {short(model)}/{prompt:<8} solver {short(solver_model):<20} n={runs:<3} "
                     f"accuracy {statistics.fmean(s['scores']):.3f}  vs default {gain:+.3f} +- {stderr:.3f}  "
                     f"decisions {dict(decisions)}  per run {(r['seconds'] + s['seconds']) / runs:.1f} s, "
                     f"{(r['tokens'] + s['tokens']) / runs:.0f} tokens")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40, help="the first N val examples")
    parser.add_argument("--analyst-models", nargs="*", default=model_options(), help="analyst models to measure")
    parser.add_argument("--analyst-prompts", nargs="*", default=list(ANALYST_PROMPTS), choices=list(ANALYST_PROMPTS))
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the per-analyst-config JSON files")
    args = parser.parse_args()
    examples = load_split("val", limit=args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    for model in args.analyst_models:
        for prompt in args.analyst_prompts:
            path = args.out / f"pubmedqa_{short(model)}_{prompt}.json"
            done = json.loads(path.read_text()) if path.exists() else None
            todo = [e for e in examples if done is None or e.key not in done["keys"]]
            if todo:
                new = measure_analyst(todo, model, prompt)
                path.write_text(json.dumps(new if done is None else extend(done, new), indent=1) + "\n")
    print("\n".join(table([json.loads(p.read_text()) for p in sorted(args.out.glob("pubmedqa_*.json"))])))


if __name__ == "__main__":
    main()
