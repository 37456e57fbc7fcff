"""Model selection on PubMedQA under a cost weight: the optimizer loop with only the model
knobs free (``kinds: ["choice"]``; prompts stay at the start values), Qwen priced above
SmolLM2, each validation run counted as ``accuracy - lambda_cost * USD``.

``python -m examples.pubmedqa.cost --set analyst_prompt=results``; docs/cost.md records the output.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from examples.pubmedqa.agent import builder
from examples.pubmedqa.data import load_split
from examples.pubmedqa.measure import ANALYST_PROMPTS
from examples.pubmedqa.metric import metric
from optimas_lg.api import optimize

# Local compute priced by parameter count, USD per 1M tokens: the 0.5B Qwen costs ~3.7x the 135M SmolLM2.
PRICES = {"local/smollm2-135m": {"prompt": 1.35, "completion": 1.35},
          "local/qwen2.5-coder-0.5b": {"prompt": 5.0, "completion": 5.0}}
SETTINGS: dict[str, Any] = {
    "kinds": ["choice"], "prices": PRICES, "objective": {"lambda_cost": 10.0},
    # the choice proposer applies the cost rule (the default for choice knobs, the joint search, does not)
    "proposers": {"choice": {"use": "optimas_lg.proposers.choice:ChoiceProposer", "strategy": "argmax"}},
    "pairs": {"samples": 2, "llm_samples": 0, "calls_per_node": 6}, "global_examples": 4,
}
"""Sized for a shared 2-core CPU, where a Qwen analyst call takes ~30 s: one alternative model per
recorded call, no LLM samples, few calls per node and global checks on 4 training examples."""


def start_value(text: str) -> tuple[str, str]:
    """``knob=value``; a prompt knob may name one of ``measure.ANALYST_PROMPTS`` (``analyst_prompt=results``)."""
    name, _, value = text.partition("=")
    return name, ANALYST_PROMPTS.get(value, value) if name == "analyst_prompt" else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=12, help="the first N train examples")
    parser.add_argument("--val", type=int, default=20, help="the first N val examples")
    parser.add_argument("--set", type=start_value, action="append", default=[], metavar="KNOB=VALUE",
                        help="a start value (fixed for prompts), e.g. solver_model=local/qwen2.5-coder-0.5b")
    parser.add_argument("--max-iterations", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1, help="seeds the loop (with 1 its first round is the solver's)")
    parser.add_argument("--store", default=None, help="store URL (default: the default store)")
    args = parser.parse_args()
    result = optimize(builder, load_split("train", args.train), metric, valset=load_split("val", args.val),
                      config=dict(args.set), settings=SETTINGS, store=args.store, seed=args.seed,
                      max_iterations=args.max_iterations, patience=None)
    print(json.dumps({"initial": result.initial_knobs, "best": result.best_knobs, "stop": result.stop_reason,
                      "val": [result.val_before, result.val_after]}, indent=1))
    print(result.report or "")


if __name__ == "__main__":
    main()
