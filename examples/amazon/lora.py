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

from concurrent.futures import ThreadPoolExecutor

from langgraph.runtime import Runtime

from examples import lora_training
from examples.amazon.agent import AgentConfig, State, analyzer_messages, builder, candidate_profiler, decider
from examples.amazon.data import load_split
from examples.amazon.metric import metric
from optimas_lg.data import Example
from optimas_lg.proposers.context import ScoreFn
from optimas_lg.proposers.lora import LoRAConfig


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


def train_adapter(examples: list[Example], lora: LoRAConfig, seed: int = 0) -> tuple[str, list[float], int]:
    """GRPO on the analyzer's requests for ``examples``; (adapter id, mean reward per step, tokens)."""
    config = AgentConfig()
    requests = [(dict(e.inputs), analyzer_messages(e.inputs)) for e in examples]
    return lora_training.train_node_adapter(builder, config, "analyzer_adapter", "session_summary", requests,
                                            rollout_reward(examples, config), lora, seed)


if __name__ == "__main__":
    lora_training.main(__doc__.splitlines()[0], LoRAConfig(),
                       lambda args, lora: train_adapter(load_split("train", limit=args.limit), lora, args.seed))
