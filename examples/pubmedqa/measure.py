"""Measure PubMedQA's headroom: analyst model x analyst prompt x solver model x solver
prompt (x LoRA adapters of the SmolLM2 solver, ``--solver-adapters``), each config paired per
example against the default (SmolLM2 in both nodes, default prompts, no adapter).

The analyst runs once per analyst config, and every solver config is scored on those same
findings (greedy decoding: what full graph runs of that config give), so the grid costs one
analyst pass per analyst config, not one per config. Each analyst config's findings, and each
solver config's answers and per-example scores on them, go to
``<out>/pubmedqa_<split>_<model>_<prompt>.json``. A rerun adds only what a file lacks: the
analyst on examples it has not seen, a solver config on findings it has not answered, so the
grid can be run in parts and a new solver prompt costs only solver calls.

``python -m examples.pubmedqa.measure --limit 120`` (the whole val); docs/examples/pubmedqa.md records the output.
Prompts and adapters are developed on ``--split train`` and measured on val.
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

from examples.models import LOCAL_MODEL
from examples.paper_eval import node_pass, paired
from examples.pubmedqa.agent import AgentConfig, analyst, model_options, solver
from examples.pubmedqa.data import load_split
from examples.pubmedqa.metric import metric, parse_decision
from optimas_lg.data import Example
from optimas_lg.graph.knobs import model_name

RESULTS_PROMPT = (
    "You read medical research abstracts. In one or two sentences, state what the study found: its "
    "results and conclusion, with the numbers or the direction of the effect. Do not restate the aim or "
    "the methods.")
"""An analyst prompt a user writes after reading wrong answers: the default analyst restated each
study's aim and methods, leaving the solver nothing to decide from."""

VERDICT_PROMPT = (
    "You read medical research abstracts. Answer the question with yes, no or maybe, then give the result "
    "of the abstract that shows it, in one sentence.")
"""The analyst states the answer it reads in the abstract: on train the Qwen solver answered no to
findings that plainly said yes ("Pancreas transplantation is a second chance for patients with type 1
diabetic nephropathy"), while findings that open with "Yes," it followed."""

ANALYST_PROMPTS = {"default": AgentConfig.analyst_prompt, "results": RESULTS_PROMPT, "verdict": VERDICT_PROMPT}
EVIDENCE_PROMPT = (
    "You judge what the findings of a medical study say about a research question. Answer yes if the "
    "findings show what the question asks (an effect, a difference, an association, or that a method works), "
    "no if they show it does not or find no effect or difference, and maybe if the findings are mixed or "
    "uncertain. Reply with one word: yes, no or maybe.")
"""A solver prompt that says when each answer fits, against the Qwen solver's lean to no (on the first
20 train examples it said no to 13 of the Qwen analyst's findings, where 5 are labelled no)."""

SOLVER_PROMPTS = {"default": AgentConfig.solver_prompt, "evidence": EVIDENCE_PROMPT}
OUT_DIR = Path("docs/examples/measure")


def short(model: str) -> str:
    """``local/qwen2.5-coder-0.5b`` -> ``qwen2.5-coder-0.5b`` (file names, table rows)."""
    return model.rsplit("/", 1)[-1]


def measure_analyst(examples: Sequence[Example], model: str, prompt: str) -> dict[str, Any]:
    """One analyst pass of (``model``, ``prompt``) over ``examples``: the findings, no solver yet."""
    config = dataclasses.replace(AgentConfig(), analyst_model=model, analyst_prompt=ANALYST_PROMPTS[prompt])
    found, seconds, tokens = node_pass(analyst, [dict(e.inputs) for e in examples], config)
    print(f"analyst {short(model)}/{prompt}: {seconds:.0f} s, {tokens} tokens", flush=True)
    return {"analyst_model": model, "analyst_prompt": prompt, "keys": [e.key for e in examples],
            "labels": [e.labels["answer"] for e in examples], "seconds": seconds, "tokens": tokens,
            "findings": [s["analysis"] for s in found], "solvers": []}


