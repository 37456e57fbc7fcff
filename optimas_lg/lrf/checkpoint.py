"""Saving and loading an LRF: ``weights.safetensors`` plus ``meta.json``.

Only parameters that training could change are written: with a frozen backbone that is the
heads (plus the LoRA matrices when LoRA is on), a few KB instead of the whole backbone,
which is reloaded from its path. The node set is part of the checkpoint because a head
trained for one graph says nothing about a node that was added since.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_file, save_file

from optimas_lg.errors import LRFError
from optimas_lg.lrf.model import LocalRewardModel, LRFConfig

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"


def node_set_hash(nodes: set[str] | list[str]) -> str:
    """A short fingerprint of a set of node names."""
    return hashlib.sha256("\n".join(sorted(nodes)).encode()).hexdigest()[:16]


def save(model: LocalRewardModel, directory: str | Path) -> dict:
    """Write the model under ``directory`` (created if needed) and return its metadata."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    meta = {
        "format": FORMAT_VERSION,
        "backbone": model.config.backbone,
        "nodes": model.nodes,
        "node_hash": node_set_hash(list(model.nodes)),
        "pooling": model.pooling,
        "saved": "full" if len(tensors) == len(list(model.parameters())) else "trainable",
        "tensors": sorted(tensors),
        "config": asdict(model.config),
    }
    # Write both files beside their final names, then swap them in: a crash mid-save
    # leaves the previous checkpoint whole rather than weights and meta that disagree.
    tmp_weights, tmp_meta = directory / f".{WEIGHTS_FILE}.tmp", directory / f".{META_FILE}.tmp"
    save_file(tensors, str(tmp_weights), metadata={"format": "pt"})
    tmp_meta.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp_weights, directory / WEIGHTS_FILE)
    os.replace(tmp_meta, directory / META_FILE)
    return meta


def read_meta(directory: str | Path) -> dict:
    """The metadata of the checkpoint in ``directory``."""
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise LRFError(f"no LRF checkpoint at {directory} ({META_FILE} is missing)") from exc
    except json.JSONDecodeError as exc:
        raise LRFError(f"LRF checkpoint metadata {path} is not valid JSON: {exc}") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise LRFError(f"LRF checkpoint {directory} has format {meta.get('format')}, "
                       f"this version reads {FORMAT_VERSION}")
    return meta


def load(directory: str | Path, expected_nodes: set[str] | None = None) -> LocalRewardModel:
    """The model saved in ``directory``; fails if ``expected_nodes`` differs from its nodes."""
    meta = read_meta(directory)
    saved_nodes = set(meta["nodes"])
    if expected_nodes is not None and set(expected_nodes) != saved_nodes:
        added = sorted(set(expected_nodes) - saved_nodes)
        missing = sorted(saved_nodes - set(expected_nodes))
        raise LRFError(
            f"the LRF checkpoint at {directory} was trained for nodes {sorted(saved_nodes)}, "
            f"but the graph now has added nodes {added} and is missing nodes {missing}: retrain the LRF"
        )
    try:
        config = LRFConfig(**meta["config"])
    except TypeError as exc:
        raise LRFError(f"LRF checkpoint {directory} has an unknown config: {exc}") from exc
    model = LocalRewardModel(meta["nodes"], config)
    tensors = load_file(str(Path(directory) / WEIGHTS_FILE))
    try:
        missing_keys, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:
        raise LRFError(f"LRF checkpoint {directory} does not fit backbone {config.resolved_backbone()!r}: "
                       f"{exc}") from exc
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing_keys):
        raise LRFError(
            f"LRF checkpoint {directory} does not match its model: unexpected {sorted(unexpected)}, "
            f"missing {sorted(trainable & set(missing_keys))}"
        )
    model.eval()
    return model
