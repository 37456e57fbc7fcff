"""pass@1 of the final program on HumanEval's hidden ``check`` tests, run in the sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from examples.humaneval.programs import passes_hidden_tests
from optimas_lg.data import Example


def metric(example: Example, output: Mapping[str, Any]) -> float:
    """1.0 when ``output["program"]`` passes the problem's hidden tests, else 0.0 (no
    program, an error, a timeout or a refused action alike)."""
    source = output.get("program") if isinstance(output, Mapping) else None
    if not source:
        return 0.0
    return float(passes_hidden_tests(source, example["test"], example["entry_point"]))


def show(example: Example, output: Mapping[str, Any]) -> str:
    """One line for ``python -m examples.humaneval --show``: tests passed by the kept program, repaired or not."""
    reports = output.get("reports") or [{}]
    best = max(reports, key=lambda r: r.get("passed", 0))
    return (f"visible tests {best.get('passed', 0)}/{best.get('total', 0)}"
            f"{' (repaired)' if output.get('repaired') else ''}\tcandidates={len(output.get('candidates', []))}")
