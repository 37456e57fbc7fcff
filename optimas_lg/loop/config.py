"""What an optimization job is: where its pieces come from (``JobSpec``) and how it
spends effort (``OptimizeConfig``). Both are plain JSON so a job can be stored, resumed
from the command line and edited in LangGraph Studio."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from optimas_lg.errors import SettingsError
from optimas_lg.loop.budget import Budget
from optimas_lg.loop.gate import GateConfig
from optimas_lg.lrf import LRFConfig
from optimas_lg.lrf.collect import PairConfig
from optimas_lg.proposers.cost import CheapRuns
from optimas_lg.proposers.registry import KINDS, build_proposers
from optimas_lg.settings import from_settings
from optimas_lg.store import Store


@dataclass
class JobSpec:
    """Targets and data files by name: ``target`` and ``metric`` as ``file.py:attr`` or
    ``module:attr``, data as JSONL/JSON/CSV paths (val/test optional)."""

    target: str
    metric: str
    train: str
    val: str | None = None
    test: str | None = None
    inputs: list[str] | None = None
    labels: list[str] | None = None
    key_field: str = "id"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def create_job(self, store: Store, config: "OptimizeConfig") -> int:
        """A new optimize job in ``store`` that carries this spec and ``config``, so that
        it can be resumed by id; returns the job id."""
        return store.create_job("optimize", self.target, {"spec": self.to_dict(), "config": config.to_dict()})


@dataclass
class OptimizeConfig:
    """Every setting of the optimizer loop, with defaults sized for a 2-core CPU.

    ``val_fraction`` carves a validation set out of the training data when none is
    given; ``val_repeats`` reruns each validation example (for stochastic systems);
    ``adapt_examples`` is the mini-batch of fresh trajectories used to keep the LRF
    aligned after an accepted change. ``kinds`` limits which knob kinds are optimized
    (e.g. leave out ``"lora"`` when RL on a CPU does not fit the time budget);
    ``proposers`` overrides each kind's proposer config (``optimas_lg.proposers``).
    ``pairs`` sizes pair collection (``PairConfig``: knob samples, ``llm_samples`` drawn at
    ``temperature``, rollouts, calls per node); its system runs count against
    ``budget.max_system_runs``, which caps the pairs and adapt steps from inside.
    ``cheap_runs`` is the rule that calls the graph's system runs cheap (measured tokens,
    optionally seconds, per run); then numeric and choice knobs are searched on the global
    metric over ``global_examples`` training examples per trial, as plain Optuna would,
    every run counted against the budget (``optimas_lg.proposers.joint``).
    """

    budget: Budget = field(default_factory=Budget)
    gate: GateConfig = field(default_factory=GateConfig)
    pairs: PairConfig = field(default_factory=PairConfig)
    lrf: LRFConfig = field(default_factory=lambda: LRFConfig(epochs=4, progress=False))
    lrf_eval_fraction: float = 0.25
    val_fraction: float = 0.4
    val_repeats: int = 1
    adapt_examples: int = 8
    cheap_runs: CheapRuns = field(default_factory=CheapRuns)
    global_examples: int = 8
    concurrency: int = 8
    seed: int = 0
    kinds: list[str] = field(default_factory=lambda: ["choice", "int", "float", "prompt", "lora"])
    proposers: dict[str, dict[str, Any]] = field(default_factory=dict)
    write_report: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> OptimizeConfig:
        """Settings JSON (``to_dict`` output, a ``--settings`` file, Studio's context) back
        into a config, every section and proposer setting checked: anything unknown, of the
        wrong type or invalid raises ``SettingsError`` naming it."""
        config = from_settings(cls, data, "optimize")
        config.validate()
        return config

    def validate(self) -> None:
        """Check what the field types alone do not: knob kinds and each proposer's settings."""
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise SettingsError(f"unknown knob kinds {unknown} in kinds; knob kinds: {list(KINDS)}")
        build_proposers(self.proposers)
