"""Datasets and metrics: what the user brings besides the graph.

An ``Example`` splits a data row into the graph's ``inputs`` and the ``labels`` the
metric compares against. A metric is ``metric(example, output) -> float`` (any real
number: a bool, a NumPy scalar; or a dict with ``score`` and optional ``feedback``),
plain or ``async``; anything else, or an exception, is a ``MetricError`` and is never
turned into a score.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
import json
import json.scanner
import math
import numbers
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimas_lg.errors import DataError, MetricError

Metric = Callable[["Example", Any], "float | Mapping[str, Any]"]
DEFAULT_KEY = "id"
"""The field a row's example key is read from when no key field is named (else its row number)."""


@dataclass(frozen=True)
class Example:
    """One data row: ``inputs`` go into the graph, ``labels`` are for the metric."""

    key: str
    inputs: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        """Look a field up in labels, then inputs (so metrics can say ``example["answer"]``)."""
        if name in self.labels:
            return self.labels[name]
        return self.inputs[name]

    def to_row(self) -> dict[str, Any]:
        return {"key": self.key, "inputs": self.inputs, "labels": self.labels}


@dataclass(frozen=True)
class Score:
    value: float
    feedback: str | None = None


def make_examples(rows: Iterable[Mapping[str, Any]], inputs: Sequence[str] | None = None,
                  labels: Sequence[str] | None = None, key: str | None = None,
                  source: str = "data", key_prefix: str = "") -> list[Example]:
    """Split rows into examples (the names are the CLI's ``--inputs``, ``--labels`` and
    ``--key``). Without ``inputs``, every field not in ``labels`` or the key is an input.
    A row's key is its ``key`` field, which every row must have; without ``key``, its
    ``id`` field, else ``key_prefix`` and its row number (so separate train and val files
    without ids do not share keys). Rows lacking a named field raise ``DataError`` naming
    the row (counted from 1: the line of a JSONL file without blank lines)."""
    label_keys = list(labels or [])
    key_field = key or DEFAULT_KEY
    examples = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(f"{source}: row {i + 1} is a {type(row).__name__}, expected an object/mapping")
        if inputs is not None:
            keys = list(inputs)
        else:
            keys = [k for k in row if k not in label_keys and k != key_field]
        missing = [k for k in [*keys, *label_keys, *([key] if key else [])] if k not in row]
        if missing:
            raise DataError(f"{source}: row {i + 1} has no field(s) {missing}; it has {sorted(row)}")
        name = str(row[key_field]) if key_field in row else f"{key_prefix}{i}"
        if name in seen:
            raise DataError(f"{source}: row {i + 1} repeats key {name!r} (field {key_field!r}); keys must be unique")
        seen.add(name)
        examples.append(Example(name, {k: row[k] for k in keys}, {k: row[k] for k in label_keys}))
    if not examples:
        raise DataError(f"{source}: no rows")
    return examples


class _DuplicateField(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
        self.pos = 0  # where the object holding it starts


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's fields, refusing a repeated name (json keeps the last one silently)."""
    row: dict[str, Any] = {}
    for name, value in pairs:
        if name in row:
            raise _DuplicateField(name)
        row[name] = value
    return row


def _loads(text: str) -> Any:
    """``json.loads`` refusing repeated fields with ``_DuplicateField``, which says where."""
    try:
        return json.loads(text, object_pairs_hook=_unique_fields)
    except _DuplicateField:
        pass  # the fast parser cannot say where: parse again with the Python one, which can
    decoder = json.JSONDecoder(object_pairs_hook=_unique_fields)

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[dict, int]:
        try:
            return json.decoder.JSONObject(s_and_end, *args)
        except _DuplicateField as exc:
            exc.pos = exc.pos or s_and_end[1]  # the innermost object: the one with the repeat
            raise

    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder.decode(text)


def _duplicate(path: Path, line: int, name: str) -> DataError:
    return DataError(f"{path}:{line}: field {name!r} appears twice in one row; keep one of them")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL, JSON (list of objects) or CSV file; errors name the file and line.
    A field repeated within a row is an error, not last-wins."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = []
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(_loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{n}:{exc.colno}: not valid JSON ({exc.msg} at column {exc.colno})") \
                            from exc
                    except _DuplicateField as exc:
                        raise _duplicate(path, n, exc.name) from exc
            return rows
        if suffix == ".json":
            text = path.read_text()
            try:
                data = _loads(text)
            except _DuplicateField as exc:
                raise _duplicate(path, text.count("\n", 0, exc.pos) + 1, exc.name) from exc
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
            return data
        if suffix == ".csv":
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                header = reader.fieldnames or []
                repeated = next((name for i, name in enumerate(header) if name in header[:i]), None)
                if repeated is not None:
                    raise DataError(f"{path}:1: column {repeated!r} appears twice in the header; keep one of them")
                rows = []
                for row in reader:  # DictReader fills a short row with None and keeps a long one's rest apart
                    if None in row or None in row.values():
                        n = len(header) + len(row.get(None, [])) - sum(v is None for v in row.values())
                        raise DataError(f"{path}:{reader.line_num}: {n} values for the header's {len(header)} "
                                        "columns; quote values that hold commas")
                    rows.append(row)
                return rows
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno})") from exc
    raise DataError(f"{path}: unsupported format {suffix!r}; use .jsonl, .json or .csv")


