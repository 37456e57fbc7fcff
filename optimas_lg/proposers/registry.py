"""Which proposer optimizes which knob kind: the one registry, extended by argument.

``build_proposers`` starts from ``DEFAULT_PROPOSERS``, configures each kind from JSON
settings (``{"prompt": {"rounds": 1}}``; ``"use": "file.py:Class"`` swaps in another
proposer class) and then applies ``overrides`` (instances or classes), as
``optimas_lg.optimize(..., proposers={"prompt": MyProposer()})`` passes them.

Kinds whose proposer has the same class and the same settings share one instance, and
the loop hands a proposer all the knobs of a node it serves at once: by default
``JointProposer`` searches a node's choice, int and float knobs together. Configure one
of those kinds differently (or override it) and its knobs are searched on their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, get_args

from optimas_lg.errors import SettingsError
from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.graph.target import load_target
from optimas_lg.proposers.base import Proposer
from optimas_lg.proposers.context import ProposalError
from optimas_lg.proposers.demos import DemosProposer
from optimas_lg.proposers.joint import JointProposer
from optimas_lg.proposers.lora import LoRAProposer
from optimas_lg.proposers.prompt import PromptProposer
from optimas_lg.settings import from_settings

ProposerArg = Proposer | type[Proposer]
"""A proposer for ``optimize(proposers=...)``: an instance, or a class built with its default config."""

DEFAULT_PROPOSERS: dict[str, type[Proposer]] = {
    "prompt": PromptProposer,
    "choice": JointProposer,
    "int": JointProposer,
    "float": JointProposer,
    "lora": LoRAProposer,
    "demos": DemosProposer,
}
KINDS: tuple[str, ...] = get_args(KnobKind)


def _check_kind(kind: str, where: str) -> None:
    if kind not in KINDS:
        raise SettingsError(f"{where}: no knob kind {kind!r}; knob kinds: {list(KINDS)}")


def _from_settings(kind: str, settings: Mapping[str, Any], built: dict[tuple[type, str], Proposer]) -> Proposer:
    """The proposer ``settings`` describe, shared with an earlier kind described alike."""
    settings = dict(settings)
    use = settings.pop("use", None)
    cls = DEFAULT_PROPOSERS[kind] if use is None else load_target(use)
    if not (isinstance(cls, type) and issubclass(cls, Proposer)):
        raise SettingsError(f"proposers.{kind}.use: {use!r} is not a Proposer subclass")
    config = from_settings(cls.config_class, settings, f"proposers.{kind}")
    key = (cls, json.dumps(asdict(config), sort_keys=True, default=str))
    if key not in built:
        built[key] = cls(config)
    return built[key]


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
    built: dict[tuple[type, str], Proposer] = {}
    table = {kind: _from_settings(kind, settings.get(kind, {}), built) for kind in DEFAULT_PROPOSERS}
    table.update({kind: _instance(kind, proposer) for kind, proposer in overrides.items()})
    return table


def proposer_groups(knobs: list[KnobSpec], proposers: Mapping[str, Proposer]) -> list[tuple[Proposer, list[KnobSpec]]]:
    """``knobs`` grouped by the proposer instance that serves them, in order of first appearance:
    each group goes to its proposer's ``propose_all`` in one call."""
    groups: list[tuple[Proposer, list[KnobSpec]]] = []
    for knob in knobs:
        proposer = proposer_for(knob, proposers)
        group = next((g for p, g in groups if p is proposer), None)
        if group is None:
            groups.append((proposer, [knob]))
        else:
            group.append(knob)
    return groups


def proposer_for(knob: KnobSpec, proposers: Mapping[str, Proposer]) -> Proposer:
    """The proposer for ``knob``'s kind in ``proposers``."""
    if knob.kind not in proposers:
        raise ProposalError(f"no proposer for knob {knob.name!r} of kind {knob.kind!r}; known: {sorted(proposers)}")
    return proposers[knob.kind]
