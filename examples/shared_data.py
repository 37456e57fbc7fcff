"""Where the paper-style examples find the shared benchmark data, and how they split it.

The files live outside the project (``<repo>/../shared/data``) and are read in place,
never copied. ``OPTIMAS_LG_DATA`` names another folder holding the same file names.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path

from optimas_lg.data import Example
from optimas_lg.errors import DataError

DATA_ENV = "OPTIMAS_LG_DATA"
REPO_ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")


def data_dir() -> Path:
    """The folder of the shared data: ``$OPTIMAS_LG_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"


def data_file(name: str, path: str | Path | None = None) -> Path:
    """The path of data file ``name`` (or the explicit ``path``); ``DataError`` if it is missing."""
    resolved = Path(path).expanduser() if path is not None else data_dir() / name
    if not resolved.is_file():
        source = "the given path" if path is not None else (
            f"${DATA_ENV}" if os.environ.get(DATA_ENV) else f"the default (set ${DATA_ENV} to change it)")
        raise DataError(f"data file {name!r} not found: looked at {resolved.resolve()} ({source})")
    return resolved


def seeded_split(examples: Sequence[Example], name: str, sizes: tuple[int, int], seed: int = 0,
                 limit: int | None = None) -> list[Example]:
    """One of three disjoint parts of a seeded shuffle: ``train`` and ``val`` take ``sizes``
    examples each, ``test`` the rest. ``limit`` keeps the first ``limit`` of the part."""
    if name not in SPLITS:
        raise DataError(f"unknown split {name!r}; use one of {list(SPLITS)}")
    if sum(sizes) >= len(examples):
        raise DataError(f"split sizes {sizes} leave no test examples out of {len(examples)}")
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    train_end, val_end = sizes[0], sizes[0] + sizes[1]
    part = {"train": shuffled[:train_end], "val": shuffled[train_end:val_end], "test": shuffled[val_end:]}[name]
    return part if limit is None else part[:limit]
