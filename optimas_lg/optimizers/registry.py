"""Which proposer optimizes which knob kind; replace an entry to plug in your own."""

from __future__ import annotations

from collections.abc import Mapping

from optimas_lg.knobs import KnobSpec
from optimas_lg.optimizers.choice import ChoiceProposer
from optimas_lg.optimizers.context import ProposalError
from optimas_lg.optimizers.lora import LoRAProposer
from optimas_lg.optimizers.numeric import NumericProposer
from optimas_lg.optimizers.prompt import PromptProposer
from optimas_lg.optimizers.proposer import Proposer

_numeric = NumericProposer()
PROPOSERS: dict[str, Proposer] = {
    "prompt": PromptProposer(),
    "choice": ChoiceProposer(),
    "int": _numeric,
    "float": _numeric,
    "lora": LoRAProposer(),
}


def proposer_for(knob: KnobSpec, proposers: Mapping[str, Proposer] | None = None) -> Proposer:
    """The proposer for ``knob``'s kind, from ``proposers`` (default: ``PROPOSERS``)."""
    table = PROPOSERS if proposers is None else proposers
    if knob.kind not in table:
        raise ProposalError(f"no proposer for knob {knob.name!r} of kind {knob.kind!r}; known: {sorted(table)}")
    return table[knob.kind]
