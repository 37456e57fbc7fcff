"""Continuous batching: a decode batch that rows join and leave between steps.

``model.generate`` runs a fixed batch until its longest row ends, so rows that finish
early keep computing padding and requests that arrive meanwhile wait for the whole
batch. ``DecodeBatch`` owns the KV cache itself: new rows are prefilled together and
merged into the running cache (left-padded to a common length), every ``step`` decodes
one token for all rows, and finished rows are cut out of the cache at once.

Each row keeps its own sampling parameters: greedy rows take the argmax (exactly what
``generate`` does), sampled rows draw from their own temperature, top-p and seeded
generator, and a row held to a JSON Schema chooses only among the tokens its
``JsonConstraint`` allows (``llm.structured``). Positions come from each row's own token
count, so padding never shifts a row: a greedy row decodes the same text whatever batch
it shares.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from optimas_lg.llm.structured import JsonConstraint


@dataclass(frozen=True)
class SamplingParams:
    """One row's decoding settings (OpenAI semantics: temperature 0 is greedy)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: str | None = None  # the JSON Schema (as JSON text) the completion must follow


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    completion_tokens: int


@dataclass
class DecodeStats:
    """Decode steps taken and the rows they advanced, summed: how full the batches ran."""

    steps: int = 0
    row_steps: int = 0


@dataclass
class _Row:
    id: int
    params: SamplingParams
    generator: torch.Generator | None
    constraint: JsonConstraint | None = None
    tokens: list[int] = field(default_factory=list)


