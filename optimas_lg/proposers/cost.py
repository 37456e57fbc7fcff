"""What one system run of the user's graph costs, and the rule that calls it cheap.

When runs are cheap, a search over a node's numeric and choice knobs can score
candidates on the global metric directly (as plain Optuna would); when they are not,
it ranks them with the node's LRF on recorded inputs and spends no system runs. The
rule's inputs and outcome go into every proposal record that used it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CheapRuns:
    """When a system run counts as cheap: at most ``max_tokens_per_run`` LLM tokens
    (prompt + completion, the mean over the job's recorded runs) and, if set, at most
    ``max_seconds_per_run`` seconds.

    Tokens decide by default because they do not depend on the machine: budgets count
    system runs, so the same command must take the same path on a slower machine.
    ``max_seconds_per_run`` (off by default) adds wall time for users who want it.
    The default of 100 tokens is about one short exchange with a chat model: a graph
    that calls a real model on every run is expensive, one that calls none is cheap.
    """

    max_tokens_per_run: float = 100.0
    max_seconds_per_run: float | None = None

    def __post_init__(self) -> None:
        if self.max_tokens_per_run < 0:
            raise ValueError(f"max_tokens_per_run must be >= 0, got {self.max_tokens_per_run}")
        if self.max_seconds_per_run is not None and self.max_seconds_per_run <= 0:
            raise ValueError(f"max_seconds_per_run must be > 0 or null, got {self.max_seconds_per_run}")

    def judge(self, runs: int, seconds: float, tokens: int) -> RunCost:
        """The verdict on a job's recorded runs (``runs`` of them, ``seconds`` and ``tokens`` in total)."""
        per_run_s = seconds / runs if runs else 0.0
        per_run_t = tokens / runs if runs else 0.0
        rule = f"tokens/run {per_run_t:.1f} <= {self.max_tokens_per_run:g}"
        cheap = runs > 0 and per_run_t <= self.max_tokens_per_run
        if self.max_seconds_per_run is not None:
            rule += f" and seconds/run {per_run_s:.3f} <= {self.max_seconds_per_run:g}"
            cheap = cheap and per_run_s <= self.max_seconds_per_run
        if not runs:
            rule = "no recorded runs to measure"
        return RunCost(runs, per_run_s, per_run_t, cheap, rule)


@dataclass(frozen=True)
class RunCost:
    """The measured cost per system run and whether the ``CheapRuns`` rule found it cheap."""

    runs: int
    seconds_per_run: float
    tokens_per_run: float
    cheap: bool
    rule: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
