"""HotpotQA distractor rows as seeded splits; each example carries its 10 paragraphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examples.shared_data import data_file, seeded_split
from optimas_lg.data import Example, make_examples, read_rows

DATA_FILE = "hotpotqa_distractor_dev.jsonl"
SPLIT_SIZES = (20, 20)  # train, val; the remaining 20 of the 60 rows are the test split


def paragraphs(context: dict[str, Any]) -> list[str]:
    """``"Title: sentence sentence ..."`` for each of a row's paragraphs."""
    pairs = zip(context["title"], context["sentences"])
    return [f"{title}: {''.join(sentences).strip()}" for title, sentences in pairs]


def load_split(name: str, limit: int | None = None, path: str | Path | None = None, seed: int = 0) -> list[Example]:
    """Examples of split ``name`` (train/val/test): inputs ``question`` and ``paragraphs``, label ``answer``."""
    source = data_file(DATA_FILE, path)
    rows = [{"id": r["id"], "question": r["question"], "paragraphs": paragraphs(r["context"]), "answer": r["answer"]}
            for r in read_rows(source)]
    examples = make_examples(rows, ["question", "paragraphs"], ["answer"], key="id", source=str(source))
    return seeded_split(examples, name, SPLIT_SIZES, seed, limit)
