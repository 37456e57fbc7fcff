"""Val and test scores another cell already measured for the same final config.

The task models decode greedily, so the same system code, knob values, splits, task models
and package versions give the same scores. A cell whose method kept a config some stored
cell already scored (every ``unoptimized`` seed after the first; a loop cell whose gate kept
nothing) takes those scores instead of running the val and test splits again, which on a
paper system is 90 runs of 15-55 s each. The result names the cell it took them from
(``scoring.reused_from``). Scores of a method that brings its own scorer (a DSPy program)
are never reused, nor reused from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import optimas_lg

MATCH = ("system", "sizes", "task_models", "source_digest")
"""Fields of a stored result that must equal the new cell's, besides knobs and versions."""


def source_digest(module: str) -> str:
    """sha256 of what a score depends on in this tree: optimas_lg's sources and every file of
    the system's package (its code and any data it ships)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module {module!r} to digest")
    digest = hashlib.sha256()
    for root, pattern in ((Path(optimas_lg.__file__).parent, "*.py"), (Path(spec.origin).parent, "*")):
        for path in sorted(p for p in root.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _canonical(knobs: dict[str, Any]) -> str:
    return json.dumps(knobs, sort_keys=True, default=str)


def _same_versions(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "git"} == {k: v for k, v in b.items() if k != "git"}


def scored_before(out: Path, row: dict[str, Any], knobs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The file name and the stored result of a cell in ``out`` that scored ``knobs`` under
    the same terms as ``row`` (the new cell's result so far), or ``None``."""
    wanted = _canonical(knobs)
    for path in sorted(out.glob(f"{row['system']}.*.json")):
        stored = json.loads(path.read_text())
        if (stored.get("status") == "done" and stored.get("scoring", {}).get("by") == "graph"
                and all(stored.get(k) == row.get(k) for k in MATCH)
                and _same_versions(stored.get("versions", {}), row.get("versions", {}))
                and _canonical(stored.get("final_knobs", {})) == wanted):
            return path.name, stored
    return None
