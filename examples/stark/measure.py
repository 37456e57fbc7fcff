"""Measure the example's headroom: the default config against the best of a seeded random
search over every knob, paired per question on ``val``; then both on ``test``, which the
search never saw (the val gain is optimistic: it is the best of many tries on val).

``python -m examples.stark.measure --trials 200 --seed 0``; docs/examples/paper-systems.md
records the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import time
from typing import Any

from examples.paper_eval import paired
from examples.stark.agent import AgentConfig, graph, load_split
from examples.stark.metric import hit_at_k, metric
from optimas_lg.graph.knobs import knob_specs


@dataclasses.dataclass
class Scores:
    mrr: list[float]
    hit1: list[float]
    hit5: list[float]
    seconds: float  # wall seconds per graph run

    def line(self) -> str:
        return (f"MRR {statistics.fmean(self.mrr):.3f}  hit@1 {statistics.fmean(self.hit1):.3f}  "
                f"hit@5 {statistics.fmean(self.hit5):.3f}  (n={len(self.mrr)}, {self.seconds * 1000:.1f} ms/run)")


def evaluate(config: AgentConfig, split: str) -> Scores:
    examples = load_split(split)
    start = time.perf_counter()
    outputs = [graph.invoke(e.inputs, context=config) for e in examples]
    seconds = (time.perf_counter() - start) / len(examples)
    return Scores([metric(e, o) for e, o in zip(examples, outputs)],
                  [hit_at_k(e, o, 1) for e, o in zip(examples, outputs)],
                  [hit_at_k(e, o, 5) for e, o in zip(examples, outputs)], seconds)


def random_config(rng: random.Random) -> AgentConfig:
    """Every knob drawn uniformly from its declared space (floats to two decimals)."""
    values: dict[str, Any] = {}
    for name, spec in knob_specs(AgentConfig).items():
        knob = spec.knob
        if spec.kind == "choice":
            values[name] = rng.choice(knob.options)
        elif spec.kind == "int":
            values[name] = rng.randint(knob.low, knob.high)
        else:
            values[name] = round(rng.uniform(knob.low, knob.high), 2)
    return AgentConfig(**values)


def search(trials: int, seed: int, split: str = "val") -> tuple[AgentConfig, Scores]:
    """The config with the best mean MRR on ``split`` among ``trials`` random ones."""
    rng = random.Random(seed)
    tried = [(config, evaluate(config, split)) for config in (random_config(rng) for _ in range(trials))]
    return max(tried, key=lambda result: statistics.fmean(result[1].mrr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="random configs tried on val")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    default = evaluate(AgentConfig(), "val")  # the first run also embeds the knowledge base
    print(f"setup (load encoder, embed entities, first pass over val): {time.perf_counter() - start:.1f} s")
    default = evaluate(AgentConfig(), "val")
    print(f"val  default: {default.line()}")
    start = time.perf_counter()
    config, best = search(args.trials, args.seed)
    print(f"search: {args.trials} configs in {time.perf_counter() - start:.0f} s")
    print(f"val  best:    {best.line()}")
    print(f"best config: {dataclasses.asdict(config)}")
    gain, stderr = paired(default.mrr, best.mrr)
    print(f"val  headroom (best - default, paired): MRR {gain:+.3f} +- {stderr:.3f} ({gain / stderr:.1f} stderr)")
    test_default, test_best = evaluate(AgentConfig(), "test"), evaluate(config, "test")
    print(f"test default: {test_default.line()}")
    print(f"test best:    {test_best.line()}")
    gain, stderr = paired(test_default.mrr, test_best.mrr)
    print(f"test gain (best - default, paired): MRR {gain:+.3f} +- {stderr:.3f}")


if __name__ == "__main__":
    main()
