"""What an optimization job is: where its pieces come from (``JobSpec``) and how it
spends effort (``OptimizeConfig``). Both are plain JSON so a job can be stored, resumed
from the command line and edited in LangGraph Studio."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args

from optimas_lg.data import field_names
from optimas_lg.errors import DataError, SettingsError
from optimas_lg.loop.budget import Budget
from optimas_lg.loop.gate import GateConfig
from optimas_lg.loop.objective import Objective
from optimas_lg.loop.passes import NODE_ORDERS, NodeOrder
from optimas_lg.lrf import LRFConfig
from optimas_lg.lrf.collect import PairConfig
from optimas_lg.pricing import PriceTable
from optimas_lg.proposers.cost import CheapRuns
from optimas_lg.proposers.registry import KINDS, build_proposers
from optimas_lg.settings import from_settings
from optimas_lg.store import Store

Ranking = Literal["lrf", "random", "global"]
"""How proposers rank candidate values: by the node's LRF (the method), at random, or by the
global metric on a training mini-batch (the last two are the paper's ablations)."""
RANKINGS: tuple[str, ...] = get_args(Ranking)


@dataclass
class JobSpec:
    """Targets and data files by name: ``target`` and ``metric`` as ``file.py:attr`` or
    ``module:attr``, data as JSONL/JSON/CSV paths (val/test optional).

    ``context`` fixes the context schema's fields that are not knobs (``System.load(...,
    context=...)``). A stored job also keeps ``workdir``, the directory its relative paths
    were given in, and ``data_sha256``, each data file's digest when it started: a resume
    from another directory reads the same files, and one whose data changed since is
    refused rather than mixing two datasets in one job.
    """

    target: str
    metric: str
    train: str
    val: str | None = None
    test: str | None = None
    inputs: list[str] | None = None
    labels: list[str] | None = None
    key_field: str | None = None
    context: dict[str, Any] | None = None
    workdir: str | None = None
    data_sha256: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.inputs, self.labels = field_names(self.inputs), field_names(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def located(self, ref: str | None) -> str | None:
        """A relative data path, or the file of a ``file.py:attr`` target, against ``workdir``
        (a ``module:attr`` target is imported with ``workdir`` on ``sys.path`` instead)."""
        if ref is None or self.workdir is None:
            return ref
        module, sep, attr = ref.rpartition(":")
        if sep and not (module.endswith(".py") or "/" in module):
            return ref
        path = module if sep else ref
        located = path if os.path.isabs(os.path.expanduser(path)) else os.path.join(self.workdir, path)
        return f"{located}:{attr}" if sep else located

    def data_files(self) -> dict[str, str]:
        """Each given data split's file, located."""
        return {name: self.located(ref) for name in ("train", "val", "test")  # type: ignore[misc]
                if (ref := getattr(self, name)) is not None}

    def check_data(self) -> None:
        """Refuse data files that changed since the job started (``data_sha256``)."""
        files = self.data_files()
        for name, digest in (self.data_sha256 or {}).items():
            path = files[name]
            if os.path.exists(path) and _sha256(path) != digest:
                raise DataError(f"{path}: the {name} data changed since this job started (sha256 differs); "
                                "restore the file or start a new job")

    def create_job(self, store: Store, config: "OptimizeConfig", server: dict[str, Any] | None = None) -> int:
        """A new optimize job in ``store`` that carries this spec, ``config`` and the server
        it runs on (if any), so that it can be resumed by id; returns the job id."""
        self.workdir = self.workdir or os.getcwd()
        self.data_sha256 = self.data_sha256 or {name: _sha256(path) for name, path in self.data_files().items()}
        meta = {"spec": self.to_dict(), "config": config.to_dict(), **({"server": server} if server else {})}
        return store.create_job("optimize", self.target, meta)


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


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
    ``budget.max_system_runs``, which caps the pairs and adapt steps from inside, and the
    first collection may spend at most ``pairs_share`` of the runs left after the baseline
    and the first collect runs, so the rest pays for proposals and validations. Pairs are
    collected only for nodes whose proposers rank with the LRF (not for numeric and choice
    knobs searched on the global metric because system runs are cheap).

    Three ablations of the method (the paper's, run side by side by ``bench/suite``):
    ``ranking="random"`` ranks each proposer's candidates by seeded random scores instead
    of the LRF, so no pairs are collected and no LRF is trained (the gate is the same);
    ``ranking="global"`` ("global reward only") trains no LRF either and scores every
    candidate on the global metric over ``global_examples`` training examples, each of
    those system runs counted against the budget;
    ``adapt_lrf=False`` keeps the first LRF for the whole job (the fresh runs still supply
    later rounds' inputs; no fresh pairs or LRF updates after an accepted change).

    ``node_order`` chooses each round's node among those the current pass has not visited:
    ``"headroom"`` (default) takes first the node whose candidates in the pairs beat its
    current output by the most, a free by-product of pair collection; ``"random"`` is the
    paper's uniform draw, and what the loop falls back on when no pairs were collected
    (``loop.passes.next_node``).

    ``initial_knobs`` warm-starts the loop: the knob values it starts from instead of the
    graph's defaults (unset knobs keep their defaults).

    ``prices`` overrides or extends the default price table
    (``{"model": {"prompt": USD, "completion": USD}}`` per 1M tokens, ``optimas_lg.pricing``);
    ``objective`` weighs each validation run's cost and latency against its score (``Objective``).

    ``cheap_runs`` is the rule that calls the graph's system runs cheap (measured tokens,
    optionally seconds, per run); then numeric and choice knobs are searched on the global
    metric over ``global_examples`` training examples per trial, as plain Optuna would,
    every run counted against the budget (``optimas_lg.proposers.joint``).

    ``system_round`` makes the first round search the choice and numeric knobs of every
    reached node together on that global metric, behind the same gate, before the nodes'
    own rounds (``optimas_lg.loop.system_round``); off, every round improves one node. Its
    search may spend ``system_round_share`` of the runs left once its validation is paid,
    or an equal share with the rounds after it when that is more (``loop.budget``).

    ``pairs_plan_accuracy`` is the held-out ranking accuracy the pairs are planned for
    (``optimas_lg.loop.pair_plan``): a node gets pairs only when its share of the runs can
    serve enough examples that an LRF ranking that well would be trusted; the others, and
    at a small budget every node, are left to the global check an untrusted LRF falls back
    on, and their runs go to the rounds. The default, 0.78, is the accuracy the paper
    reports inside its optimization runs, above every learning curve measured here at the
    loop's budgets (docs/lrf.md); 1.0 plans for a perfect ranking, the weakest rule;
    ``None`` gives every node whose proposers rank with the LRF its share of
    ``pairs_share`` whatever the budget.
    """

    budget: Budget = field(default_factory=Budget)
    gate: GateConfig = field(default_factory=GateConfig)
    pairs: PairConfig = field(default_factory=PairConfig)
    lrf: LRFConfig = field(default_factory=lambda: LRFConfig(epochs=4, progress=False))
    lrf_eval_fraction: float = 0.25
    pairs_share: float = 0.5
    val_fraction: float = 0.4
    val_repeats: int = 1
    adapt_examples: int = 8
    ranking: Ranking = "lrf"
    adapt_lrf: bool = True
    node_order: NodeOrder = "headroom"
    cheap_runs: CheapRuns = field(default_factory=CheapRuns)
    global_examples: int = 8
    system_round: bool = True
    system_round_share: float = 0.5
    pairs_plan_accuracy: float | None = 0.78
    concurrency: int = 8
    seed: int = 0
    kinds: list[str] = field(default_factory=lambda: ["choice", "int", "float", "prompt", "demos", "lora"])
    proposers: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    objective: Objective = field(default_factory=Objective)
    write_report: bool = True
    initial_knobs: dict[str, Any] = field(default_factory=dict)

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

    @property
    def uses_lrf(self) -> bool:
        """Whether proposers rank candidates by a trained LRF (so pairs must be collected)."""
        return self.ranking == "lrf"

    def with_options(self, *, seed: int | None = None, initial_knobs: Mapping[str, Any] | None = None,
                     **budget: Any) -> OptimizeConfig:
        """This config with the options every entry point takes by the same names (the API's
        keywords, the CLI's flags, Studio's context fields) applied; ``None`` leaves a
        setting as it is. Raises ``SettingsError`` for an unknown budget limit."""
        unknown = sorted(set(budget) - {f.name for f in fields(Budget)})
        if unknown:
            raise SettingsError(f"unknown option(s) {unknown}; budget limits: {[f.name for f in fields(Budget)]}")
        limits = {k: v for k, v in budget.items() if v is not None}
        config = replace(self, budget=replace(self.budget, **limits))
        if seed is not None:
            config = replace(config, seed=seed)
        if initial_knobs:
            config = replace(config, initial_knobs=dict(initial_knobs))
        return from_settings(OptimizeConfig, config.to_dict(), "optimize")

    def validate(self) -> None:
        """Check what the field types alone do not: knob kinds and each proposer's settings."""
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise SettingsError(f"unknown knob kinds {unknown} in kinds; knob kinds: {list(KINDS)}")
        if not 0 < self.pairs_share <= 1:
            raise SettingsError(f"pairs_share must be in (0, 1], got {self.pairs_share}")
        if not 0 < self.system_round_share <= 1:
            raise SettingsError(f"system_round_share must be in (0, 1], got {self.system_round_share}")
        if self.pairs_plan_accuracy is not None and not 0.5 < self.pairs_plan_accuracy <= 1:
            raise SettingsError(f"pairs_plan_accuracy must be in (0.5, 1] or null, got {self.pairs_plan_accuracy}")
        if self.node_order not in NODE_ORDERS:
            raise SettingsError(f"unknown node_order {self.node_order!r}; node orders: {list(NODE_ORDERS)}")
        if self.ranking not in RANKINGS:
            raise SettingsError(f"unknown ranking {self.ranking!r}; rankings: {list(RANKINGS)}")
        build_proposers(self.proposers)
        PriceTable(self.prices)
