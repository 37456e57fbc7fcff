"""What a node proposer is given and what it returns.

A proposer improves one knob of one node against that node's local reward function
(LRF). It sees the node only through two callables, ``run_node`` and ``score``, so it
works the same on a LangGraph node, a replayed call or a test double, and it never
runs the whole graph (the loop validates proposals on the global metric afterwards).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from optimas_lg.errors import OptimasError
from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.lrf.trust import LRFTrust
from optimas_lg.proposers.cost import RunCost
from optimas_lg.store import Store

ScoreFn = Callable[[list[tuple[dict, dict]]], list[float]]
"""The node's LRF: ``[(input_state, output_update), ...] -> [score, ...]`` in request order."""
RunNodeFn = Callable[[dict, dict], dict]
"""Run the node alone: ``(input_state, knob_assignment) -> output_update``."""
GlobalCheckFn = Callable[[dict], float]
"""Run a few full-system examples under a knob assignment and return the mean global metric."""
OutputFn = Callable[[dict, str], dict]
"""Map one LLM completion of the node back to the node's output update."""
ALL_NODES = "*"
"""The ``node`` of a context whose knobs belong to several nodes (the loop's system round):
only a search on ``global_check`` works there, as there is no one node to run or score."""


class ProposalError(OptimasError):
    """A proposer cannot work on the knob or context it was given."""


@dataclass(frozen=True)
class RecordedCall:
    """Where one recorded input came from: the node call, its run and training example,
    the run's final score, and the call's input and output as stored (JSON)."""

    call_id: str
    run_id: str
    example_key: str
    run_score: float | None
    input: dict
    output: Any


