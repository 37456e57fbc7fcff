"""LoRA weights: GRPO on the node's own recorded LLM prompts, rewarded by the node's LRF.

Reward mapping (an assumption, overridable): a completion becomes the node's output by
being placed, as text, in the one state key the node writes. A node that post-processes
its LLM reply (parses JSON, writes several keys) gives ``ctx.lora_output_fn`` instead.
"""

from __future__ import annotations

import random
import re
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.messages import BaseMessage

from optimas_lg.graph import serde
from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.proposers.base import Proposer, Search
from optimas_lg.proposers.candidates import CandidateEvaluator
from optimas_lg.proposers.context import EvalConfig, OutputFn, ProposalContext, ProposalError

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "user": "user",
          "assistant": "assistant", "tool": "tool"}


@dataclass
class LoRAConfig(EvalConfig):
    """GRPO settings verified on a 2-core CPU (DESIGN.md §4); few steps, short completions.

    ``max_prompts`` caps the recorded prompts used as the training set. The learning
    rate is constant: over ten steps a linear decay would spend half of it.
    """

    max_steps: int = 10
    learning_rate: float = 1e-3
    lr_scheduler_type: str = "constant"
    num_generations: int = 4
    per_device_train_batch_size: int = 8
    max_completion_length: int = 20
    temperature: float = 1.0
    beta: float = 0.0
    r: int = 8
    lora_alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    max_prompts: int = 64


def chat_prompts(recorded: Any) -> list[list[dict[str, str]]]:
    """The chat prompts of one recorded LLM call (``LLMCall.messages``) as ``[{"role", "content"}]``.

    The recorder keeps a batch of message lists in serde JSON; a single message list and
    OpenAI-style dicts are accepted too.
    """
    value = serde.from_json(recorded)
    batch = value if value and all(isinstance(x, list) for x in value) else [value]
    return [[_message(m) for m in messages] for messages in batch]


def _message(m: Any) -> dict[str, str]:
    if isinstance(m, BaseMessage):
        role, content = m.type, m.text
    elif isinstance(m, dict):
        role, content = m.get("role"), m.get("content")
    else:
        raise ProposalError(f"cannot read a recorded chat message of type {type(m).__name__}: {m!r}")
    if role not in _ROLES or not isinstance(content, str):
        raise ProposalError(f"a recorded chat message needs a known role and text content, got {m!r}")
    return {"role": _ROLES[role], "content": str(content)}


def completion_text(completion: Any) -> str:
    """A GRPO completion as text (chat prompts give ``[{"role": "assistant", "content": ...}]``)."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion)


def _output_fn(ctx: ProposalContext) -> OutputFn:
    if ctx.lora_output_fn is not None:
        return ctx.lora_output_fn
    if len(ctx.writes) != 1:
        raise ProposalError(
            f"node {ctx.node!r} writes {ctx.writes}; the default LoRA reward mapping puts the completion "
            "in the one key a node writes. Give ProposalContext.lora_output_fn(state, text) -> output."
        )
    key = ctx.writes[0]
    return lambda _state, text: {key: text}


class LoRAProposer(Proposer):
    """Trains a new adapter from the current one (or from the base model of the ``LoRA``
    knob), saves it where the model server finds it, and proposes it when the node's
    outputs with it score higher on the LRF and the global check (if given) does not drop.
    """

    kinds: ClassVar[tuple[KnobKind, ...]] = ("lora",)
    config_class: ClassVar[type[EvalConfig]] = LoRAConfig
    trains_on_lrf: ClassVar[bool] = True
    config: LoRAConfig

    def search(self, ctx: ProposalContext, knob: KnobSpec, evaluator: CandidateEvaluator) -> Search:
        if not ctx.llm_prompts:
            raise ProposalError(f"node {ctx.node!r} has no recorded LLM prompts to train its adapter on")
        _output_fn(ctx)  # fail before loading the model
        previous = ctx.current[knob.name]
        adapter, rewards, tokens = self.train(ctx, knob)
        evaluator.cost.llm_tokens += tokens
        evaluator.cost.lrf_calls += len(rewards) * self.config.per_device_train_batch_size
        evaluator.evaluate(adapter)
        details: dict[str, Any] = {"adapter": adapter, "base": knob.knob.base, "from_adapter": previous,
                                   "train_rewards": rewards, "steps": len(rewards)}
        if evaluator.mean(adapter) <= evaluator.mean(previous):
            return Search(previous, details)
        if ctx.global_check is not None:
            before = ctx.global_check(ctx.current)
            after = ctx.global_check({**ctx.current, knob.name: adapter})
            details["global_check"] = {"current": before, "proposed": after, "passed": after >= before}
            if after < before:
                return Search(previous, details)
        return Search(adapter, details)

    def train(self, ctx: ProposalContext, knob: KnobSpec) -> tuple[str, list[float], int]:
        """Run GRPO; returns the new adapter id, the mean reward per step and tokens generated."""
        import torch
        from datasets import Dataset
        from peft import LoraConfig, PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
        from trl import GRPOConfig, GRPOTrainer

        from optimas_lg.llm.adapters import adapter_path, save_adapter_path
        from optimas_lg.llm.registry import local_model_path

        cfg = self.config
        prompts = list(ctx.llm_prompts)
        if len(prompts) > cfg.max_prompts:
            prompts = random.Random(ctx.seed).sample(prompts, cfg.max_prompts)
        rows = [(state, messages) for state, recorded in prompts for messages in chat_prompts(recorded)]
        states = [state for state, _ in rows]
        dataset = Dataset.from_list([{"prompt": messages, "sample": i} for i, (_, messages) in enumerate(rows)])
        to_output = _output_fn(ctx)

        def lrf_reward(completions: list[Any], sample: list[int], **_: Any) -> list[float]:
            return [float(s) for s in ctx.score(
                [(states[i], to_output(states[i], completion_text(c))) for c, i in zip(completions, sample)])]

        path = local_model_path(knob.knob.base)
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        previous = ctx.current[knob.name]
        peft_config = None
        if previous is None:
            peft_config = LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, target_modules=list(cfg.target_modules),
                                     task_type="CAUSAL_LM")
        else:
            model = PeftModel.from_pretrained(model, adapter_path(previous), is_trainable=True)
        with tempfile.TemporaryDirectory(prefix="optimas-grpo-") as out:
            args = GRPOConfig(
                output_dir=out, use_cpu=True, bf16=False, report_to="none", use_vllm=False,
                num_generations=cfg.num_generations, per_device_train_batch_size=cfg.per_device_train_batch_size,
                max_completion_length=cfg.max_completion_length, learning_rate=cfg.learning_rate, beta=cfg.beta,
                lr_scheduler_type=cfg.lr_scheduler_type,
                temperature=cfg.temperature, max_steps=cfg.max_steps, logging_steps=1, save_strategy="no",
                seed=ctx.seed, disable_tqdm=True,
            )
            trainer = GRPOTrainer(model=model, reward_funcs=lrf_reward, args=args, train_dataset=dataset,
                                  processing_class=tokenizer, peft_config=peft_config)
            trainer.remove_callback(PrinterCallback)  # a dict per step on stdout; the log history keeps them
            trainer.train()
        history = [h for h in trainer.state.log_history if "reward" in h]
        tokens = int(history[-1].get("num_tokens", 0)) if history else 0
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{ctx.node}-{knob.name}").strip("-.") or "adapter"
        adapter = f"{slug[:100]}-{uuid.uuid4().hex[:8]}"
        trainer.model.save_pretrained(save_adapter_path(adapter))
        return adapter, [float(h["reward"]) for h in history], tokens
