"""What the gate maximizes: the metric alone, or the metric net of cost and latency.

With ``lambda_cost`` (per USD) or ``lambda_latency`` (per second) above zero, each
validation run counts as ``score - lambda_cost * cost - lambda_latency * seconds``, so a
cheaper or faster config whose quality is within noise of the current one gains, and
one that loses more quality than it saves does not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    """Weights of a run's cost (USD, priced by the job's table) and wall time (s)."""

    lambda_cost: float = 0.0
    lambda_latency: float = 0.0

    def __post_init__(self) -> None:
        if self.lambda_cost < 0 or self.lambda_latency < 0:
            raise ValueError(f"objective weights must be >= 0, got lambda_cost={self.lambda_cost}, "
                             f"lambda_latency={self.lambda_latency}")

    @property
    def weighted(self) -> bool:
        return self.lambda_cost > 0 or self.lambda_latency > 0

    def value(self, score: float, cost: float, seconds: float) -> float:
        return score - self.lambda_cost * cost - self.lambda_latency * seconds
