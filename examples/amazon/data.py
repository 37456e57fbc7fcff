"""Amazon KDD Cup 2024 next-item rows (session text, 4 candidate titles, answer 0-3) as seeded splits."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from examples.shared_data import data_file, seeded_split
from optimas_lg.data import Example, make_examples, read_rows
from optimas_lg.errors import DataError

DATA_FILE = "amazon_next_item_en.csv"
SPLIT_SIZES = (40, 40)  # train, val; the remaining 40 of the 120 rows are the test split


def _row(source: Path, line: int, row: dict[str, str]) -> dict[str, Any]:
    """One CSV row with ``choices`` parsed (a Python-literal list of 4 titles) and ``answer`` as int."""
    try:
        choices, answer = ast.literal_eval(row["choices"]), int(row["answer"])
    except (KeyError, ValueError, SyntaxError) as exc:
        raise DataError(f"{source}: row {line}: cannot read 'choices'/'answer' ({exc})") from exc
    if not (isinstance(choices, list) and len(choices) == 4 and 0 <= answer < 4):
        raise DataError(f"{source}: row {line}: expected 4 choices and an answer in 0-3")
    return {"key": f"amazon-{line}", "question": row["question"], "choices": [str(c) for c in choices],
            "answer": answer}


def load_split(name: str, limit: int | None = None, path: str | Path | None = None, seed: int = 0) -> list[Example]:
    """Examples of split ``name`` (train/val/test): inputs ``question`` and ``choices``, label ``answer`` (0-3)."""
    source = data_file(DATA_FILE, path)
    rows = [_row(source, i, r) for i, r in enumerate(read_rows(source))]
    examples = make_examples(rows, ["question", "choices"], ["answer"], key="key", source=str(source))
    return seeded_split(examples, name, SPLIT_SIZES, seed, limit)
