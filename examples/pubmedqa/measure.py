"""Measure PubMedQA's headroom on val: the default config against a small grid over the
solver's model and prompt, paired per example.

The analyst's output is computed once, by a full graph run of the default config, and every
solver config is scored on those same findings (greedy decoding: what a full run with the
default analyst would give), so the grid costs one analyst pass, not one per config.

``python -m examples.pubmedqa.measure --limit 40``; docs/examples/pubmedqa.md records the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from langgraph.runtime import Runtime

from examples import pubmedqa
from examples.paper_eval import evaluate, paired
from examples.pubmedqa.agent import AgentConfig, State, model_options, solver
from examples.pubmedqa.data import load_split
from examples.pubmedqa.metric import metric, parse_decision

CRITERIA_PROMPT = (
    "Decide whether the findings answer the research question with yes, no or maybe. Answer yes if they "
    "show the effect or association asked about, no if they show none, maybe only if they are mixed. "
    "Reply with one word.")
"""A solver prompt that states what each answer means, as a user would write after reading wrong answers."""


def solve(states: list[State], config: AgentConfig, concurrency: int = 8) -> list[State]:
    """The solver node on each state under ``config`` (the analyst's findings already in them)."""
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda s: {**s, **solver(s, Runtime(context=config))}, states))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40, help="the first N val examples")
    args = parser.parse_args()
    examples = load_split("val", limit=args.limit)
    start = time.perf_counter()
    default = AgentConfig()
    runs = evaluate(pubmedqa, examples, default)
    print(f"default (full graph runs): {time.perf_counter() - start:.0f} s")
    states = [state for state, _ in runs]
    base = [score for _, score in runs]
    rows = [("default", base, [s["answer"] for s in states])]
    for model in model_options():
        for name, prompt in (("default prompt", default.solver_prompt), ("criteria prompt", CRITERIA_PROMPT)):
            config = dataclasses.replace(default, solver_model=model, solver_prompt=prompt)
            if config == default:
                continue
            start = time.perf_counter()
            solved = solve(states, config)
            scores = [metric(e, s) for e, s in zip(examples, solved)]
            print(f"solver {model}, {name}: {time.perf_counter() - start:.0f} s")
            rows.append((f"solver {model}, {name}", scores, [s["answer"] for s in solved]))
    labels = Counter(e.labels["answer"] for e in examples)
    print(f"val n={len(examples)} labels {dict(labels)}; chance 1/3, always-'yes' {labels['yes'] / len(examples):.3f}")
    for name, scores, answers in rows:
        gain, stderr = paired(base, scores) if scores is not base else (0.0, 0.0)
        decisions = Counter(parse_decision(a) for a in answers)
        print(f"{name:<48} accuracy {statistics.fmean(scores):.3f}  vs default {gain:+.3f} +- {stderr:.3f}  "
              f"decisions {dict(decisions)}")


if __name__ == "__main__":
    main()
