"""Node optimizers: one proposer per knob kind, each guided by its node's local reward.

A proposer takes a ``ProposalContext`` (the node seen through ``run_node`` and its LRF
``score``) and one ``KnobSpec``, and returns a ``Proposal`` with the evidence behind it.
"""

from optimas_lg.proposers.base import Proposer, Search
from optimas_lg.proposers.candidates import CandidateEvaluator, TriedValue
from optimas_lg.proposers.choice import ChoiceConfig, ChoiceProposer
from optimas_lg.proposers.context import (
    ALL_NODES,
    Cost,
    EvalConfig,
    GlobalCheckFn,
    OutputFn,
    Proposal,
    ProposalContext,
    ProposalError,
    RecordedCall,
    RunNodeFn,
    ScoreFn,
)
from optimas_lg.proposers.cost import CheapRuns, RunCost
from optimas_lg.proposers.demos import DemosConfig, DemosProposer
from optimas_lg.proposers.joint import JointConfig, JointProposer
from optimas_lg.proposers.lora import LoRAConfig, LoRAProposer
from optimas_lg.proposers.numeric import NumericConfig, NumericProposer
from optimas_lg.proposers.prompt import PromptConfig, PromptProposer, parse_prompts
from optimas_lg.proposers.registry import (
    DEFAULT_PROPOSERS,
    ProposerArg,
    build_proposers,
    proposer_for,
    proposer_groups,
)

__all__ = [
    "ALL_NODES",
    "DEFAULT_PROPOSERS",
    "TriedValue",
    "CandidateEvaluator",
    "CheapRuns",
    "ChoiceConfig",
    "ChoiceProposer",
    "Cost",
    "DemosConfig",
    "DemosProposer",
    "EvalConfig",
    "GlobalCheckFn",
    "JointConfig",
    "JointProposer",
    "LoRAConfig",
    "LoRAProposer",
    "NumericConfig",
    "NumericProposer",
    "OutputFn",
    "PromptConfig",
    "PromptProposer",
    "Proposal",
    "ProposalContext",
    "ProposalError",
    "Proposer",
    "ProposerArg",
    "RecordedCall",
    "RunCost",
    "RunNodeFn",
    "ScoreFn",
    "Search",
    "build_proposers",
    "parse_prompts",
    "proposer_for",
    "proposer_groups",
]
