"""The life cycle of one job's local reward model: train, adapt, save, reload, score.

The model lives only as long as the job's ``Workspace``; every version is saved under
the storage home, registered in the store and logged as an ``LRFEvent``, so a resumed
job reloads exactly the model its checkpointed state names.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from optimas_lg.errors import LRFError
from optimas_lg.graph.reads import read_values
from optimas_lg.home import subdir
from optimas_lg.loop.records import LRFEvent
from optimas_lg.lrf import (
    LocalRewardModel,
    LRFConfig,
    LRFTrainer,
    PreferencePair,
    ScoreRequest,
    checkpoint,
    ranking_accuracy,
    split_by_example,
)
from optimas_lg.store import Store

ScoreFn = Callable[[list[tuple[dict, dict]]], list[float]]


def random_scorer(salt: str) -> ScoreFn:
    """Scores drawn uniformly at random (seeded by ``salt``): what proposers rank by in the
    ``ranking="random"`` ablation, so a candidate wins by chance, not by any reward."""
    rng = random.Random(salt)

    def score(items: list[tuple[dict, dict]]) -> list[float]:
        return [rng.random() for _ in items]

    return score


def tied_scores(items: list[tuple[dict, dict]]) -> list[float]:
    """The same score for every output: the ``ranking="global"`` ablation has no local
    signal, so only its global check can move a knob off the current value."""
    return [0.0] * len(items)


class LocalRewards:
    """One job's LRF (shared backbone, one head per node) and its trainer."""

    def __init__(self, store: Store, job_id: int | None, nodes: dict[str, str], config: LRFConfig,
                 eval_fraction: float, seed: int) -> None:
        self.store = store
        self.job_id = job_id
        self.nodes = nodes  # node -> description, the heads' text prefix
        self.config = config
        self.eval_fraction = eval_fraction
        self.seed = seed
        self.model: LocalRewardModel | None = None
        self.trainer: LRFTrainer | None = None
        self.path: str | None = None

    def train(self, pairs: list[PreferencePair], stage: str) -> tuple[LRFEvent, list[PreferencePair]]:
        """A fresh model on ``pairs`` minus a held-out ``eval_fraction`` of their examples;
        saved, registered and logged, its accuracy measured on the held-out pairs (returned
        with the event). Pairs from a single example leave nothing to hold out: the model is
        trained on them all and, unmeasured, never trusted (``lrf.trust``)."""
        if len({p.example_key for p in pairs}) < 2:
            train, held_out = pairs, []
        else:
            train, held_out = split_by_example(pairs, self.eval_fraction, self.seed)
        self.model = LocalRewardModel(self.nodes, self.config)
        self.trainer = LRFTrainer(self.model)
        report = self.trainer.train(train, held_out)
        accuracy = report.eval_accuracy or {}
        checkpoint_id = self._save(stage, {"accuracy": accuracy,
                                           "eval_examples": sorted({p.example_key for p in held_out})})
        event = LRFEvent(stage=stage, checkpoint_id=checkpoint_id, n_pairs=len(pairs), accuracy=accuracy,
                         n_eval_pairs=len(held_out), n_eval_by_node=_per_node(held_out),
                         n_eval_examples_by_node=_examples_per_node(held_out),
                         train_loss=report.loss_history[-1] if report.loss_history else None,
                         train_accuracy=report.train_accuracy)
        self.store.add_event(self.job_id, event.kind, event.to_json())
        return event, held_out

    def adapt(self, fresh: list[PreferencePair], stage: str, iteration: int) -> LRFEvent:
        """A few steps on ``fresh`` pairs mixed with the replay buffer; accuracy is measured
        on the fresh pairs before the update (how well the model still tracked the system)."""
        model, trainer = self._require()
        before = ranking_accuracy(model, fresh)
        report = trainer.adapt(fresh)
        checkpoint_id = self._save(stage, {"fresh_accuracy_before": before})
        event = LRFEvent(stage=stage, checkpoint_id=checkpoint_id, n_pairs=len(fresh), accuracy=before,
                         n_eval_pairs=len(fresh), n_eval_by_node=_per_node(fresh),
                         n_eval_examples_by_node=_examples_per_node(fresh),
                         train_accuracy=report.train_accuracy)
        self.store.add_event(self.job_id, event.kind, event.to_json(), iteration=iteration)
        return event

    def load(self, path: str, replay_pairs: Sequence[PreferencePair]) -> None:
        """Load a saved version (after a resume) and refill the trainer's replay buffer."""
        if self.path == path and self.model is not None:
            return
        self.model = checkpoint.load(Path(path), expected_nodes=set(self.nodes))
        self.trainer = LRFTrainer(self.model)
        if replay_pairs:
            self.trainer.replay.add(list(replay_pairs))
        self.path = path

    def scorer(self, node: str, reads: Sequence[str]) -> ScoreFn:
        """The node's LRF as ``[(state, output), ...] -> [score, ...]``, seeing only the
        state keys the node reads. With no model trained (no pair had a winner) every output
        ties: an unmeasured LRF is never trusted, so the global check decides."""

        def score(items: list[tuple[dict, dict]]) -> list[float]:
            if self.model is None:
                return tied_scores(items)
            requests = [ScoreRequest(str(i), node, read_values(st, reads), out) for i, (st, out) in enumerate(items)]
            return self.model.score_many(requests)

        return score

    def _save(self, stage: str, metrics: dict) -> int:
        model, _ = self._require()
        path = subdir("lrf") / self.store.identity / f"job{self.job_id}-{stage}"
        checkpoint.save(model, path)
        self.path = str(path)
        return self.store.add_lrf_checkpoint(self.path, model.config.resolved_backbone(), sorted(model.nodes),
                                             metrics, job_id=self.job_id)

    def _require(self) -> tuple[LocalRewardModel, LRFTrainer]:
        if self.model is None or self.trainer is None:
            raise LRFError(f"job {self.job_id} has no local reward model yet: train one before using it")
        return self.model, self.trainer


def _per_node(pairs: Sequence[PreferencePair]) -> dict[str, int]:
    """How many of ``pairs`` each node has (the ``n`` behind its accuracy)."""
    return dict(Counter(p.node for p in pairs))


def _examples_per_node(pairs: Sequence[PreferencePair]) -> dict[str, int]:
    """From how many distinct examples ``pairs`` come, per node (the ``n`` of its trust)."""
    return dict(Counter(node for node, _ in {(p.node, p.example_key) for p in pairs}))
