"""Training the LRF on preference pairs (offline) and keeping it in step (online).

The loss is the pairwise ranking loss -log sigmoid(r(x, y+) - r(x, y-)), whose minimizer
ranks outputs the way the global reward does (Theorem 4.1 of the paper), optionally plus
``regression_weight`` times the squared error of each reward against its output's score. ``adapt`` is the
light calibration after an accepted change elsewhere in the graph: a few steps on fresh
pairs mixed with a replay of older ones.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from optimas_lg.errors import LRFError
from optimas_lg.lrf.buffer import ReplayBuffer
from optimas_lg.lrf.evaluate import accuracy_by_node, ranking_accuracy
from optimas_lg.lrf.model import LocalRewardModel, LRFConfig
from optimas_lg.lrf.pairs import PreferencePair


def pairwise_loss(chosen: torch.Tensor, rejected: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of -log sigmoid(chosen - rejected), weighted by ``weights`` when given."""
    losses = -F.logsigmoid(chosen - rejected)
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum()


@dataclass
class TrainReport:
    """What one ``train`` or ``adapt`` call did. ``train_accuracy`` is the running ranking
    accuracy over the batches of the last epoch (``adapt``: of the whole call)."""

    steps: int
    seconds: float
    pairs_per_node: dict[str, int]
    loss_history: list[float] = field(default_factory=list)
    train_accuracy: dict[str, float] = field(default_factory=dict)
    eval_accuracy: dict[str, float] | None = None
    eval_history: list[dict[str, float]] = field(default_factory=list)


