"""Budgets: how much an optimization may spend, and what it has spent so far."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Budget:
    """Limits of one optimization; ``None`` means no limit.

    ``patience`` stops the loop after that many iterations in a row without an
    accepted change.
    """

    max_iterations: int = 8
    max_system_runs: int | None = None
    max_llm_tokens: int | None = None
    max_seconds: float | None = None
    patience: int | None = 4

    def stop_reason(self, spent: "Spent", rounds_without_gain: int) -> str | None:
        """Why the loop must stop now, or None to go on."""
        checks = [
            (self.max_iterations, spent.iterations, "iterations"),
            (self.max_system_runs, spent.system_runs, "system runs"),
            (self.max_llm_tokens, spent.llm_tokens, "LLM tokens"),
            (self.max_seconds, spent.seconds, "seconds"),
            (self.patience, rounds_without_gain, "iterations without an accepted change"),
        ]
        for limit, used, what in checks:
            if limit is not None and used >= limit:
                return f"budget reached: {used:g} {what} (limit {limit:g})"
        return None


@dataclass
class Spent:
    """What an optimization has used so far (kept in the loop's checkpointed state)."""

    iterations: int = 0
    system_runs: int = 0
    llm_tokens: int = 0
    seconds: float = 0.0

    def add(self, system_runs: int = 0, llm_tokens: int = 0, seconds: float = 0.0) -> "Spent":
        return Spent(self.iterations, self.system_runs + system_runs, self.llm_tokens + llm_tokens,
                     self.seconds + seconds)

    def to_dict(self) -> dict:
        return asdict(self)
