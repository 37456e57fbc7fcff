"""The typed records the optimizer loop writes and reads back.

One definition each: the loop builds them, ``to_json`` turns them into the JSON kept in
the loop's checkpointed state and in the store's optimizer events, and ``from_json``
reads them back for the CLI, the report, the API and Studio. Nothing outside this
module reads their fields by string.

A knob change is always a mapping ``knob -> Change(old, new)``, however many knobs
changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from optimas_lg.lrf.trust import LRFTrust

R = TypeVar("R", bound="Record")


@dataclass(frozen=True)
class Change:
    """One knob's value before and after a change."""

    old: Any
    new: Any


Changes = dict[str, Change]


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> Changes:
    """The knobs whose value differs between two assignments, in ``after``'s order."""
    return {k: Change(before.get(k), v) for k, v in after.items() if before.get(k) != v}


class Record:
    """Base of the loop's records: JSON out, the same record back in.

    ``kind`` names the optimizer event a record is stored as (``None``: kept in the
    loop's state only). Nested records and ``Change`` maps are rebuilt by ``from_json``
    from the field annotations declared in ``_nested``.
    """

    kind: ClassVar[str | None] = None
    _nested: ClassVar[dict[str, Any]] = {}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[R], data: dict[str, Any]) -> R:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in data.items() if k in known}
        for name, how in cls._nested.items():
            if values.get(name) is None:
                continue
            if how is Change:
                values[name] = {k: Change(**v) for k, v in values[name].items()}
            elif isinstance(how, list):
                values[name] = [how[0].from_json(v) for v in values[name]]
            else:
                values[name] = how.from_json(values[name])
        return cls(**values)


@dataclass(frozen=True)
class NodeProposal(Record):
    """What one round's proposers chose for the picked node: the knobs they changed,
    the full assignment with those changes, and the node's score before and after by
    ``objective`` (``"lrf"``, or ``"global"``: the metric on a training batch; scores are
    ``None`` when the round's searches used both). ``skipped`` names the node's knobs not
    searched, with the reason (a knob the node does not read under the values in force is dead).
    ``trust`` says how far the node's LRF was trusted and what picked the winner instead
    (``proposers.trusted``; ``None``: no trained LRF ranked the candidates). ``units`` groups
    the changed knobs by the search that chose them (a joint search's knobs are one unit):
    the gate tries each unit as a whole (no units recorded: each knob is its own)."""

    node: str
    knobs: list[str]
    changes: Changes
    values: dict[str, Any]
    current_score: float | None
    proposed_score: float | None
    skipped: dict[str, str] = field(default_factory=dict)
    objective: str | None = "lrf"
    trust: str | None = None
    units: list[list[str]] = field(default_factory=list)
    _nested: ClassVar[dict[str, Any]] = {"changes": Change}

    def change_units(self) -> list[tuple[str, ...]]:
        """The changed knobs in the groups the gate tries them in."""
        units = [tuple(k for k in unit if k in self.changes) for unit in self.units]
        covered = {k for unit in units for k in unit}
        return [u for u in units if u] + [(k,) for k in self.changes if k not in covered]

    @property
    def label(self) -> str:
        """The changed knobs (or, for "no change", the knobs that were searched)."""
        return ", ".join(self.changes or self.knobs)


@dataclass(frozen=True)
class GateStep(Record):
    """One knob-by-knob validation step (``gate.validate_knobwise``)."""

    knobs: list[str]
    accepted: bool
    gain: float
    stderr: float


@dataclass(frozen=True)
class Decision(Record):
    """The gate's verdict on a round's proposal, with its evidence.

    ``changes`` are the changes kept when accepted (else all that were tried);
    ``scores`` the per-example validation scores of the config tried last or kept (on the
    examples it ran, in their order: a try the interim look stopped ran ``n`` of them);
    ``config_id`` that config (``None`` when nothing was proposed).
    """

    kind: ClassVar[str] = "decision"
    node: str
    changes: Changes
    n: int
    accepted: bool
    val_current: float
    val_proposed: float
    mean_diff: float
    stderr: float
    rule: str
    reason: str
    config_id: int | None = None
    steps: list[GateStep] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    _nested: ClassVar[dict[str, Any]] = {"changes": Change, "steps": [GateStep]}

    @property
    def label(self) -> str:
        return ", ".join(self.changes) or "(no change)"

    @property
    def validated(self) -> bool:
        """Whether the gate ran a change on validation data (not a round that kept the
        current values, nor a change left untested for lack of runs)."""
        return bool(self.changes) and self.n > 0


