"""Which proposer optimizes which knob kind; replace an entry to plug in your own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimas_lg.graph.knobs import KnobSpec
from optimas_lg.proposers.base import Proposer
from optimas_lg.proposers.choice import ChoiceConfig, ChoiceProposer
from optimas_lg.proposers.context import ProposalError
from optimas_lg.proposers.lora import LoRAConfig, LoRAProposer
from optimas_lg.proposers.numeric import NumericConfig, NumericProposer
from optimas_lg.proposers.prompt import PromptConfig, PromptProposer

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


_CLASSES: dict[str, tuple[type[Proposer], type]] = {
    "prompt": (PromptProposer, PromptConfig),
    "choice": (ChoiceProposer, ChoiceConfig),
    "int": (NumericProposer, NumericConfig),
    "float": (NumericProposer, NumericConfig),
    "lora": (LoRAProposer, LoRAConfig),
}


def build_proposers(settings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Proposer]:
    """The default proposers, each kind's config fields overridden by ``settings[kind]``
    (e.g. ``{"prompt": {"rounds": 1}, "lora": {"max_steps": 20}}``); JSON-friendly, so a
    job's settings can carry them."""
    settings = settings or {}
    unknown = set(settings) - set(_CLASSES)
    if unknown:
        raise ProposalError(f"no proposer kind {sorted(unknown)}; known: {sorted(_CLASSES)}")
    return {kind: cls(config_cls(**settings.get(kind, {}))) for kind, (cls, config_cls) in _CLASSES.items()}
