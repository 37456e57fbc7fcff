"""What the gate maximizes: the metric alone, or the metric net of cost and latency.

With ``lambda_cost`` (per USD) or ``lambda_latency`` (per second) above zero, each
validation run counts as ``score - lambda_cost * cost - lambda_latency * seconds``, so a
cheaper or faster config whose quality is within noise of the current one gains, and
one that loses more quality than it saves does not.

The constraint form instead: with ``max_cost_per_run`` (USD) or ``max_seconds_per_run``,
the gate accepts no change whose validation runs cost or last more than that on average,
whatever it gains (the config the job starts from is not held to it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    """Weights of a run's cost (USD, priced by the job's table) and wall time (s), and
    limits on their means per validation run."""

    lambda_cost: float = 0.0
    lambda_latency: float = 0.0
    max_cost_per_run: float | None = None
    max_seconds_per_run: float | None = None

    def __post_init__(self) -> None:
        if self.lambda_cost < 0 or self.lambda_latency < 0:
            raise ValueError(f"objective weights must be >= 0, got lambda_cost={self.lambda_cost}, "
                             f"lambda_latency={self.lambda_latency}")
        for name in ("max_cost_per_run", "max_seconds_per_run"):
            limit = getattr(self, name)
            if limit is not None and limit < 0:
                raise ValueError(f"objective.{name} must be >= 0, got {limit}")

    @property
    def constrained(self) -> bool:
        return self.max_cost_per_run is not None or self.max_seconds_per_run is not None

    @property
    def prices_runs(self) -> bool:
        """Whether runs must be priced (every model they call needs a price)."""
        return self.lambda_cost > 0 or self.max_cost_per_run is not None

    def violation(self, cost_per_run: float, seconds_per_run: float) -> str | None:
        """Why a config whose validation runs cost and last this much on average breaks the
        limits, or ``None`` when it keeps them."""
        broken = []
        if self.max_cost_per_run is not None and cost_per_run > self.max_cost_per_run:
            broken.append(f"${cost_per_run:.4f} per run > max_cost_per_run ${self.max_cost_per_run:g}")
        if self.max_seconds_per_run is not None and seconds_per_run > self.max_seconds_per_run:
            broken.append(f"{seconds_per_run:.3f} s per run > max_seconds_per_run {self.max_seconds_per_run:g}")
        return "; ".join(broken) or None

    @property
    def weighted(self) -> bool:
        return self.lambda_cost > 0 or self.lambda_latency > 0

    def value(self, score: float, cost: float, seconds: float) -> float:
        return score - self.lambda_cost * cost - self.lambda_latency * seconds
