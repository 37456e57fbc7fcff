"""Training the LRF: the loss, a real MiniLM run on a learnable task, and adapt() after a shift.

The task: the node must answer with the secret word in its context. A good LRF learns to
prefer the output that copies it; after the "shift" (a mode flag telling downstream to
avoid the word) the preference flips for those inputs and adapt() must catch up.
"""

import math
import random

import pytest
import torch

from optimas_lg.lrf import (
    OVERALL,
    LocalRewardModel,
    LRFConfig,
    LRFTrainer,
    PreferencePair,
    pairwise_loss,
    ranking_accuracy,
)
from optimas_lg.lrf.buffer import ReplayBuffer

WORDS = ("apple river tiger violin copper garden rocket silver pepper castle ocean candle marble forest piano "
         "lemon").split()


def secret_word_pairs(n: int, seed: int, mode: str | None = None) -> list[PreferencePair]:
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        word, other = rng.sample(WORDS, 2)
        inputs = {"question": "What is the secret word?", "context": f"Note {i}: the secret word is {word}."}
        good, bad = {"answer": word}, {"answer": other}
        if mode == "avoid":
            inputs["mode"] = "avoid"
            good, bad = bad, good
        pairs.append(PreferencePair("answer", f"{seed}-{i}", inputs, good, bad, 1.0, 0.0, 1.0))
    return pairs


def test_loss_known_values():
    zero = torch.zeros(1)
    assert pairwise_loss(zero, zero).item() == pytest.approx(math.log(2))
    chosen, rejected = torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0])
    expected = (1 * math.log(2) + 3 * math.log(1 + math.exp(-2))) / 4
    assert pairwise_loss(chosen, rejected, torch.tensor([1.0, 3.0])).item() == pytest.approx(expected)
    assert pairwise_loss(torch.tensor([-5.0]), torch.tensor([5.0])).item() == pytest.approx(10, abs=1e-4)


@pytest.mark.parametrize("policy", ["reservoir", "fifo"])
def test_replay_buffer_is_bounded_per_node(policy):
    buffer = ReplayBuffer(capacity=5, policy=policy, seed=0)
    pairs = secret_word_pairs(40, 0)
    buffer.add(pairs)
    buffer.add([PreferencePair("other", "x", {}, {"a": 1}, {"a": 0}, 1.0, 0.0)])
    assert buffer.counts() == {"answer": 5, "other": 1}
    if policy == "fifo":
        assert {p.example_key for p in buffer.sample(10) if p.node == "answer"} == {p.example_key for p in pairs[-5:]}
    assert len(buffer.sample(3)) == 3 and len(buffer.sample(100)) == 6


@pytest.fixture(scope="module")
def trained():
    config = LRFConfig(max_tokens=64, batch_size=16, epochs=2, progress=False)
    model = LocalRewardModel({"answer": "Answer the question from the context."}, config)
    trainer = LRFTrainer(model)
    eval_pairs = secret_word_pairs(40, seed=2)
    before = ranking_accuracy(model, eval_pairs)
    report = trainer.train(secret_word_pairs(64, seed=1), eval_pairs)
    return model, trainer, report, before, eval_pairs


@pytest.mark.slow
def test_training_learns_a_learnable_preference(trained):
    model, trainer, report, before, _ = trained
    print(f"eval accuracy before {before[OVERALL]:.3f}, after {report.eval_accuracy[OVERALL]:.3f}, "
          f"{report.seconds:.1f}s")
    assert report.eval_accuracy["answer"] >= 0.85
    assert report.eval_accuracy[OVERALL] > before[OVERALL] + 0.2
    assert report.steps == len(report.loss_history) == 8
    assert sum(report.loss_history[-2:]) < sum(report.loss_history[:2])
    assert len(report.eval_history) == 2 and set(report.train_accuracy) == {"answer", OVERALL}
    assert trainer.replay.counts() == {"answer": 64}


