"""Writing a generated example dataset: one JSON Lines file per split, byte-stable for a seed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_splits(splits: Mapping[str, Sequence[Mapping[str, Any]]], directory: Path) -> None:
    """Write ``<directory>/<split>.jsonl`` for each split (one JSON object per line)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (directory / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
