"""Generate for a batch of prompts whose sampling parameters differ row by row.

``model.generate`` samples all rows alike from the global RNG. Here ``generate`` runs
greedy, and a logits processor makes each sampled row's choice itself (its own
temperature, top-p and seeded generator) by leaving only the chosen token. Greedy rows
are left untouched, so a greedy request decodes exactly as ``generate`` would. A
stopping criterion ends each row on its own EOS, stop string or token budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList


@dataclass(frozen=True)
class SamplingParams:
    """One row's decoding settings (OpenAI semantics: temperature 0 is greedy)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    completion_tokens: int


class _RowSampler(LogitsProcessor):
    def __init__(self, params: list[SamplingParams]):
        self.rows = [
            (i, p, torch.Generator().manual_seed(p.seed if p.seed is not None else random.getrandbits(63)))
            for i, p in enumerate(params)
            if p.temperature > 0
        ]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.rows:
            return scores
        scores = scores.clone()
        for i, p, generator in self.rows:
            probs = torch.softmax(scores[i].float() / p.temperature, dim=-1)
            if p.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                outside = sorted_probs.cumsum(0) - sorted_probs > p.top_p  # keeps at least the top token
                probs[order[outside]] = 0.0
            token = torch.multinomial(probs, 1, generator=generator)
            scores[i] = float("-inf")
            scores[i, token] = 0.0
        return scores


@dataclass
class _RowStopper(StoppingCriteria):
    tokenizer: Any
    params: list[SamplingParams]
    width: int
    eos: set[int]
    lengths: list[int | None] = field(init=False)  # generated tokens per finished row
    reasons: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = [None] * len(self.params)
        self.reasons = ["length"] * len(self.params)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        n = input_ids.shape[1] - self.width
        for i, p in enumerate(self.params):
            if self.lengths[i] is not None:
                continue
            if int(input_ids[i, -1]) in self.eos or (p.stop and self._hit_stop(input_ids[i], p.stop, n)):
                self.lengths[i], self.reasons[i] = n, "stop"
            elif n >= p.max_tokens:
                self.lengths[i] = n
        return torch.tensor([length is not None for length in self.lengths], device=input_ids.device)

    def _hit_stop(self, row: torch.Tensor, stop: tuple[str, ...], n: int) -> bool:
        tail = max(len(s) for s in stop) + 4  # a stop string spans at most this many tokens
        text = self.tokenizer.decode(row[self.width + max(0, n - tail) :], skip_special_tokens=True)
        return any(s in text for s in stop)


def generate_batch(model: Any, tokenizer: Any, prompts: list[list[int]], params: list[SamplingParams]) -> list[Completion]:
    """Decode every prompt (token ids) with its own parameters in one left-padded batch."""
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        input_ids[i, width - len(prompt) :] = torch.tensor(prompt)
        attention_mask[i, width - len(prompt) :] = 1
    eos = model.generation_config.eos_token_id
    eos = {tokenizer.eos_token_id} if eos is None else set(eos if isinstance(eos, list) else [eos])
    stopper = _RowStopper(tokenizer, params, width, eos)
    config = GenerationConfig(
        max_new_tokens=max(p.max_tokens for p in params),
        do_sample=False,
        pad_token_id=pad,
        eos_token_id=sorted(eos),
    )
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=LogitsProcessorList([_RowSampler(params)]),
            stopping_criteria=StoppingCriteriaList([stopper]),
        )
    completions = []
    for i, p in enumerate(params):
        n = stopper.lengths[i] if stopper.lengths[i] is not None else out.shape[1] - width
        text = tokenizer.decode(out[i, width : width + n], skip_special_tokens=True)
        cut = min((text.find(s) for s in p.stop if s in text), default=-1)
        completions.append(Completion(text[:cut] if cut >= 0 else text, stopper.reasons[i], n))
    return completions