@dataclass(frozen=True)
class Evaluation(Record):
    """Per-example mean scores of one config on one split (``None``: failed every repeat),
    with the first failed run's error, if any; under an objective with per-run limits, the
    runs' mean cost (USD) and wall time (s)."""

    kind: ClassVar[str] = "evaluation"
    split: str
    label: str
    config_id: int
    scores: list[float | None]
    n_failed: int
    repeats: int = 1
    first_error: str | None = None
    cost_per_run: float | None = None
    seconds_per_run: float | None = None

    @property
    def mean(self) -> float:
        """Mean over all examples, a failed example counting 0 (never silently dropped)."""
        return sum(s or 0.0 for s in self.scores) / len(self.scores) if self.scores else 0.0

    @property
    def all_failed(self) -> bool:
        return bool(self.scores) and all(s is None for s in self.scores)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "mean": self.mean, "n": len(self.scores)}

    @staticmethod
    def joined(parts: Sequence[tuple[Sequence[int], Evaluation]]) -> Evaluation:
        """One evaluation of a config from its ``parts`` (example indices, evaluation of
        those examples), its scores in the examples' order: a validation the gate ran in two
        parts (``gate.interim_look``)."""
        by_index = sorted((i, score) for indices, part in parts for i, score in zip(indices, part.scores))
        n = len(by_index)

        def mean(name: str) -> float | None:
            values = [(getattr(part, name), len(part.scores)) for _, part in parts]
            return None if any(v is None for v, _ in values) else sum(v * m for v, m in values) / n

        return dataclasses.replace(parts[0][1], scores=[score for _, score in by_index],
                                   n_failed=sum(part.n_failed for _, part in parts),
                                   first_error=next((p.first_error for _, p in parts if p.first_error), None),
                                   cost_per_run=mean("cost_per_run"), seconds_per_run=mean("seconds_per_run"))


@dataclass(frozen=True)
class LRFEvent(Record):
    """A local reward model trained (``stage`` "initial") or adapted after an accepted change.

    ``accuracy`` is ranking accuracy per node on pairs it was not trained on: held-out
    examples after training, the fresh pairs (before the update) after adapting;
    ``n_eval_by_node`` counts those pairs per node and ``n_eval_examples_by_node`` the
    distinct examples they come from (the ``n`` of the trust interval, ``lrf.trust``).
    """

    kind: ClassVar[str] = "lrf"
    stage: str
    checkpoint_id: int
    n_pairs: int
    accuracy: dict[str, float]
    n_eval_pairs: int | None = None
    train_loss: float | None = None
    train_accuracy: dict[str, float] | None = None
    n_eval_by_node: dict[str, int] | None = None
    n_eval_examples_by_node: dict[str, int] | None = None

    def trust(self, node: str) -> LRFTrust | None:
        """How far ``node``'s head can be trusted by these numbers (``None``: not measured here).
        An event stored before examples were counted falls back to its pair count."""
        if node not in self.accuracy:
            return None
        pairs = (self.n_eval_by_node or {}).get(node, 0)
        return LRFTrust.measure(node, self.accuracy[node], pairs,
                                (self.n_eval_examples_by_node or {}).get(node, pairs))

    def at_or_below_chance(self) -> dict[str, float]:
        """The nodes (not the overall figure) whose head ranks no better than a coin."""
        return {n: a for n, a in self.accuracy.items() if not n.startswith("__") and a <= 0.5}  # not __overall__


@dataclass(frozen=True)
class Collected(Record):
    """Training runs under the current config (the recorder keeps their node calls)."""

    runs: int
    failed: int
    mean: float | None
    first_error: str | None = None  # the first failed run's error line


@dataclass(frozen=True)
class PairsCollected(Record):
    """What preference-pair collection produced and cost, per node; ``without_lrf`` are the
    reached tunable nodes no pairs were collected for, since none of the knobs they read has
    a proposer that ranks with the LRF (a node with no recorded call is not among them);
    ``left_out`` the nodes that do, left out because their LRF could not earn trust on what
    the step could collect (``loop.pair_plan``), each with the reason; ``headroom`` is each
    node's mean gain of its best candidate over its current output."""

    pairs: dict[str, int]
    candidates: dict[str, int]
    llm_candidates: dict[str, int]
    failed_candidates: dict[str, int]
    skipped_calls: dict[str, int]
    system_runs: int
    max_runs: int | None
    without_lrf: list[str] = field(default_factory=list)
    headroom: dict[str, float] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodePicked(Record):
    """The node a round improves and why (``loop.passes.next_node``)."""

    kind: ClassVar[str] = "pick"
    iteration: int
    node: str
    reason: str


@dataclass(frozen=True)
class NodesSkipped(Record):
    """Tunable nodes a round could not pick: no recorded call under the current knobs (a
    route that never reaches them), so no inputs to evaluate candidates on. They are picked
    again once a change makes the runs reach them."""

    kind: ClassVar[str] = "skipped"
    iteration: int
    nodes: list[str]
    reason: str = "no recorded call under the current knobs"


@dataclass(frozen=True)
class Final(Record):
    """The job's outcome: the best config against the initial one."""

    kind: ClassVar[str] = "final"
    initial_config_id: int
    best_config_id: int
    val_before: float
    val_after: float
    test_before: float | None
    test_after: float | None
    stop_reason: str | None


def entry(record: Record) -> dict[str, Any]:
    """A record as one entry of the loop state's ``history`` (tagged with its type)."""
    return {"record": type(record).__name__, **record.to_json()}


def entries(history: list[dict[str, Any]] | None, cls: type[R]) -> list[R]:
    """The ``history`` entries of one record type, read back into it."""
    return [cls.from_json(h) for h in history or [] if h.get("record") == cls.__name__]


HISTORY_TYPES: dict[str, type[Record]] = {c.__name__: c for c in (Collected, PairsCollected, LRFEvent, NodePicked,
                                                                    NodesSkipped, Decision)}


def read_history(history: list[dict[str, Any]] | None) -> list[Record]:
    """Every ``history`` entry as its record."""
    return [HISTORY_TYPES[h["record"]].from_json(h) for h in history or [] if h.get("record") in HISTORY_TYPES]
