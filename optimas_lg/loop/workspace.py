"""The in-process side of a job: the loaded system, data and metric, the store, and the
current local reward model. The optimizer graph's checkpointed state holds only ids and
numbers; everything heavy lives here and is rebuilt from the job's spec on resume."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from optimas_lg.data import Example, Metric, load_examples, split
from optimas_lg.errors import OptimasError
from optimas_lg.execution.replay import rollout_from, run_node
from optimas_lg.execution.runner import RunSummary, run_examples
from optimas_lg.graph import serde
from optimas_lg.graph.knobs import KnobSpec
from optimas_lg.graph.system import System
from optimas_lg.graph.target import load_target
from optimas_lg.home import subdir
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.lrf import (
    LocalRewardModel,
    LRFTrainer,
    PreferencePair,
    ScoreRequest,
    TrainReport,
    checkpoint,
    split_by_example,
)
from optimas_lg.lrf.collect import PairConfig, PairStats, collect_node_pairs, delete_stage
from optimas_lg.proposers import Proposer, build_proposers
from optimas_lg.store import Store
from optimas_lg.store import models as m


@dataclass
class Evaluation:
    """Per-example mean scores of one config on one split (``None``: failed every repeat)."""

    scores: list[float | None]
    n_failed: int

    @property
    def mean(self) -> float:
        """Mean over all examples, a failed example counting 0 (never silently dropped)."""
        return sum(s or 0.0 for s in self.scores) / len(self.scores) if self.scores else 0.0

    def payload(self, split_name: str, label: str, config_id: int, repeats: int) -> dict[str, Any]:
        return {"split": split_name, "label": label, "config_id": config_id, "mean": self.mean,
                "n": len(self.scores), "n_failed": self.n_failed, "scores": self.scores, "repeats": repeats}


@dataclass
class Workspace:
    system: System
    metric: Metric
    trainset: list[Example]
    valset: list[Example]
    testset: list[Example]
    store: Store
    config: OptimizeConfig
    job_id: int
    lrf: LocalRewardModel | None = None
    trainer: LRFTrainer | None = None
    lrf_path: str | None = None
    proposers: dict[str, Proposer] = field(default_factory=dict)
    _examples: dict[str, Example] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: JobSpec, config: OptimizeConfig, store: Store, job_id: int) -> "Workspace":
        """Load target, metric and data named by a spec (used by the CLI, Studio and resume)."""
        system = System.load(spec.target)
        metric = load_target(spec.metric)
        train = load_examples(spec.train, spec.inputs, spec.labels, spec.key_field)
        val = load_examples(spec.val, spec.inputs, spec.labels, spec.key_field) if spec.val else None
        test = load_examples(spec.test, spec.inputs, spec.labels, spec.key_field) if spec.test else []
        return cls.create(system, metric, train, val, test, store, config, job_id)

    @classmethod
    def create(cls, system: System, metric: Metric, trainset: Sequence[Example], valset: Sequence[Example] | None,
               testset: Sequence[Example] | None, store: Store, config: OptimizeConfig, job_id: int) -> "Workspace":
        """Without a validation set, a seeded ``val_fraction`` of the training data becomes one."""
        trainset = list(trainset)
        if valset is None:
            val_part, train_part = split(trainset, [config.val_fraction, 1 - config.val_fraction], config.seed)
            trainset, valset = train_part, val_part
        ws = cls(system, metric, trainset, list(valset), list(testset or []), store, config, job_id)
        keys = [e.key for e in [*ws.trainset, *ws.valset, *ws.testset]]
        if len(set(keys)) != len(keys):
            raise OptimasError("train, validation and test examples must have distinct keys")
        ws._examples = {e.key: e for e in [*ws.trainset, *ws.valset, *ws.testset]}
        ws.proposers = build_proposers(config.proposers)
        if not ws.tunable_nodes():
            raise OptimasError(f"{system.name} has no knobs of the kinds {config.kinds}; declare knobs in its "
                               "context schema (optimas_lg.Prompt, Choice, IntRange, FloatRange, LoRA)")
        return ws

    # -- what may be tuned --------------------------------------------------------
    def tunable_knobs(self, node: str) -> list[KnobSpec]:
        """The node's knobs of the allowed kinds, in the order of ``config.kinds``."""
        specs = [s for s in self.system.knobs.values() if s.node == node and s.kind in self.config.kinds]
        return sorted(specs, key=lambda s: self.config.kinds.index(s.kind))

    def tunable_nodes(self) -> list[str]:
        return [n for n in self.system.optimizable_nodes() if self.tunable_knobs(n)]

    # -- running the user's system ------------------------------------------------
    def run(self, examples: Sequence[Example], knobs: dict[str, Any], config_id: int, purpose: str) -> RunSummary:
        return run_examples(self.system, list(examples), self.metric, knobs, self.store, job_id=self.job_id,
                            config_id=config_id, concurrency=self.config.concurrency, purpose=purpose,
                            progress=False)

    def evaluate(self, examples: Sequence[Example], knobs: dict[str, Any], config_id: int) -> Evaluation:
        """Score a config on examples, ``val_repeats`` times, averaging per example."""
        repeats = max(1, self.config.val_repeats)
        per_example: list[list[float]] = [[] for _ in examples]
        failed = 0
        for _ in range(repeats):
            summary = self.run(examples, knobs, config_id, purpose="eval")
            for i, result in enumerate(summary.results):
                if result.error is None and result.score is not None:
                    per_example[i].append(result.score)
                else:
                    failed += 1
        return Evaluation([sum(s) / len(s) if s else None for s in per_example], failed)

    def spent(self) -> tuple[int, int]:
        """(system runs, LLM tokens) recorded for this job so far."""
        with self.store.session() as s:
            runs = s.scalar(select(func.count()).select_from(m.Run).where(m.Run.job_id == self.job_id)) or 0
            tokens = s.scalar(
                select(func.coalesce(func.sum(m.LLMCall.prompt_tokens + m.LLMCall.completion_tokens), 0))
                .join(m.Run, m.Run.id == m.LLMCall.run_id).where(m.Run.job_id == self.job_id)
            ) or 0
        return int(runs), int(tokens)

    # -- recorded node calls ------------------------------------------------------
    def node_calls(self, node: str, example_keys: Sequence[str] | None = None) -> tuple[list[m.NodeCall], dict[str, str]]:
        """The latest recorded call of ``node`` per training example (from collect runs),
        and a map from run id to example key."""
        where = [m.Run.job_id == self.job_id, m.Run.purpose == "collect", m.Run.status == "done"]
        if example_keys is not None:
            where.append(m.Run.example_key.in_(list(example_keys)))
        with self.store.session() as s:
            rows = s.execute(
                select(m.NodeCall, m.Run.example_key).join(m.Run, m.Run.id == m.NodeCall.run_id)
                .where(*where, m.NodeCall.node == node, m.NodeCall.kind == "node", m.NodeCall.error.is_(None))
                .order_by(m.NodeCall.started_at)
            ).all()
        latest: dict[str, m.NodeCall] = {}
        run_keys: dict[str, str] = {}
        for call, key in rows:
            latest[key] = call
            run_keys[call.run_id] = key
        return list(latest.values()), run_keys

    def collect_pairs(self, knobs: dict[str, Any], config: PairConfig, stage: str,
                      example_keys: Sequence[str] | None = None,
                      nodes: Sequence[str] | None = None,
                      max_runs: int | None = None) -> tuple[list[PreferencePair], PairStats]:
        """Preference pairs for every optimizable node (or only ``nodes``) from the recorded
        collect runs (replacing whatever an interrupted run of the same ``stage`` stored).

        ``max_runs`` caps the system runs (rollouts) of the whole collection: each node in
        turn gets an equal share of what is left (a node that needs less leaves the rest to
        the nodes after it), and no node exceeds its share.
        """
        delete_stage(self.store, self.job_id, stage)
        pairs: list[PreferencePair] = []
        stats = PairStats()
        todo = list(nodes or self.tunable_nodes())
        for i, node in enumerate(todo):
            share = None if max_runs is None else max(0, max_runs - stats.system_runs) // (len(todo) - i)
            calls, run_keys = self.node_calls(node, example_keys)
            node_pairs, node_stats = collect_node_pairs(
                self.system, node, calls, self._examples, run_keys, self.metric, knobs, config,
                run_node=run_node, rollout_from=rollout_from, decode_state=self.decode_raw,
                store=self.store, job_id=self.job_id, stage=stage, max_runs=share)
            pairs += node_pairs
            stats.add(node_stats)
        return pairs, stats

    def remaining_runs(self) -> int | None:
        """System runs left under ``budget.max_system_runs`` (``None``: no such limit)."""
        limit = self.config.budget.max_system_runs
        return None if limit is None else max(0, limit - self.spent()[0])

    def sample_train(self, n: int, salt: str) -> list[Example]:
        rng = random.Random(f"{self.config.seed}:{salt}")
        return rng.sample(self.trainset, min(n, len(self.trainset)))

    # -- the local reward model ---------------------------------------------------
    def node_descriptions(self) -> dict[str, str]:
        return {n: self.system.graph.nodes[n].doc or n for n in self.tunable_nodes()}

    def save_lrf(self, name: str) -> str:
        path = subdir("lrf") / f"job{self.job_id}-{name}"
        checkpoint.save(self.lrf, path)
        self.lrf_path = str(path)
        return self.lrf_path

    def train_lrf(self, pairs: list[PreferencePair], name: str) -> tuple[TrainReport, list[PreferencePair], int]:
        """Train a fresh LRF on ``pairs`` minus a held-out ``lrf_eval_fraction`` of their
        examples; save, register and log it. Returns the report (``eval_accuracy`` on the
        held-out pairs), the held-out pairs and the checkpoint id."""
        train, held_out = split_by_example(pairs, self.config.lrf_eval_fraction, self.config.seed)
        self.lrf = LocalRewardModel(self.node_descriptions(), self.config.lrf)
        self.trainer = LRFTrainer(self.lrf)
        report = self.trainer.train(train, held_out)
        path = self.save_lrf(name)
        accuracy = report.eval_accuracy or {}
        metrics = {"accuracy": accuracy, "eval_examples": sorted({p.example_key for p in held_out})}
        ckpt = self.store.add_lrf_checkpoint(path, self.lrf.config.resolved_backbone(), sorted(self.lrf.nodes),
                                             metrics, job_id=self.job_id)
        self.store.add_event(self.job_id, "lrf", {
            "stage": name, "checkpoint_id": ckpt, "n_pairs": len(pairs), "n_eval_pairs": len(held_out),
            "accuracy": accuracy, "train_loss": report.loss_history[-1] if report.loss_history else None})
        return report, held_out, ckpt

    def load_lrf(self, path: str, replay_pairs: list) -> None:
        """Load a checkpoint (after a resume) and refill the trainer's replay buffer."""
        if self.lrf_path == path and self.lrf is not None:
            return
        self.lrf = checkpoint.load(Path(path), expected_nodes=set(self.node_descriptions()))
        self.trainer = LRFTrainer(self.lrf)
        if replay_pairs:
            self.trainer.replay.add(replay_pairs)
        self.lrf_path = path

    def lrf_scorer(self, node: str, reads: Sequence[str]):
        """The node's LRF as ``[(state, output), ...] -> [score, ...]``."""

        def score(items: list[tuple[dict, dict]]) -> list[float]:
            requests = [ScoreRequest(str(i), node, {k: st[k] for k in (reads or st) if k in st}, out)
                        for i, (st, out) in enumerate(items)]
            return self.lrf.score_many(requests)

        return score

    def decode(self, call: m.NodeCall) -> dict:
        """The full input state of a recorded node call, as the node saw it."""
        return self.decode_raw(call.inputs)

    @staticmethod
    def decode_raw(raw: Any) -> dict:
        return serde.from_json(raw)

    def llm_prompts(self, calls: Sequence[m.NodeCall]) -> list[tuple[dict, list[dict]]]:
        """(input state, chat messages as sent) of the LLM calls made inside ``calls``."""
        by_call = {c.id: c for c in calls}
        if not by_call:
            return []
        rows = self.store.select(m.LLMCall, m.LLMCall.node_call_id.in_(list(by_call)))
        return [(self.decode(by_call[r.node_call_id]), r.messages) for r in rows if r.messages]

    def global_check(self, config_id: int, n: int = 8):
        """A few full-system runs on training examples under a knob assignment: the
        global metric's mean, which guards LoRA training against reward hacking."""
        batch = self.sample_train(n, "global-check")

        def check(knobs: dict[str, Any]) -> float:
            return self.evaluate(batch, knobs, config_id).mean

        return check

    def run_node(self, node: str):
        return lambda state, knobs: run_node(self.system, node, state, knobs)
