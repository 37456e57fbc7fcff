"""Which proposer optimizes which knob kind: the one registry, extended by argument.

``build_proposers`` starts from ``DEFAULT_PROPOSERS``, configures each kind from JSON
settings (``{"prompt": {"rounds": 1}}``; ``"use": "file.py:Class"`` swaps in another
proposer class) and then applies ``overrides`` (instances or classes), as
``optimas_lg.optimize(..., proposers={"prompt": MyProposer()})`` passes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from optimas_lg.errors import SettingsError
from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.graph.target import load_target
from optimas_lg.proposers.base import Proposer
from optimas_lg.proposers.choice import ChoiceProposer
from optimas_lg.proposers.context import ProposalError
from optimas_lg.proposers.demos import DemosProposer
from optimas_lg.proposers.lora import LoRAProposer
from optimas_lg.proposers.numeric import NumericProposer
from optimas_lg.proposers.prompt import PromptProposer
from optimas_lg.settings import from_settings

ProposerArg = Proposer | type[Proposer]
"""A proposer for ``optimize(proposers=...)``: an instance, or a class built with its default config."""

DEFAULT_PROPOSERS: dict[str, type[Proposer]] = {
    "prompt": PromptProposer,
    "choice": ChoiceProposer,
    "int": NumericProposer,
    "float": NumericProposer,
    "lora": LoRAProposer,
    "demos": DemosProposer,
}
KINDS: tuple[str, ...] = get_args(KnobKind)


def _check_kind(kind: str, where: str) -> None:
    if kind not in KINDS:
        raise SettingsError(f"{where}: no knob kind {kind!r}; knob kinds: {list(KINDS)}")


def _from_settings(kind: str, settings: Mapping[str, Any]) -> Proposer:
    settings = dict(settings)
    use = settings.pop("use", None)
    cls = DEFAULT_PROPOSERS[kind] if use is None else load_target(use)
    if not (isinstance(cls, type) and issubclass(cls, Proposer)):
        raise SettingsError(f"proposers.{kind}.use: {use!r} is not a Proposer subclass")
    return cls(from_settings(cls.config_class, settings, f"proposers.{kind}"))


def _instance(kind: str, proposer: ProposerArg) -> Proposer:
    if isinstance(proposer, type) and issubclass(proposer, Proposer):
        proposer = proposer()
    if not isinstance(proposer, Proposer):
        raise SettingsError(f"proposers[{kind!r}]: expected a Proposer instance or subclass, "
                            f"got {type(proposer).__name__}")
    if kind not in proposer.kinds:
        raise SettingsError(f"proposers[{kind!r}]: {type(proposer).__name__} handles {list(proposer.kinds)} knobs, "
                            f"not {kind!r}")
    return proposer


def build_proposers(settings: Mapping[str, Mapping[str, Any]] | None = None,
                    overrides: Mapping[str, ProposerArg] | None = None) -> dict[str, Proposer]:
    """One proposer per knob kind: the defaults, configured by ``settings[kind]`` (JSON, so a
    stored job carries them), replaced by ``overrides[kind]``. Invalid settings raise
    ``SettingsError`` naming the setting."""
    settings, overrides = settings or {}, overrides or {}
    for kind in [*settings, *overrides]:
        _check_kind(kind, "proposers")
    table = {kind: _from_settings(kind, settings.get(kind, {})) for kind in DEFAULT_PROPOSERS}
    table.update({kind: _instance(kind, proposer) for kind, proposer in overrides.items()})
    return table


def proposer_for(knob: KnobSpec, proposers: Mapping[str, Proposer]) -> Proposer:
    """The proposer for ``knob``'s kind in ``proposers``."""
    if knob.kind not in proposers:
        raise ProposalError(f"no proposer for knob {knob.name!r} of kind {knob.kind!r}; known: {sorted(proposers)}")
    return proposers[knob.kind]
