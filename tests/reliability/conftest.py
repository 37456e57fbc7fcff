"""Shared pieces of the fault-injection suite: the lookup graph's data files and settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from optimas_lg.data import Example
from tests.graphs import lookup
from tests.loop.test_loop import SETTINGS

# test_loop's settings, with a frozen LRF backbone so that adapting it takes seconds
FAST = {**SETTINGS, "lrf": {**SETTINGS["lrf"], "freeze_backbone": True, "head_lr": 0.01, "adapt_steps": 3}}
TARGET = "tests/graphs/lookup.py:builder"
METRIC = "tests/graphs/lookup.py:metric"


def write_jsonl(path: Path, examples: list[Example]) -> Path:
    path.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in examples))
    return path


@pytest.fixture(scope="session")
def lookup_files(tmp_path_factory) -> dict[str, Path]:
    """train (12), val (8) and test (the val questions under other ids) as JSONL, and the settings."""
    folder = tmp_path_factory.mktemp("lookup")
    examples = lookup.examples()
    test = [Example(f"t-{e.key}", e.inputs, e.labels) for e in examples[12:]]
    settings = folder / "settings.json"
    settings.write_text(json.dumps(FAST))
    return {"train": write_jsonl(folder / "train.jsonl", examples[:12]),
            "val": write_jsonl(folder / "val.jsonl", examples[12:]),
            "test": write_jsonl(folder / "test.jsonl", test), "settings": settings}


def optimize_args(files: dict[str, Path], *extra: str) -> list[str]:
    """``optimize`` on the lookup graph with the suite's settings, printing JSON."""
    return ["optimize", TARGET, "--data", str(files["train"]), "--val", str(files["val"]), "--test", str(files["test"]),
            "--metric", METRIC, "--labels", "answer", "--max-iterations", "3", "--settings", str(files["settings"]),
            "--json", *extra]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a command: its own storage home, the default store in it."""
    env = {k: v for k, v in os.environ.items() if k != "OPTIMAS_LG_STORE"}
    return {**env, "OPTIMAS_LG_HOME": str(home), **extra}
