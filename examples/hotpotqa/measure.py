"""Measure HotpotQA's headroom on val: the default config against per-node model selection,
prompts and ``top_k``, paired per example, with the seconds and tokens of a run.

Configs run node by node: a node runs once per distinct value of its own and its upstream
nodes' knobs, and every config sharing those values reuses the outputs (decoding is greedy,
so this is what separate full graph runs give, for a fraction of the calls). All calls of a
node run at once, so that the model server batches them.

``nice -n 10 python -m examples.hotpotqa.measure --out docs/examples/measure/hotpotqa_val.json``;
docs/examples/hotpotqa.md records the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.runnables.config import ContextThreadPoolExecutor
from langgraph.runtime import Runtime

from examples.hotpotqa.agent import AgentConfig, State, builder, extract, respond, retrieve, rewrite
from examples.hotpotqa.data import load_split
from examples.hotpotqa.metric import metric
from examples.paper_eval import paired
from optimas_lg.data import Example
from optimas_lg.graph.knobs import knob_specs

QWEN = "local/qwen2.5-coder-0.5b"
NODES: tuple[Callable[..., State], ...] = (rewrite, retrieve, extract, respond)

SHORT_ANSWER_PROMPT = (
    "Answer with the shortest exact span from the evidence: a name, a place, a date or a number. "
    "For a yes/no question answer yes or no. Never write a sentence.")
"""A respond prompt as a user writes it after reading wrong answers (sentences, echoed questions)."""

GRID: dict[str, dict[str, Any]] = {
    "default": {},
    "qwen respond": {"respond_model": QWEN},
    "qwen extract": {"extract_model": QWEN},
    "qwen extract + respond": {"extract_model": QWEN, "respond_model": QWEN},
    "short-answer prompt": {"answer_prompt": SHORT_ANSWER_PROMPT},
    "qwen respond, short-answer prompt": {"respond_model": QWEN, "answer_prompt": SHORT_ANSWER_PROMPT},
    "qwen extract + respond, short-answer prompt": {"extract_model": QWEN, "respond_model": QWEN,
                                                    "answer_prompt": SHORT_ANSWER_PROMPT},
}


@dataclasses.dataclass
class Call:
    """One node's output on one example, with what producing it cost."""

    output: State
    seconds: float
    tokens: int


def _call(node: Callable[..., State], state: State, config: AgentConfig) -> Call:
    start = time.perf_counter()
    with get_usage_metadata_callback() as usage:
        output = node(state, Runtime(context=config))
    tokens = sum(u.get("total_tokens", 0) for u in usage.usage_metadata.values())
    return Call(output, time.perf_counter() - start, tokens)


def run_configs(examples: Sequence[Example], configs: Sequence[AgentConfig],
                concurrency: int = 16) -> list[list[tuple[State, float, int]]]:
    """(final state, seconds, tokens) of each example under each config, as a full graph run
    gives them; a node runs once per distinct value of the knobs of it and the nodes before it."""
    specs = knob_specs(AgentConfig, builder.nodes)
    runs = [[(State(**ex.inputs), 0.0, 0) for ex in examples] for _ in configs]
    for i, node in enumerate(NODES):
        upstream = {n.__name__ for n in NODES[: i + 1]}
        fields = [name for name, spec in specs.items() if spec.node in upstream]

        def key(config: AgentConfig, fields: list[str] = fields) -> str:
            return json.dumps([getattr(config, f) for f in fields], sort_keys=True)

        # configs with the same key have the same state before this node: run it for the first one
        first = {key(c): c_i for c_i, c in reversed(list(enumerate(configs)))}
        jobs = [(k, j) for k in first for j in range(len(examples))]
        with ContextThreadPoolExecutor(concurrency) as pool:
            futures = [pool.submit(_call, node, runs[first[k]][j][0], configs[first[k]]) for k, j in jobs]
            calls = {job: future.result() for job, future in zip(jobs, futures)}
        for config, states in zip(configs, runs):
            for j, (state, seconds, tokens) in enumerate(states):
                call = calls[(key(config), j)]
                states[j] = ({**state, **call.output}, seconds + call.seconds, tokens + call.tokens)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N val examples (default: all)")
    parser.add_argument("--only", action="append", choices=list(GRID), help="measure only these configs")
    parser.add_argument("--top-k", type=int, nargs="*", default=[], help="also the default config with these top_k")
    parser.add_argument("--out", type=Path, help="write per-example answers and scores to this JSON file")
    args = parser.parse_args()
    examples = load_split("val", limit=args.limit)
    grid = {name: GRID[name] for name in ["default", *[n for n in (args.only or GRID) if n != "default"]]}
    grid |= {f"top_k={k}": {"top_k": k} for k in args.top_k}
    start = time.perf_counter()
    runs = run_configs(examples, [AgentConfig(**overrides) for overrides in grid.values()])
    print(f"val n={len(examples)}, {len(grid)} configs: {time.perf_counter() - start:.0f} s")
    scores = {name: [metric(ex, state) for ex, (state, _, _) in zip(examples, run)]
              for name, run in zip(grid, runs)}
    for name, run in zip(grid, runs):
        gain, stderr = paired(scores["default"], scores[name])
        seconds, tokens = (statistics.fmean(r[i] for r in run) for i in (1, 2))
        print(f"{name:<44} F1 {statistics.fmean(scores[name]):.3f}  vs default {gain:+.3f} +- {stderr:.3f}  "
              f"{seconds:.0f} s/run (batched)  {tokens:.0f} tokens/run", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        records = {name: {"overrides": grid[name], "examples": [
            {"key": ex.key, "gold": ex.labels["answer"], "answer": state.get("answer", ""),
             "evidence": state.get("evidence", ""), "f1": score, "seconds": round(seconds, 2), "tokens": tokens}
            for ex, (state, seconds, tokens), score in zip(examples, run, scores[name])]}
            for name, run in zip(grid, runs)}
        args.out.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