class DecodeBatch:
    """Rows decoding together on one model; ``add`` rows at any time, ``step`` until empty."""

    def __init__(self, model: Any, tokenizer: Any, stats: DecodeStats | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.stats = stats if stats is not None else DecodeStats()  # may be shared by many batches
        eos = model.generation_config.eos_token_id
        self.eos = {tokenizer.eos_token_id} if eos is None else set(eos if isinstance(eos, list) else [eos])
        self.rows: list[_Row] = []
        self._next_id = 0
        self._cache: DynamicCache | None = None
        self._mask = torch.zeros((0, 0), dtype=torch.long)  # 1 where the cache holds a real token
        self._logits = torch.zeros((0, 0))  # next-token logits, one row per active row

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[int]:
        """Prefill ``prompts`` (token ids) as new rows; returns their row ids.

        The running rows are untouched until the prefill succeeded, so a failing prompt
        never costs the rows already decoding.
        """
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(prompt)
            mask[i, width - len(prompt) :] = 1
        cache = DynamicCache()
        logits = self._forward(ids, mask, cache, positions=(mask.cumsum(-1) - 1).clamp(min=0))
        rows = [_Row(self._next_id + i, p, _generator(p),
                     None if p.json_schema is None else JsonConstraint(self.tokenizer, self.eos, p.json_schema))
                for i, p in enumerate(params)]
        self._next_id += len(rows)
        self._merge(cache, mask, logits, rows)
        return [row.id for row in rows]

    def step(self) -> list[tuple[int, Completion]]:
        """Choose one token for every row; returns the rows that finished, by row id."""
        if not self.rows:
            return []
        chosen = self._choose()
        finished: list[tuple[int, Completion]] = []
        keep: list[int] = []
        for i, (row, token) in enumerate(zip(self.rows, chosen, strict=True)):
            row.tokens.append(token)
            reason = self._finish_reason(row)
            if reason is None:
                keep.append(i)
            else:
                finished.append((row.id, self._completion(row, reason)))
        self.stats.steps += 1
        self.stats.row_steps += len(self.rows)
        if len(keep) < len(self.rows):
            self._select(keep)
        if self.rows:
            tokens = torch.tensor([[row.tokens[-1]] for row in self.rows])
            self._mask = torch.cat([self._mask, torch.ones((len(self.rows), 1), dtype=torch.long)], dim=1)
            positions = self._mask.sum(-1, keepdim=True) - 1
            self._logits = self._forward(tokens, self._mask, self._cache, positions)
        return finished

    def remove(self, row_ids: list[int]) -> None:
        """Drop these rows (their client left) and free their part of the cache now."""
        gone = set(row_ids)
        keep = [i for i, row in enumerate(self.rows) if row.id not in gone]
        if len(keep) < len(self.rows):
            self._select(keep)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, cache: DynamicCache,
                 positions: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                             use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :].float()

    def _merge(self, cache: DynamicCache, mask: torch.Tensor, logits: torch.Tensor, rows: list[_Row]) -> None:
        """Append prefilled rows to the running ones, left-padding the shorter cache."""
        if self._cache is None or not self.rows:
            self._cache, self._mask, self._logits, self.rows = cache, mask, logits, rows
            return
        width = max(self._mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self._cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
        self._mask = torch.cat([_pad_left(self._mask, width, dim=1), _pad_left(mask, width, dim=1)])
        self._logits = torch.cat([self._logits, logits])
        self.rows += rows

    def _select(self, keep: list[int]) -> None:
        """Keep only these rows, and drop the leading columns no kept row uses any more."""
        index = torch.tensor(keep, dtype=torch.long)
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self._cache, self._mask, self._logits = None, self._mask[:0, :0], self._logits[:0]
            return
        mask = self._mask[index]
        start = int((mask.sum(0) > 0).long().argmax())  # first column some row still uses
        self._mask, self._logits = mask[:, start:], self._logits[index]
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]

    def _choose(self) -> list[int]:
        chosen = self._logits.argmax(-1).tolist()
        for i, row in enumerate(self.rows):
            p, logits = row.params, self._logits[i]
            if row.constraint is not None:
                allowed = torch.tensor(row.constraint.allowed(row.tokens), dtype=torch.long)
                logits = torch.full_like(logits, float("-inf")).index_copy_(0, allowed, logits[allowed])
                chosen[i] = int(logits.argmax())
            if p.temperature > 0:
                probs = torch.softmax(logits / p.temperature, dim=-1)
                if p.top_p < 1.0:
                    sorted_probs, order = probs.sort(descending=True)
                    outside = sorted_probs.cumsum(0) - sorted_probs > p.top_p  # keeps at least the top token
                    probs[order[outside]] = 0.0
                chosen[i] = int(torch.multinomial(probs, 1, generator=row.generator))
        return chosen

    def _finish_reason(self, row: _Row) -> str | None:
        if row.tokens[-1] in self.eos or (row.params.stop and self._hit_stop(row)):
            return "stop"
        return "length" if len(row.tokens) >= row.params.max_tokens else None

    def _hit_stop(self, row: _Row) -> bool:
        tail = max(len(s) for s in row.params.stop) + 4  # a stop string spans at most this many tokens
        text = self.tokenizer.decode(row.tokens[-tail:], skip_special_tokens=True)
        return any(s in text for s in row.params.stop)

    def _completion(self, row: _Row, reason: str) -> Completion:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        cut = min((text.find(s) for s in row.params.stop if s in text), default=-1)
        return Completion(text[:cut] if cut >= 0 else text, reason, len(row.tokens))


def _generator(params: SamplingParams) -> torch.Generator | None:
    if params.temperature <= 0:
        return None
    return torch.Generator().manual_seed(params.seed if params.seed is not None else random.getrandbits(63))


def _pad_left(tensor: torch.Tensor, width: int, dim: int = 2) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def generate_batch(model: Any, tokenizer: Any, prompts: list[list[int]],
                   params: list[SamplingParams]) -> list[Completion]:
    """Decode every prompt (token ids) with its own parameters, all rows in one batch."""
    batch = DecodeBatch(model, tokenizer)
    ids = batch.add(prompts, params)
    done: dict[int, Completion] = {}
    while batch:
        done.update(batch.step())
    return [done[i] for i in ids]