@dataclass
class ProposalContext:
    """Everything a proposer may use about one node.

    ``inputs`` are recorded input states of the node; ``current`` is the full knob
    assignment in force. ``run_node`` must be thread-safe when a config asks for more
    than one worker. ``llm_prompts`` (input state, ``LLMCall.messages`` as the node sent
    them) and ``lora_output_fn`` serve LoRA training; ``global_check`` guards it against
    reward hacking. With a ``store`` and ``job_id`` every proposal is recorded as an
    optimizer event of kind ``"proposal"``; ``charge_tokens`` counts the proposer's own LLM
    tokens (``Cost.llm_tokens``) against the job's budget.
    ``calls``, when given, are the records behind ``inputs`` (same
    order), all from training runs: demonstrations are drawn from them.
    ``value_cost`` (set when the job's objective weighs cost) prices a knob value, such as
    a model name (``None``: not priced), so model selection can prefer a cheaper option.

    ``run_cost`` is what a system run of the graph costs (and whether that is cheap);
    one ``global_check`` spends ``global_runs`` system runs and ``runs_left()`` says how
    many the budget still allows (``None``: no limit). ``rejected`` lists changes
    (``{knob: value}``) the gate rejected under the same LRF and data: not to propose again.
    ``judged`` lists every change the gate has found no better in this job (rejected ones,
    and the values an accepted change replaced): a draw with nothing to go on avoids them.
    ``trust`` is how far the node's LRF ranks pairs it was not trained on better than chance
    (``None``: ``score`` is not a trained LRF, nothing to trust); an untrusted LRF does not
    pick the winner alone (``proposers.trusted``). ``global_only`` (the loop's
    ``ranking="global"``) means there is no LRF at all: every candidate goes to the global check.
    """

    node: str
    knobs: list[KnobSpec]
    current: dict[str, Any]
    inputs: list[dict]
    score: ScoreFn
    run_node: RunNodeFn
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    doc: str = ""
    llm_prompts: list[tuple[dict, Any]] = field(default_factory=list)
    lora_output_fn: OutputFn | None = None
    global_check: GlobalCheckFn | None = None
    calls: list[RecordedCall] = field(default_factory=list)
    value_cost: Callable[[Any], float | None] | None = None
    store: Store | None = None
    job_id: int | None = None
    iteration: int | None = None
    seed: int = 0
    charge_tokens: Callable[[int], None] | None = None
    run_cost: RunCost | None = None
    global_runs: int = 0
    runs_left: Callable[[], int | None] | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    judged: list[dict[str, Any]] = field(default_factory=list)
    trust: LRFTrust | None = None
    global_only: bool = False

    @property
    def without_lrf(self) -> bool:
        """No trained LRF scored the candidates: ``ranking="global"``, or a node no pair was
        collected for (``LRFTrust.untrained``), whose "LRF scores" are ties that say nothing."""
        return self.global_only or (self.trust is not None and not self.trust.trained)

    def lrf_ties(self, details: Mapping[str, Any]) -> bool:
        """Whether a search with these ``details`` ranked by "LRF scores" no LRF made: ties
        that say nothing (a search scored by another objective names it in ``objective``)."""
        return self.without_lrf and details.get("objective", "lrf") == "lrf"

    def system_runs_left(self) -> int | None:
        """System runs the job's budget still allows (``None``: no limit, or none known)."""
        return self.runs_left() if self.runs_left is not None else None

    def rejected_change(self, values: dict[str, Any]) -> bool:
        """Whether applying ``values`` to ``current`` makes a change the validation gate
        already rejected (``rejected`` holds those since the LRF or the data last changed)."""
        return self._change(values) in self.rejected

    def judged_change(self, values: dict[str, Any]) -> bool:
        """Whether applying ``values`` makes a change the gate has found no better in this job."""
        return self._change(values) in self.judged

    def _change(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """What applying ``values`` to ``current`` changes (``None``: nothing)."""
        return {k: v for k, v in values.items() if self.current.get(k) != v} or None


@dataclass
class Cost:
    """What a proposal spent. ``llm_tokens`` counts the proposer's own LLM use (the prompt
    writer's tokens, GRPO rollout tokens), not the node's calls inside ``node_runs``."""

    node_runs: int = 0
    system_runs: int = 0
    lrf_calls: int = 0
    llm_tokens: int = 0
    seconds: float = 0.0


@dataclass
class Proposal:
    """A proposed value for one knob, with the LRF evidence behind it.

    ``values`` is the full knob assignment with the proposal applied; when no candidate
    beat the current value, ``value == previous`` and the proposal is "no change".
    ``candidates`` lists every value tried with its mean LRF score on the same inputs.
    A joint search over several knobs makes one proposal: ``knob`` names them all
    (comma-separated), ``kind`` is ``"joint"`` and values are ``{knob: value}`` maps.
    """

    node: str
    knob: str
    kind: KnobKind | str
    previous: Any
    value: Any
    values: dict[str, Any]
    current_score: float | None  # None: no LRF scored the candidates (nothing to show but ties)
    proposed_score: float | None
    cost: Cost
    candidates: list[tuple[Any, float]]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def estimated_gain(self) -> float | None:
        if self.proposed_score is None or self.current_score is None:
            return None
        return self.proposed_score - self.current_score

    @property
    def changed(self) -> bool:
        return self.value != self.previous

    @property
    def knob_names(self) -> list[str]:
        """The knobs this proposal sets: its one knob, or every knob of a joint search."""
        return list(self.value) if self.kind == "joint" else [self.knob]

    def to_json(self) -> dict[str, Any]:
        """The JSON the store keeps as the ``proposal`` event's payload."""
        return {**asdict(self), "candidates": [[value, score] for value, score in self.candidates],
                "changed": self.changed, "estimated_gain": self.estimated_gain}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proposal:
        """A proposal back from its ``to_json`` form."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["cost"] = Cost(**values.get("cost", {}))
        values["candidates"] = [(value, score) for value, score in values.get("candidates", [])]
        return cls(**values)


@dataclass
class EvalConfig:
    """How candidates are measured: on at most ``max_inputs`` recorded inputs (the same
    ones for every candidate, so comparisons are paired), ``workers`` node runs at a time.

    A node that raises on an input scores ``failure_score`` there; by default that is
    one full score spread below the worst output seen, since LRF scales are arbitrary.
    When the node's LRF is not trusted, its ``check_top`` best candidates and the current
    value are scored on the global metric instead, which picks the winner (0: never; the
    LRF picks alone, as in the paper).
    """

    max_inputs: int = 8
    workers: int = 4
    failure_score: float | None = None
    check_top: int = 3

    def __post_init__(self) -> None:
        if self.check_top < 0:
            raise ValueError(f"check_top must be >= 0 (0: the LRF always picks alone), got {self.check_top}")
