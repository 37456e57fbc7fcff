"""Train a LoRA adapter of one node of an example graph the way the optimizer loop does:
GRPO in ``LoRAProposer.train`` on the node's own chat requests, each completion rewarded
by a ``ScoreFn`` the example script gives (the loop gives the node's local reward function).

The Amazon and PubMedQA ``lora`` scripts differ only in the node, its requests and the
reward; this module holds the rest, including the command line they share.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.graph import StateGraph

from optimas_lg.graph.knobs import knob_specs
from optimas_lg.proposers.context import ProposalContext, ScoreFn
from optimas_lg.proposers.lora import LoRAConfig, LoRAProposer

Request = tuple[dict[str, Any], list[BaseMessage]]
"""A node's input state and the chat messages it sends its model for that state."""


def train_node_adapter(builder: StateGraph, config: Any, knob: str, writes: str, requests: Sequence[Request],
                       score: ScoreFn, lora: LoRAConfig, seed: int = 0) -> tuple[str, list[float], int]:
    """GRPO on ``requests`` for the LoRA knob ``knob`` of ``config`` (a context dataclass of
    ``builder``), a completion going into state key ``writes`` and rewarded by ``score``;
    (adapter id, mean reward per step, tokens generated)."""
    spec = knob_specs(type(config), builder.nodes)[knob]
    prompts = [(state, [{"role": m.type, "content": m.text} for m in messages]) for state, messages in requests]
    ctx = ProposalContext(node=spec.node, knobs=[spec], current=dataclasses.asdict(config),
                          inputs=[state for state, _ in requests], score=score, run_node=lambda state, _: {},
                          writes=[writes], llm_prompts=prompts, seed=seed)
    return LoRAProposer(lora).train(ctx, spec)


def quarter_means(rewards: Sequence[float]) -> tuple[float, float]:
    """Mean reward over the first and over the last quarter of the steps (at least one step each)."""
    if not rewards:
        raise ValueError("no rewards: training ran no steps")
    quarter = max(1, len(rewards) // 4)
    return statistics.fmean(rewards[:quarter]), statistics.fmean(rewards[-quarter:])


def main(description: str, defaults: LoRAConfig,
         train: Callable[[argparse.Namespace, LoRAConfig], tuple[str, list[float], int]],
         add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
         argv: Sequence[str] | None = None) -> None:
    """Command line of an example's ``lora`` script: ``train(args, lora)`` on the first
    ``--limit`` train examples with ``defaults`` (flags override steps, learning rate, group size
    and prompts per step; ``add_arguments`` adds the script's own) and print the adapter id with
    the reward curve."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--limit", type=int, default=None, help="the first N train examples (default: all)")
    parser.add_argument("--steps", type=int, default=defaults.max_steps, help="GRPO steps")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate, help="learning rate")
    parser.add_argument("--generations", type=int, default=defaults.num_generations,
                        help="completions per prompt (GRPO's group)")
    parser.add_argument("--prompts-per-step", type=int,
                        default=defaults.per_device_train_batch_size // defaults.num_generations)
    parser.add_argument("--seed", type=int, default=0)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    lora = dataclasses.replace(defaults, max_steps=args.steps, learning_rate=args.lr,
                               num_generations=args.generations,
                               per_device_train_batch_size=args.generations * args.prompts_per_step)
    start = time.perf_counter()
    adapter, rewards, tokens = train(args, lora)
    first, last = quarter_means(rewards)
    print(f"adapter {adapter}: {len(rewards)} steps of {args.prompts_per_step} prompts x {args.generations} "
          f"completions, lr {args.lr:g}; mean reward per step {[round(r, 3) for r in rewards]} "
          f"(first quarter {first:.3f}, last quarter {last:.3f}), {tokens} tokens, "
          f"{time.perf_counter() - start:.0f} s")
