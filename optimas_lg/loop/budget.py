"""Budgets: how much an optimization may spend, and what it has spent so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from optimas_lg.loop.records import Record


@dataclass(frozen=True)
class Budget:
    """Limits of one optimization; ``None`` means no limit.

    ``patience`` stops the loop after that many iterations in a row without an
    accepted change. ``max_cost`` is in USD, priced by the job's price table
    (``optimas_lg.pricing``); like ``max_system_runs`` it also caps the runs of long steps.
    No limit counts the runs that score the test set (before and after): the held-out set
    must not change what the loop decides.
    """

    max_iterations: int = 8
    max_system_runs: int | None = None
    max_llm_tokens: int | None = None
    max_seconds: float | None = None
    max_cost: float | None = None
    patience: int | None = 4

    def stop_reason(self, spent: "Spent", rounds_without_gain: int) -> str | None:
        """Why the loop must stop now, or None to go on."""
        checks = [
            (self.max_iterations, spent.iterations, "iterations"),
            (self.max_system_runs, spent.system_runs, "system runs"),
            (self.max_llm_tokens, spent.llm_tokens, "LLM tokens"),
            (self.max_seconds, spent.seconds, "seconds"),
            (self.max_cost, spent.cost, "USD"),
            (self.patience, rounds_without_gain, "iterations without an accepted change"),
        ]
        for limit, used, what in checks:
            if limit is not None and used >= limit:
                return f"budget reached: {used:g} {what} (limit {limit:g})"
        return None

    def no_time_for_a_round(self, seconds: float, slowest_round: float) -> str | None:
        """Why another round must not start: with ``seconds`` spent, a round as slow as the
        slowest so far would end past ``max_seconds``. ``None`` to go on (also when no limit
        is set or no round has finished yet)."""
        if self.max_seconds is None or slowest_round <= 0 or seconds + slowest_round <= self.max_seconds:
            return None
        return (f"budget reached: {seconds:.0f} seconds spent and the slowest round took {slowest_round:.0f}, "
                f"so another would end past max_seconds {self.max_seconds:g}")


def round_share(remaining: int, validation: int, rounds: int) -> int:
    """System runs one round may spend besides its validation, when ``remaining`` runs must
    pay for up to ``rounds`` more rounds (this one included), each validation costing
    ``validation`` runs.

    The rule: plan ``k = min(rounds, remaining // (2 * validation))`` rounds (at least one),
    so that each planned round may spend on its search at least what its validation costs;
    reserve a validation for each and split the rest evenly: ``(remaining - k * validation)
    // k``, never below 0. Without it the first round took everything but one validation:
    on STaRK its search on the train metric spent 104 of the 134 runs left and the three
    rounds after it could only keep the current values; on offline_qa the LRF update after
    the first accepted change spent the rest, so no second round ran.
    """
    k = max(1, min(rounds, remaining // max(1, 2 * validation)))
    return max(0, (remaining - k * validation) // k)


def system_round_share(remaining: int, validation: int, rounds: int, share: float) -> int:
    """System runs the system round (``loop.system_round``) may spend besides its validation:
    the larger of its equal share among ``rounds`` (``round_share``) and ``share`` of the runs
    ``remaining`` once its validation is paid.

    Why: the system round is the one search of every node's choice and numeric knobs at once,
    and at the budgets where no node's LRF can be trained it is the loop's best use of runs.
    An equal share bought it two trials on HotpotQA at 200 runs (the current values and one
    random draw on 8 training questions) where plain Optuna had ten.
    """
    return max(round_share(remaining, validation, rounds), int(share * max(0, remaining - validation)))


@dataclass(frozen=True)
class Spent(Record):
    """What an optimization has used so far (kept in the loop's checkpointed state and
    stored as a ``budget`` event after every round). ``llm_tokens`` is every token the
    job spent; ``tokens_by_source`` splits it (``TOKEN_SOURCES``)."""

    kind: ClassVar[str] = "budget"
    iterations: int = 0
    system_runs: int = 0
    llm_tokens: int = 0
    seconds: float = 0.0
    cost: float = 0.0
    tokens_by_source: dict[str, int] = field(default_factory=dict)


SYSTEM_TOKENS, REPLAY_TOKENS, PROPOSER_TOKENS = "system runs", "nodes run alone", "proposer LLM"
TOKEN_SOURCES = (SYSTEM_TOKENS, REPLAY_TOKENS, PROPOSER_TOKENS)
"""Where a job's tokens go: its recorded runs (evaluations, collect runs, rollouts), a node
run alone on a recorded input (pair candidates, proposer candidates), a proposer's own
LLM (the prompt writer, LoRA rollouts)."""