class LRFTrainer:
    """Trains a ``LocalRewardModel``; holds the replay buffer that ``adapt`` draws from.
    ``config`` (default: the model's) sets the training knobs; the text budget and backbone
    are the model's own."""

    def __init__(self, model: LocalRewardModel, config: LRFConfig | None = None) -> None:
        self.model = model
        self.config = config or model.config
        self.replay = ReplayBuffer(self.config.replay_size, self.config.replay_policy, self.config.seed)
        self._rng = random.Random(self.config.seed)

    def _optimizer(self) -> torch.optim.Optimizer:
        head_params = list(self.model.heads.parameters())
        backbone_params = [p for p in self.model.backbone.parameters() if p.requires_grad]
        groups = [{"params": head_params, "lr": self.config.head_lr}]
        if backbone_params:
            groups.append({"params": backbone_params, "lr": self.config.lr})
        return torch.optim.AdamW(groups, weight_decay=self.config.weight_decay)

    def _validate(self, pairs: list[PreferencePair], what: str) -> None:
        if not pairs:
            raise LRFError(f"no {what} pairs to train the LRF on")
        for pair in pairs:
            self.model.check_node(pair.node)
            if self.config.margin_weighting and not (math.isfinite(pair.weight) and pair.weight > 0):
                raise LRFError(f"pair for node {pair.node!r}, example {pair.example_key!r} has weight {pair.weight}")

    def _step(self, optimizer: torch.optim.Optimizer, batch: list[PreferencePair]) -> tuple[float, list[bool]]:
        """One optimizer step on ``batch``, its gradient accumulated over passes of
        ``config.micro_batch_size`` pairs (each pass's loss scaled by its share of the batch)."""
        optimizer.zero_grad()
        size = self.config.micro_batch_size or len(batch)
        weights = [p.weight for p in batch] if self.config.margin_weighting else [1.0] * len(batch)
        total, wins = 0.0, []
        for start in range(0, len(batch), size):
            part = slice(start, start + size)
            loss, part_wins = self._loss(batch[part], weights[part], sum(weights[part]) / sum(weights),
                                         len(batch[part]) / len(batch))
            loss.backward()
            total += loss.item()
            wins += part_wins
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        optimizer.step()
        return total, wins

    def _loss(self, pairs: list[PreferencePair], weights: list[float], weight_share: float,
              pair_share: float) -> tuple[torch.Tensor, list[bool]]:
        """The batch loss's part for ``pairs``: ranking loss times their share of the batch's
        weight, regression loss times their share of its pairs."""
        nodes = [p.node for p in pairs]
        texts = [self.model.text(p.node, p.inputs, p.chosen) for p in pairs]
        texts += [self.model.text(p.node, p.inputs, p.rejected) for p in pairs]
        rewards = self.model(nodes + nodes, texts)
        chosen, rejected = rewards[: len(pairs)], rewards[len(pairs) :]
        loss = pairwise_loss(chosen, rejected, torch.tensor(weights) if self.config.margin_weighting else None)
        loss = loss * weight_share
        if self.config.regression_weight:
            scores = torch.tensor([p.chosen_score for p in pairs] + [p.rejected_score for p in pairs])
            loss = loss + self.config.regression_weight * F.mse_loss(rewards, scores) * pair_share
        return loss, (chosen > rejected).tolist()

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Dropout draws from torch's global generator, whose state depends on whatever ran
        before in the process (a model server sampling, say): training under a fork of it
        seeded from the trainer's own RNG makes the same pairs train the same model."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._rng.randrange(2**31))
            yield

    def train(self, pairs: list[PreferencePair], eval_pairs: list[PreferencePair] | None = None) -> TrainReport:
        """Offline training for ``config.epochs`` epochs (more when that makes fewer than
        ``config.min_steps`` steps); the pairs then join the replay buffer."""
        with self._own_rng():
            return self._train(pairs, eval_pairs)

    def adapt(self, fresh_pairs: list[PreferencePair], steps: int | None = None) -> TrainReport:
        """A few steps on fresh pairs, each batch half fresh and half replayed older pairs
        (all fresh while the buffer is empty); the fresh pairs then join the buffer."""
        with self._own_rng():
            return self._adapt(fresh_pairs, steps)

    def _train(self, pairs: list[PreferencePair], eval_pairs: list[PreferencePair] | None = None) -> TrainReport:
        self._validate(pairs, "training")
        size = self.config.batch_size
        steps_per_epoch = math.ceil(len(pairs) / size)
        epochs = max(self.config.epochs, math.ceil(self.config.min_steps / steps_per_epoch))
        total = steps_per_epoch * epochs
        optimizer = self._optimizer()
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total)
        report = TrainReport(steps=total, seconds=0.0, pairs_per_node=_count(pairs))
        start = time.perf_counter()
        self.model.train()
        with tqdm(total=total, desc="LRF train", disable=not self.config.progress) as bar:
            for _ in range(epochs):
                order = self._rng.sample(pairs, len(pairs))
                nodes: list[str] = []
                correct: list[bool] = []
                for begin in range(0, len(order), size):
                    batch = order[begin : begin + size]
                    loss, ok = self._step(optimizer, batch)
                    schedule.step()
                    report.loss_history.append(loss)
                    nodes += [p.node for p in batch]
                    correct += ok
                    bar.update()
                    bar.set_postfix(loss=f"{loss:.3f}")
                report.train_accuracy = accuracy_by_node(nodes, correct)
                if eval_pairs:  # scoring switches to eval mode and back
                    report.eval_history.append(ranking_accuracy(self.model, eval_pairs))
        self.model.eval()
        report.eval_accuracy = report.eval_history[-1] if eval_pairs else None
        report.seconds = time.perf_counter() - start
        self.replay.add(pairs)
        return report

    def _adapt(self, fresh_pairs: list[PreferencePair], steps: int | None = None) -> TrainReport:
        self._validate(fresh_pairs, "fresh")
        steps = self.config.adapt_steps if steps is None else steps
        size = self.config.batch_size
        n_fresh = min(len(fresh_pairs), math.ceil(size / 2) if len(self.replay) else size)
        optimizer = self._optimizer()
        report = TrainReport(steps=steps, seconds=0.0, pairs_per_node=_count(fresh_pairs))
        start = time.perf_counter()
        queue: list[PreferencePair] = []
        nodes: list[str] = []
        correct: list[bool] = []
        self.model.train()
        for _ in tqdm(range(steps), desc="LRF adapt", disable=not self.config.progress):
            if len(queue) < n_fresh:
                queue += self._rng.sample(fresh_pairs, len(fresh_pairs))
            batch, queue = queue[:n_fresh], queue[n_fresh:]
            batch += self.replay.sample(size - n_fresh)
            loss, ok = self._step(optimizer, batch)
            report.loss_history.append(loss)
            nodes += [p.node for p in batch]
            correct += ok
        self.model.eval()
        report.train_accuracy = accuracy_by_node(nodes, correct)
        report.seconds = time.perf_counter() - start
        self.replay.add(fresh_pairs)
        return report


def _count(pairs: list[PreferencePair]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.node] = counts.get(pair.node, 0) + 1
    return counts