def field_names(values: Sequence[str] | None) -> list[str] | None:
    """Row field names given repeated and/or comma-separated (``--labels a,b --labels c``,
    ``["a,b", "c"]`` in Studio), as one list; ``None`` when none are given."""
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return names or None


def load_examples(path: str | Path, inputs: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                  key: str | None = None, key_prefix: str = "") -> list[Example]:
    """Read a data file into examples (``make_examples`` says how rows are split and keyed)."""
    return make_examples(read_rows(path), inputs, labels, key, source=str(path), key_prefix=key_prefix)


def as_examples(part: Iterable[Any], name: str) -> list[Example]:
    """A data split as a list, refusing anything but ``Example``s up front (a plain dict
    has no labels to tell apart and would fail deep inside the first run)."""
    examples = list(part)
    for i, example in enumerate(examples):
        if not isinstance(example, Example):
            hint = ("; make_examples(rows, labels=[...]) splits dicts into inputs and labels"
                    if isinstance(example, Mapping) else "")
            raise DataError(f"{name}[{i}] is a {type(example).__name__}, not an optimas_lg.Example{hint}")
    return examples


def split(examples: Sequence[Example], fractions: Sequence[float], seed: int = 0) -> list[list[Example]]:
    """Shuffle with ``seed`` and cut into consecutive parts of the given fractions."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    parts, start = [], 0
    for i, frac in enumerate(fractions):
        end = len(shuffled) if i == len(fractions) - 1 else start + round(frac * len(shuffled))
        parts.append(shuffled[start:end])
        start = end
    return parts


def check_metric(metric: Any, name: str | None = None) -> None:
    """Refuse, before any run or job, a metric that cannot be called as ``metric(example, output)``."""
    name = name or getattr(metric, "__name__", repr(metric))
    if not callable(metric):
        raise MetricError(f"metric {name} is a {type(metric).__name__}, not a function")
    try:
        signature = inspect.signature(metric)
    except (TypeError, ValueError):  # a builtin without a signature: it is called as it is
        return
    try:
        signature.bind(None, None)
    except TypeError as exc:
        raise MetricError(f"metric {name}{signature} cannot be called as metric(example, output): {exc}; give any "
                          "other parameter a default") from None


def _label_hint(exc: Exception, example: Example) -> str:
    """For a ``KeyError`` the data's labels may explain: the field is an input of the
    example, not a label, or the example has no labels at all."""
    field = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if not isinstance(field, str) or field in example.labels:
        return ""
    if field in example.inputs:
        return (f" ({field!r} is an input of the example, not a label; its labels are {sorted(example.labels)}: "
                "add it to --labels / labels=[...])")
    no_labels = " (the example has no labels: name the data's label fields in --labels / labels=[...])"
    return "" if example.labels else no_labels


def _awaited(result: Awaitable[Any]) -> Any:
    """The value of an async metric's awaitable, from a thread with or without a running loop."""
    async def wait() -> Any:
        return await result

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    with ThreadPoolExecutor(1) as pool:  # this thread's loop is busy running us: wait in another
        return pool.submit(asyncio.run, wait()).result()


def _real(value: Any) -> Any:
    """A NumPy (or torch) 0-d number as the plain Python number it holds."""
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return value.item()
    return value


def evaluate_metric(metric: Metric, example: Example, output: Any) -> Score:
    """Call the user's metric and check what it returned; raise ``MetricError`` otherwise."""
    name = getattr(metric, "__name__", repr(metric))
    try:
        result = metric(example, output)
        if inspect.isawaitable(result):
            result = _awaited(result)
    except Exception as exc:
        raise MetricError(f"metric {name} raised on example {example.key!r}: {type(exc).__name__}: {exc}"
                          f"{_label_hint(exc, example)}") from exc
    feedback = None
    if isinstance(result, Mapping):
        if "score" not in result:
            raise MetricError(f"metric {name} returned a dict without 'score' on example {example.key!r}")
        feedback = result.get("feedback")
        result = result["score"]
    result = _real(result)
    if isinstance(result, bool):
        result = float(result)
    if not isinstance(result, numbers.Real) or not math.isfinite(result):
        raise MetricError(f"metric {name} returned {result!r} on example {example.key!r}; expected a finite number")
    return Score(float(result), None if feedback is None else str(feedback))