@pytest.mark.slow
def test_adapt_recovers_after_a_shift_without_forgetting(trained):
    model, trainer, _, _, old_eval = trained
    fresh, fresh_eval = secret_word_pairs(48, seed=3, mode="avoid"), secret_word_pairs(40, seed=4, mode="avoid")
    shifted = ranking_accuracy(model, fresh_eval)[OVERALL]
    report = trainer.adapt(fresh, steps=30)  # 8 fresh + 8 replayed pairs a step
    recovered = ranking_accuracy(model, fresh_eval)[OVERALL]
    kept = ranking_accuracy(model, old_eval)[OVERALL]
    print(f"after the shift {shifted:.3f}, after adapt {recovered:.3f}, old task {kept:.3f}, {report.seconds:.1f}s")
    assert shifted <= 0.3
    assert recovered >= 0.8
    assert kept >= 0.8  # the replayed older pairs kept the old preference
    assert trainer.replay.counts() == {"answer": 64 + 48}


def test_regression_weight_adds_the_squared_error_of_rewards_against_scores():
    pairs = secret_word_pairs(4, seed=5)
    pairs[1].chosen_score, pairs[1].rejected_score = 0.75, 0.25
    losses, rewards = [], []
    for weight in (0.0, 2.0):
        config = LRFConfig(max_tokens=32, progress=False, regression_weight=weight)
        model = LocalRewardModel({"answer": "Answer."}, config)  # same seed: the same heads
        model.eval()  # no dropout: both runs see the same rewards
        texts = [model.text(p.node, p.inputs, p.chosen) for p in pairs]
        texts += [model.text(p.node, p.inputs, p.rejected) for p in pairs]
        with torch.no_grad():
            rewards.append(model(["answer"] * 8, texts))
        trainer = LRFTrainer(model)
        losses.append(trainer._step(trainer._optimizer(), pairs)[0])
    scores = torch.tensor([p.chosen_score for p in pairs] + [p.rejected_score for p in pairs])
    assert torch.equal(rewards[0], rewards[1])
    assert losses[1] - losses[0] == pytest.approx(2.0 * torch.mean((rewards[0] - scores) ** 2).item(), rel=1e-4)


def test_a_step_in_micro_batches_is_the_step_of_the_whole_batch():
    pairs = secret_word_pairs(5, seed=7)
    pairs[0].chosen_score, pairs[0].rejected_score = 0.9, 0.2  # a weight and scores of their own (both losses)
    results = []
    for micro in (None, 2):
        config = LRFConfig(max_tokens=32, progress=False, micro_batch_size=micro, regression_weight=1.0)
        model = LocalRewardModel({"answer": "Answer."}, config)
        model.eval()  # no dropout: both see the same rewards
        trainer = LRFTrainer(model)
        loss, wins = trainer._step(trainer._optimizer(), pairs)
        results.append((loss, wins, model.heads["answer"].weight.detach().clone()))
    (loss, wins, head), (micro_loss, micro_wins, micro_head) = results
    assert micro_loss == pytest.approx(loss, rel=1e-5) and micro_wins == wins and len(wins) == 5
    assert torch.allclose(micro_head, head, atol=1e-6)
    assert not torch.allclose(head, LocalRewardModel({"answer": "Answer."}, config).heads["answer"].weight)


@pytest.mark.parametrize(("min_steps", "steps"), [(0, 2), (5, 6)])
def test_min_steps_adds_whole_epochs_when_the_pairs_are_few(min_steps, steps):
    config = LRFConfig(max_tokens=32, batch_size=2, epochs=1, min_steps=min_steps, progress=False)
    report = LRFTrainer(LocalRewardModel({"answer": "Answer."}, config)).train(secret_word_pairs(4, seed=6))
    assert report.steps == len(report.loss_history) == steps


def test_the_same_pairs_train_the_same_model_whatever_ran_before():
    """Dropout must not draw from torch's global generator (a model server in the same
    process moves it), or two runs of one job train different LRFs."""
    pairs = secret_word_pairs(8, seed=7)
    rewards = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model = LocalRewardModel({"answer": "Answer."}, LRFConfig(max_tokens=32, batch_size=4, epochs=1,
                                                                  progress=False))
        LRFTrainer(model).train(pairs)
        texts = [model.text(p.node, p.inputs, p.chosen) for p in pairs]
        with torch.no_grad():
            rewards.append(model(["answer"] * len(texts), texts).tolist())
    assert rewards[0] == rewards[1]
