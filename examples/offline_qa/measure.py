"""Measure the example's headroom: mean score and seconds per run of a knob setting on a split.

``python -m examples.offline_qa.measure`` scores the defaults and the hand-tuned setting
on ``val`` (twice, to show run-to-run noise); docs/examples/offline-qa.md records the output.
Its model server keeps no answers, so every run decodes (a repeat measures noise and time).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor

from examples.offline_qa.agent import AgentConfig, graph, load_split
from examples.offline_qa.metric import metric
from optimas_lg.llm import start_server
from optimas_lg.llm.server import URL_ENV

TUNED = AgentConfig(
    rewrite_prompt=AgentConfig.rewrite_prompt,
    query_mode="question",
    top_k=2,
    hops=2,
    answer_prompt=AgentConfig.answer_prompt,
)


def evaluate(config: AgentConfig, split: str = "val", concurrency: int = 8) -> tuple[list[float], float]:
    """Per-example scores and wall seconds per run, ``concurrency`` runs at a time."""
    examples = load_split(split)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outputs = list(pool.map(lambda e: graph.invoke(e.inputs, context=config), examples))
    seconds = (time.perf_counter() - start) / len(examples)
    return [metric(e, o) for e, o in zip(examples, outputs)], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="val")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    server = start_server(cache_entries=0)
    os.environ[URL_ENV] = server.base_url
    for name, config in [("default", AgentConfig()), ("tuned", TUNED)]:
        for r in range(args.repeats):
            scores, seconds = evaluate(config, args.split)
            print(f"{name:8s} run {r + 1}: mean {sum(scores) / len(scores):.3f}  {seconds:.2f} s/run  "
                  f"{dataclasses.asdict(config)}", flush=True)


if __name__ == "__main__":
    main()
