"""Train a LoRA adapter of the SmolLM2 solver the way the optimizer loop does (GRPO in
``LoRAProposer.train`` on the node's own chat requests), on train examples only.

The solver is the graph's last node, so the loop's local reward for its output is the metric
itself on the example's label: no rollout is needed, and this script rewards a completion with
exactly that. Its inputs are an analyst's findings on the train examples, read from the file
``python -m examples.pubmedqa.measure --split train`` caches them in (the analyst is the slow
node; the solver's answers are a few tokens).

``python -m examples.pubmedqa.lora``: prints the adapter id, for
``python -m examples.pubmedqa.measure --solver-adapters ID``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from examples import lora_training
from examples.pubmedqa.agent import SOLVER_MAX_TOKENS, AgentConfig, builder, solver_messages
from examples.pubmedqa.data import load_split
from examples.pubmedqa.measure import OUT_DIR, short
from examples.pubmedqa.metric import metric
from optimas_lg.data import Example
from optimas_lg.proposers.context import ScoreFn
from optimas_lg.proposers.lora import LoRAConfig

TRAINING = LoRAConfig(max_steps=24, max_completion_length=SOLVER_MAX_TOKENS)
"""The loop's GRPO settings (2 prompts x 4 completions a step, learning rate 1e-3) for 24
steps instead of its 10: 48 prompts, each of the 40 train examples about once. A completion
costs ~250 prompt tokens through a forward and a backward pass; on this shared 2-core CPU a
step took 90-194 s, so more steps did not fit a session."""


class FindingsError(LookupError):
    """The cached analyst findings do not cover the train examples asked for."""


def label_reward(examples: list[Example]) -> ScoreFn:
    """A ``ScoreFn`` that scores each (solver input, solver output) with the metric on the label
    of the example with that question: the solver writes the final answer."""
    by_question = {e.inputs["question"]: e for e in examples}
    return lambda pairs: [metric(by_question[state["question"]], output) for state, output in pairs]


def solver_states(examples: list[Example], findings_file: Path) -> list[dict]:
    """The solver's input state for each example: its question and abstract with the analyst's
    findings cached in ``findings_file`` (a ``measure`` record)."""
    record = json.loads(findings_file.read_text())
    findings = dict(zip(record["keys"], record["findings"]))
    missing = [e.key for e in examples if e.key not in findings]
    if missing:
        raise FindingsError(f"{findings_file} has no findings for {len(missing)} of the examples (first "
                            f"{missing[0]!r}): run python -m examples.pubmedqa.measure --split train first")
    return [{**e.inputs, "analysis": findings[e.key]} for e in examples]


def train_adapter(examples: list[Example], findings_file: Path, lora: LoRAConfig,
                  seed: int = 0) -> tuple[str, list[float], int]:
    """GRPO on the default solver's requests for ``examples``; (adapter id, mean reward per step, tokens)."""
    config = AgentConfig()
    requests = [(state, solver_messages(state, config.solver_prompt))
                for state in solver_states(examples, findings_file)]
    return lora_training.train_node_adapter(builder, config, "solver_adapter", "answer", requests,
                                            label_reward(examples), lora, seed)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--analyst-model", default=AgentConfig.analyst_model,
                        help="whose cached train findings (default analyst prompt) the solver answers")


def _train(args: argparse.Namespace, lora: LoRAConfig) -> tuple[str, list[float], int]:
    findings_file = OUT_DIR / f"pubmedqa_train_{short(args.analyst_model)}_default.json"
    return train_adapter(load_split("train", limit=args.limit), findings_file, lora, args.seed)


if __name__ == "__main__":
    lora_training.main(__doc__.splitlines()[0], TRAINING, _train, _add_arguments)
