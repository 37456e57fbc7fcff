"""Score a paper-style example system on one of its splits, unoptimized or with context overrides.

``python -m examples.<system> --split val --limit 20 [--set model=openai/gpt-4o-mini]``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from types import ModuleType
from typing import Any

from langchain_core.callbacks import get_usage_metadata_callback
from langgraph.runtime import Runtime

from optimas_lg.data import Example


def evaluate(system: ModuleType, examples: Sequence[Example], context: Any = None,
             concurrency: int = 8) -> list[tuple[dict[str, Any], float]]:
    """(final state, metric score) of each example after one run of ``system.graph`` on it."""
    outputs = system.graph.batch([ex.inputs for ex in examples], {"max_concurrency": concurrency}, context=context)
    return [(out, system.metric(ex, out)) for ex, out in zip(examples, outputs)]


def node_pass(node: Callable[[Any, Runtime], dict[str, Any]], states: list[dict[str, Any]], config: Any,
              concurrency: int = 8) -> tuple[list[dict[str, Any]], float, int]:
    """``node`` alone on each state under ``config`` (the upstream outputs already in the
    states): the updated states, wall seconds and LLM tokens spent. Measure scripts use it
    to score several configs of a node on the same upstream outputs."""
    start = time.perf_counter()
    with get_usage_metadata_callback() as usage, ThreadPoolExecutor(concurrency) as pool:
        # each task gets a copy of this context, so the usage callback sees the calls made in the pool
        futures = [pool.submit(copy_context().run, node, s, Runtime(context=config)) for s in states]
        states = [{**s, **f.result()} for s, f in zip(states, futures)]
    tokens = sum(u.get("total_tokens", 0) for u in usage.usage_metadata.values())
    return states, time.perf_counter() - start, tokens


def paired(base: Sequence[float], other: Sequence[float]) -> tuple[float, float]:
    """Mean of the per-example differences ``other - base`` and its standard error."""
    diffs = [b - a for a, b in zip(base, other, strict=True)]
    return statistics.fmean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs))


def _value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, null), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _show(example: Example, output: dict[str, Any]) -> str:
    return f"label={example.labels['answer']!r}\tanswer={output['answer']!r}"


def main(system: ModuleType, argv: Sequence[str] | None = None) -> float:
    """Command line entry point of ``python -m examples.<system>``; prints and returns the mean score."""
    parser = argparse.ArgumentParser(prog=f"python -m {system.__name__}", description=system.__doc__.splitlines()[0])
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--limit", type=int, default=20, help="score the first N examples of the split")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a context field, e.g. top_k=5 (repeatable)")
    parser.add_argument("--concurrency", type=int, default=8, help="graph runs at once (the server batches them)")
    parser.add_argument("--show", action="store_true", help="print each example's answer and label")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected FIELD=VALUE")
        overrides[field] = _value(value)
    context = system.AgentConfig(**overrides)
    examples = system.load_split(args.split, limit=args.limit)
    start = time.perf_counter()
    results = evaluate(system, examples, context, args.concurrency)
    if args.show:
        show = getattr(system, "show", _show)  # a system whose label or answer is not "answer" brings its own
        for example, (output, score) in zip(examples, results):
            print(f"{example.key}\tscore={score:.2f}\t{show(example, output)}")
    mean = statistics.fmean(score for _, score in results)
    print(f"{system.__name__}: {args.split} n={len(results)} score={mean:.3f} "
          f"({time.perf_counter() - start:.0f} s) context={context}")
    return mean
