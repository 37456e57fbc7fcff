"""PubMedQA rows (question, abstract sections, yes/no/maybe label) as seeded splits."""

from __future__ import annotations

from pathlib import Path

from examples.shared_data import data_file, seeded_split
from optimas_lg.data import Example, make_examples, read_rows

DATA_FILE = "pubmedqa_train.jsonl"
SPLIT_SIZES = (40, 120)  # train, val; the remaining 340 rows are the test split
"""A val of 120: configs that let a model decide differ from the default on about half the examples,
so 40 left the paired stderr at 0.08-0.14, too wide to tell a 0.05-0.10 gain from noise.
The first 40 are the val of before."""


def load_split(name: str, limit: int | None = None, path: str | Path | None = None, seed: int = 0) -> list[Example]:
    """Examples of split ``name`` (train/val/test): inputs ``question`` and ``context``, label ``answer``."""
    source = data_file(DATA_FILE, path)
    rows = [{"index": r["index"], "question": r["question"], "context": r["context"], "answer": r["groundtruth"]}
            for r in read_rows(source)]
    examples = make_examples(rows, ["question", "context"], ["answer"], key="index", source=str(source))
    return seeded_split(examples, name, SPLIT_SIZES, seed, limit)
