"""Measure the example's headroom: the default config against a hand grid over its knobs
(model selection, candidates, repair, tests, token limit), paired per problem on the
first ``--limit`` val problems, with the wall time and tokens of each config.

``nice -n 10 python -m examples.humaneval.measure --limit 24``; docs/examples/humaneval.md
records the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from langchain_core.callbacks import UsageMetadataCallbackHandler

from examples.humaneval.agent import AgentConfig, graph
from examples.humaneval.data import load_split
from examples.humaneval.metric import metric
from examples.paper_eval import paired

QWEN = "local/qwen2.5-coder-0.5b"
GRID: dict[str, dict] = {
    "default": {},
    "smollm2, 3 candidates": {"n_candidates": 3},
    "smollm2, tests docstring + generated": {"test_source": "both"},
    "qwen coder": {"coder_model": QWEN},
    "qwen coder + repair": {"coder_model": QWEN, "repair_model": QWEN},
    "qwen coder + repair, 3 candidates": {"coder_model": QWEN, "repair_model": QWEN, "n_candidates": 3},
    "qwen coder + repair, 512 tokens": {"coder_model": QWEN, "repair_model": QWEN, "max_tokens": 512},
}


@dataclasses.dataclass
class Measured:
    scores: list[float]
    seconds: float  # wall seconds per problem (runs go 8 at a time)
    tokens: float  # LLM tokens (prompt + completion) per problem

    def line(self) -> str:
        return (f"pass@1 {statistics.fmean(self.scores):.3f} (n={len(self.scores)})  "
                f"{self.seconds:.1f} s/problem  {self.tokens:.0f} tokens/problem")


def measure(overrides: dict, limit: int, concurrency: int = 8) -> Measured:
    examples = load_split("val", limit=limit)
    usage = UsageMetadataCallbackHandler()
    start = time.perf_counter()
    outputs = graph.batch([e.inputs for e in examples], {"max_concurrency": concurrency, "callbacks": [usage]},
                          context=AgentConfig(**overrides))
    seconds = (time.perf_counter() - start) / len(examples)
    tokens = sum(u.get("total_tokens", 0) for u in usage.usage_metadata.values()) / len(examples)
    return Measured([metric(e, o) for e, o in zip(examples, outputs)], seconds, tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=24, help="the first N val problems")
    parser.add_argument("--only", action="append", choices=list(GRID), help="measure only these configs")
    args = parser.parse_args()
    names = ["default", *[n for n in (args.only or GRID) if n != "default"]]
    base = None
    for name in names:  # each line as soon as its config is measured
        result = measure(GRID[name], args.limit)
        print(f"{name:38s} {result.line()}", flush=True)
        if base is None:
            base = result.scores
            continue
        gain, stderr = paired(base, result.scores)
        print(f"{'':38s} - default: {gain:+.3f} +- {stderr:.3f} (paired, n={len(base)})", flush=True)

if __name__ == "__main__":
    main()