def extend(done: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The analyst measurement ``done`` followed by ``new``, of the same analyst config on further
    examples (seconds and tokens added up). Solver entries keep their answers: those cover a prefix
    of the keys, and ``measure_solver`` answers the rest."""
    return {**done, **{k: done[k] + new[k] for k in ("keys", "labels", "seconds", "tokens", "findings")}}


def solver_name(model: str, adapter: str | None) -> str:
    """A solver's model in table rows, named as the node requests it (``smollm2-135m@<adapter>``)."""
    return short(model_name(model, adapter))


def measure_solver(record: dict[str, Any], examples: dict[str, Example], model: str, prompt: str,
                   adapter: str | None = None) -> dict[str, Any]:
    """Solver config (``model``, ``prompt``, ``adapter``) on the findings of ``record`` it has not
    answered yet: its entry in ``record["solvers"]``, created or extended (``examples`` by key give
    the questions)."""
    config_id = (model, prompt, adapter)
    entry = next((s for s in record["solvers"] if (s["model"], s["prompt"], s["adapter"]) == config_id), None)
    if entry is None:
        entry = {"model": model, "prompt": prompt, "adapter": adapter, "seconds": 0.0, "tokens": 0, "answers": [],
                 "scores": []}
        record["solvers"].append(entry)
    done = len(entry["answers"])  # answers cover a prefix of the keys
    keys = record["keys"][done:]
    if keys:
        states = [{**examples[k].inputs, "analysis": f} for k, f in zip(keys, record["findings"][done:])]
        config = dataclasses.replace(AgentConfig(), solver_model=model, solver_prompt=SOLVER_PROMPTS[prompt],
                                     solver_adapter=adapter)
        solved, seconds, tokens = node_pass(solver, states, config)
        print(f"  solver {solver_name(model, adapter)}/{prompt} on {len(keys)}: {seconds:.0f} s, {tokens} tokens",
              flush=True)
        entry["seconds"] += seconds
        entry["tokens"] += tokens
        entry["answers"] += [s["answer"] for s in solved]
        entry["scores"] += [metric(examples[k], s) for k, s in zip(keys, solved)]
    return entry


def table(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per config: accuracy, the paired difference to the default on that config's
    examples (n), decisions, cost per run."""
    rows = {(r["analyst_model"], r["analyst_prompt"], s["model"], s["prompt"], s["adapter"]): (r, s)
            for r in results for s in r["solvers"]}
    default = AgentConfig()
    base = rows.get((default.analyst_model, "default", default.solver_model, "default", default.solver_adapter))
    if base is None:
        raise SystemExit("no measurement of the default config yet: run with the default models and prompts included")
    base_scores = dict(zip(base[0]["keys"], base[1]["scores"]))
    labels = Counter(base[0]["labels"][:len(base_scores)])
    n = len(base_scores)
    lines = [f"n={n} labels {dict(labels)}; chance 1/3, always-'yes' {labels['yes'] / n:.3f}"]
    for (model, prompt, solver_model, solver_prompt, adapter), (r, s) in rows.items():
        keys = r["keys"][:len(s["scores"])]
        if not s["scores"] or not set(keys) <= set(base_scores):
            continue  # examples the default was not measured on: nothing to pair with
        gain, stderr = paired([base_scores[k] for k in keys], s["scores"])
        decisions = Counter(parse_decision(a) for a in s["answers"])
        analyst_share = r["seconds"] / len(r["keys"]), r["tokens"] / len(r["keys"])
        lines.append(f"analyst {short(model)}/{prompt:<8} "
                     f"solver {solver_name(solver_model, adapter)}/{solver_prompt:<8} "
                     f"n={len(keys):<3} accuracy {statistics.fmean(s['scores']):.3f}  "
                     f"vs default {gain:+.3f} +- {stderr:.3f}  decisions {dict(decisions)}  "
                     f"per run {analyst_share[0] + s['seconds'] / len(keys):.1f} s, "
                     f"{analyst_share[1] + s['tokens'] / len(keys):.0f} tokens")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val", choices=["train", "val"], help="develop on train, measure on val")
    parser.add_argument("--limit", type=int, default=120, help="the first N examples of the split (val has 120)")
    parser.add_argument("--analyst-models", nargs="*", default=model_options(), help="analyst models to measure")
    parser.add_argument("--analyst-prompts", nargs="*", default=list(ANALYST_PROMPTS), choices=list(ANALYST_PROMPTS))
    parser.add_argument("--solver-models", nargs="*", default=model_options(), help="solver models to measure")
    parser.add_argument("--solver-prompts", nargs="*", default=list(SOLVER_PROMPTS), choices=list(SOLVER_PROMPTS))
    parser.add_argument("--solver-adapters", nargs="*", default=[],
                        help=f"LoRA adapters of the {short(LOCAL_MODEL)} solver (python -m examples.pubmedqa.lora)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the per-analyst-config JSON files")
    args = parser.parse_args()
    split = load_split(args.split)
    examples = split[:args.limit]
    by_key = {e.key: e for e in split}
    args.out.mkdir(parents=True, exist_ok=True)
    for model in args.analyst_models:
        for prompt in args.analyst_prompts:
            path = args.out / f"pubmedqa_{args.split}_{short(model)}_{prompt}.json"
            record = json.loads(path.read_text()) if path.exists() else None
            todo = [e for e in examples if record is None or e.key not in record["keys"]]
            if todo:
                new = measure_analyst(todo, model, prompt)
                record = new if record is None else extend(record, new)
            # every solver config asked for now or measured before, on every finding of the file
            configs = {(m, p, None) for m in args.solver_models for p in args.solver_prompts}
            configs |= {(LOCAL_MODEL, p, a) for a in args.solver_adapters for p in args.solver_prompts}
            configs |= {(s["model"], s["prompt"], s["adapter"]) for s in record["solvers"]}
            for solver_model, solver_prompt, adapter in sorted(configs, key=str):
                measure_solver(record, by_key, solver_model, solver_prompt, adapter)
                path.write_text(json.dumps(record, indent=1) + "\n")
    paths = sorted(args.out.glob(f"pubmedqa_{args.split}_*.json"))
    print("\n".join(table([json.loads(p.read_text()) for p in paths])))


if __name__ == "__main__":
    main()
