"""The system round: the loop's first round searches the choice and numeric knobs of every
reached node together on the global metric, before any node has a round of its own.

Why: per-node rounds are coordinate descent with one validation per round. A node's knobs
often pay off only with another node's (a retriever's ``top_k`` and the answer step that
reads what it finds), and at a small budget the rounds run out before the last nodes' cheap
knobs are searched: on offline_qa at 200 system runs, the prompt search of ``rewrite`` spent
the runs that ``answer_format`` (worth +0.18 on validation) then lacked, and on STaRK two
per-node rounds gained +0.027 where plain Optuna over every knob at once gained +0.095. The
system round is that joint search, once, behind the same gate; the per-node rounds (prompts,
demos, LoRA, and each node's knobs again) go on from its result.

It searches the knobs whose kind is served by a ``JointProposer`` not set to the ``lrf``
objective (setting it so asks for per-node ranking by the LRF), with the settings of the
first such proposer and the objective ``global``, when the round's share of the budget
affords at least two trials. It is recorded under the node name ``*``
(``proposers.ALL_NODES``). ``OptimizeConfig.system_round`` turns it off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from optimas_lg.graph.knobs import KnobSpec
from optimas_lg.proposers.base import Proposer
from optimas_lg.proposers.joint import JointProposer
from optimas_lg.proposers.registry import proposer_groups
from optimas_lg.proposers.trusted import MIN_CHECKS, checks_affordable

SYSTEM_ROUND_REASON = "first round: the choice and numeric knobs of every node searched together on the global metric"


def system_search(knobs: list[KnobSpec], proposers: Mapping[str, Proposer]) -> tuple[JointProposer,
                                                                                    list[KnobSpec]] | None:
    """The proposer of the system round and the knobs it searches among ``knobs`` (those of
    the reached nodes), or ``None`` when no knob qualifies."""
    groups = [(p, group) for p, group in proposer_groups(knobs, proposers)
              if isinstance(p, JointProposer) and p.config.objective != "lrf"]
    if not groups:
        return None
    first = groups[0][0]
    proposer = JointProposer(dataclasses.replace(first.config, objective="global"), sampler=first.sampler)
    return proposer, [k for _, group in groups for k in group]


def affords_system_round(runs_left: int | None, runs_per_trial: int) -> bool:
    """Whether a round that may spend ``runs_left`` system runs (``None``: no limit) pays for
    the least a global search is worth (``proposers.trusted.MIN_CHECKS`` trials of
    ``runs_per_trial`` runs: the current values and one other assignment)."""
    n = checks_affordable(runs_left, runs_per_trial)
    return n is None or n >= MIN_CHECKS
