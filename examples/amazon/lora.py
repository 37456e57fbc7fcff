"""Train a LoRA adapter of the session analyzer the way the optimizer loop does (GRPO in
``LoRAProposer.train`` on the node's own chat requests), on train examples only.

The loop rewards a completion with the node's local reward function, which it learns from
Monte-Carlo rollouts of the rest of the graph. This script rewards it with one such rollout
itself: the summary goes through the default profiler and decider, and the reward is the
metric on the example's label. That is the quantity the LRF estimates, without the pairs and
training an LRF needs, so a short run shows what the knob can do here.

``python -m examples.amazon.lora --limit 40``: prints the adapter id, for
``python -m examples.amazon.measure --adapter ID``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from langgraph.runtime import Runtime

from examples.amazon.agent import AgentConfig, State, analyzer_messages, builder, candidate_profiler, decider
from examples.amazon.data import load_split
from examples.amazon.metric import metric
from optimas_lg.data import Example
from optimas_lg.graph.knobs import knob_specs
from optimas_lg.proposers.context import ProposalContext, ScoreFn
from optimas_lg.proposers.lora import LoRAConfig, LoRAProposer

NODE = "session_analyzer"
KNOB = "analyzer_adapter"


def rollout_reward(examples: list[Example], config: AgentConfig, concurrency: int = 8) -> ScoreFn:
    """A ``ScoreFn`` that continues each (input, analyzer output) through the profiler and the
    decider under ``config`` and scores the answer against the example's label."""
    by_session = {(e.inputs["question"], tuple(e.inputs["choices"])): e for e in examples}
    runtime = Runtime(context=config)

    def finish(pair: tuple[dict, dict]) -> float:
        state: State = {**pair[0], **pair[1]}
        state = {**state, **candidate_profiler(state, runtime)}
        state = {**state, **decider(state, runtime)}
        return metric(by_session[(state["question"], tuple(state["choices"]))], state)

    def score(pairs: list[tuple[dict, dict]]) -> list[float]:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(finish, pairs))

    return score


def train_adapter(examples: list[Example], steps: int, seed: int = 0) -> tuple[str, list[float], int]:
    """GRPO on the analyzer's requests for ``examples``; (adapter id, mean reward per step, tokens)."""
    config = AgentConfig()
    knob = knob_specs(AgentConfig, builder.nodes)[KNOB]
    inputs = [dict(e.inputs) for e in examples]
    prompts = [(state, [{"role": m.type, "content": m.text} for m in analyzer_messages(state)]) for state in inputs]
    ctx = ProposalContext(node=NODE, knobs=[knob], current=dataclasses.asdict(config), inputs=inputs,
                          score=rollout_reward(examples, config), run_node=lambda state, _: {},
                          writes=["session_summary"], llm_prompts=prompts, seed=seed)
    return LoRAProposer(LoRAConfig(max_steps=steps)).train(ctx, knob)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40, help="the first N train examples")
    parser.add_argument("--steps", type=int, default=LoRAConfig.max_steps, help="GRPO steps (the loop's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    adapter, rewards, tokens = train_adapter(load_split("train", limit=args.limit), args.steps, args.seed)
    print(f"adapter {adapter}: {len(rewards)} steps, mean reward per step {[round(r, 3) for r in rewards]} "
          f"(first half {statistics.fmean(rewards[:len(rewards) // 2] or [0]):.3f}, "
          f"second half {statistics.fmean(rewards[len(rewards) // 2:] or [0]):.3f}), {tokens} tokens, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
