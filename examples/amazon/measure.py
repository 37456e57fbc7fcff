"""Measure Amazon's headroom on val: the default config against the decider's prompt and
model, and against LoRA adapters of the analyzer, paired per example, beside chance and two
trivial baselines.

The analyzer's and profiler's outputs are computed once, by full graph runs of the default
config, and every decider config is scored on those same outputs (greedy decoding: what a
full run with the default upstream nodes gives). An adapter changes the analyzer's output,
so each ``--adapter`` is scored by full graph runs.

``python -m examples.amazon.measure --limit 40 [--adapter ID]``; docs/examples/amazon.md
records the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections import Counter
from collections.abc import Sequence

from examples import amazon
from examples.amazon.agent import AgentConfig, decider, recent_clicks
from examples.amazon.data import load_split
from examples.amazon.metric import metric, parse_choice, words
from examples.models import model_options
from examples.paper_eval import evaluate, node_pass, paired
from optimas_lg.data import Example

NUMBER_PROMPT = "Pick the candidate the shopper will most likely view next. Reply with its number (1-4) only."
"""The decider prompt the system had before issue 15's fixes."""
SIMILAR_PROMPT = ("Shoppers keep viewing the same kind of product. Name the candidate that is most like the "
                  "products the shopper viewed last.")
"""A prompt a user writes after reading the data: sessions stay on one kind of product."""
PROMPTS = {"default prompt": AgentConfig.decider_prompt, "number prompt": NUMBER_PROMPT,
           "similar prompt": SIMILAR_PROMPT}


def overlap_pick(example: Example) -> int:
    """The trivial baseline: the candidate sharing the most words with the session's recent clicks."""
    clicked = words(" ".join(recent_clicks(example.inputs["question"])))
    overlaps = [len(clicked & words(title)) for title in example.inputs["choices"]]
    return overlaps.index(max(overlaps))


def _report(name: str, base: Sequence[float], scores: Sequence[float], answers: Sequence[str],
            examples: Sequence[Example]) -> None:
    gain, stderr = paired(base, scores)
    picks = Counter(parse_choice(a, e.inputs["choices"]) for a, e in zip(answers, examples))
    print(f"{name:<44} accuracy {statistics.fmean(scores):.3f}  vs default {gain:+.3f} +- {stderr:.3f}  "
          f"picks {dict(sorted(picks.items(), key=str))}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40, help="the first N val examples")
    parser.add_argument("--adapter", action="append", default=[], metavar="ID",
                        help="also score the default config with this analyzer adapter (repeatable)")
    parser.add_argument("--models", nargs="*", default=model_options(), help="decider models of the grid")
    args = parser.parse_args()
    examples = load_split("val", limit=args.limit)
    labels = Counter(e.labels["answer"] for e in examples)
    overlap = [float(overlap_pick(e) == e.labels["answer"]) for e in examples]
    print(f"val n={len(examples)} labels {dict(sorted(labels.items()))}; chance 0.250, "
          f"always candidate k: {[round(labels[k] / len(examples), 3) for k in range(4)]}, "
          f"word overlap with the recent clicks {statistics.fmean(overlap):.3f}", flush=True)
    start = time.perf_counter()
    default = AgentConfig()
    runs = evaluate(amazon, examples, default)
    print(f"default (full graph runs): {time.perf_counter() - start:.0f} s", flush=True)
    states = [state for state, _ in runs]
    base = [score for _, score in runs]
    _report("default", base, base, [s["answer"] for s in states], examples)
    _report("(baseline) word overlap", base, overlap, [str(overlap_pick(e) + 1) for e in examples], examples)
    for adapter in args.adapter:
        start = time.perf_counter()
        adapted = evaluate(amazon, examples, dataclasses.replace(default, analyzer_adapter=adapter))
        print(f"analyzer_adapter={adapter} (full graph runs): {time.perf_counter() - start:.0f} s", flush=True)
        _report(f"analyzer_adapter={adapter}", base, [s for _, s in adapted], [o["answer"] for o, _ in adapted],
                examples)
    for model in args.models:
        for name, prompt in PROMPTS.items():
            config = dataclasses.replace(default, decider_model=model, decider_prompt=prompt)
            if config == default:
                continue
            start = time.perf_counter()
            decided = node_pass(decider, states, config)[0]
            print(f"decider {model}, {name}: {time.perf_counter() - start:.0f} s", flush=True)
            _report(f"decider {model}, {name}", base, [metric(e, s) for e, s in zip(examples, decided)],
                    [s["answer"] for s in decided], examples)


if __name__ == "__main__":
    main()
