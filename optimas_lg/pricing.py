"""Money from recorded tokens: a price table per model (USD per 1M prompt and completion
tokens) and the spend it turns a job's token counts into.

Local models (``local/...`` names and model folders) cost nothing unless the user prices them; hosted models default to
``DEFAULT_PRICES`` (list prices; check your provider's page, they change), and the user's
``prices`` setting overrides or extends it. A model with no price is counted as unpriced,
not as free, so a cost budget never silently ignores it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from optimas_lg.errors import SettingsError

LOCAL_PREFIX = "local/"
_SNAPSHOT_DATE = re.compile(r"-\d{4}-\d{2}-\d{2}$")

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    # model: (USD per 1M prompt tokens, USD per 1M completion tokens); standard (not batch or
    # cached) list prices as published in 2026 (see docs/cost.md for when they were checked)
    "openai/gpt-5": (1.25, 10.00),
    "openai/gpt-5-mini": (0.25, 2.00),
    "openai/gpt-5-nano": (0.05, 0.40),
    "openai/gpt-4o": (2.50, 10.00),
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4.1": (2.00, 8.00),
    "openai/gpt-4.1-mini": (0.40, 1.60),
    "openai/gpt-4.1-nano": (0.10, 0.40),
    "anthropic/claude-3-5-haiku": (0.80, 4.00),
    "anthropic/claude-sonnet-4": (3.00, 15.00),
}


def usd(amount: float) -> str:
    """Money as shown in progress lines, reports and ``store info`` (cents are too coarse
    for small models' runs)."""
    return f"${amount:,.4f}"


@dataclass(frozen=True)
class Usage:
    """Tokens one model used (inside one node, or anywhere when ``node`` is None)."""

    node: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Spend:
    """Money spent: in total, per node and per model; ``unpriced`` lists models with no price."""

    total: float = 0.0
    by_node: dict[str, float] = field(default_factory=dict)
    by_model: dict[str, float] = field(default_factory=dict)
    unpriced: list[str] = field(default_factory=list)


class PriceTable:
    """USD per 1M tokens per model name; ``model@adapter`` costs what its base model costs,
    and ``gpt-4o-mini`` (as OpenAI's client records it) what ``openai/gpt-4o-mini`` costs."""

    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES)
        for model, price in (overrides or {}).items():
            if set(price) != {"prompt", "completion"} or any(float(v) < 0 for v in price.values()):
                raise SettingsError(f"prices.{model}: give {{'prompt': USD, 'completion': USD}} per 1M tokens, "
                                    f"both >= 0; got {dict(price)}")
            self.prices[model] = (float(price["prompt"]), float(price["completion"]))

    def price(self, model: str) -> tuple[float, float] | None:
        """(prompt, completion) USD per 1M tokens, or None for an unpriced hosted model."""
        base = model.split("@", 1)[0]
        short = {name.split("/", 1)[-1]: p for name, p in self.prices.items()}  # as a client records it
        undated = _SNAPSHOT_DATE.sub("", base)  # gpt-4o-mini-2024-07-18: a dated snapshot of gpt-4o-mini
        found = self.prices.get(base) or short.get(base) or self.prices.get(undated) or short.get(undated)
        if found is None and base.startswith((LOCAL_PREFIX, "/", ".")):  # a local name or model folder
            return (0.0, 0.0)
        return found

    def spend(self, usage: Iterable[Usage]) -> Spend:
        """What the given token usage cost."""
        out = Spend()
        for u in usage:
            price = self.price(u.model)
            if price is None:
                if u.model not in out.unpriced:
                    out.unpriced.append(u.model)
                continue
            cost = (u.prompt_tokens * price[0] + u.completion_tokens * price[1]) / 1e6
            out.total += cost
            out.by_model[u.model] = out.by_model.get(u.model, 0.0) + cost
            if u.node is not None:
                out.by_node[u.node] = out.by_node.get(u.node, 0.0) + cost
        return out
