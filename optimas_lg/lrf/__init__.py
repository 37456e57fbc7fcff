"""Local reward functions (LRFs): one learned scorer per graph node, r_k(x, y), trained so
that a higher score means a higher global reward when the rest of the graph runs on."""

from optimas_lg.lrf.buffer import ReplayBuffer
from optimas_lg.lrf.checkpoint import load, save
from optimas_lg.lrf.evaluate import (
    OVERALL,
    JudgeResult,
    evaluate_checkpoint,
    format_table,
    judge_accuracy,
    ranking_accuracy,
    split_by_example,
)
from optimas_lg.lrf.model import LocalRewardModel, LRFConfig, ScoreRequest
from optimas_lg.lrf.pairs import Candidate, PreferencePair, build_pairs
from optimas_lg.lrf.train import LRFTrainer, TrainReport, pairwise_loss
from optimas_lg.lrf.trust import LRFTrust, wilson_interval

__all__ = [
    "OVERALL",
    "Candidate",
    "JudgeResult",
    "LRFConfig",
    "LRFTrainer",
    "LRFTrust",
    "LocalRewardModel",
    "PreferencePair",
    "ReplayBuffer",
    "ScoreRequest",
    "TrainReport",
    "build_pairs",
    "evaluate_checkpoint",
    "format_table",
    "judge_accuracy",
    "load",
    "pairwise_loss",
    "ranking_accuracy",
    "save",
    "split_by_example",
    "wilson_interval",
]
