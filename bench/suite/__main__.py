"""``python -m bench.suite``: run the cells not yet stored, or rebuild the docs from stored results."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads collapse on shared cores
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch its price list
os.environ.setdefault("DSPY_CACHEDIR", os.path.join(os.environ.get("OPTIMAS_LG_HOME", "/tmp"), "dspy_cache"))

from bench.suite.cells import RESULTS, Cell, is_done, run_cell  # noqa: E402
from bench.suite.counting import Tally, count_tokens_at  # noqa: E402
from bench.suite.methods import METHODS, WRITES_PROMPTS  # noqa: E402
from bench.suite.systems import PROPOSER_MODEL, SYSTEMS, SuiteSystem  # noqa: E402

DEFAULT_SYSTEMS = ["offline_qa", "stark", "pubmedqa", "hotpotqa", "amazon"]
DEFAULT_BUDGET = 200


@contextlib.contextmanager
def model_server(system: SuiteSystem, methods: Sequence[str], tally: Tally) -> Iterator[None]:
    """One in-process server for the system's models and the proposer LM, counted per model;
    every client in the process (the graph, proposers, DSPy, GEPA) reaches it."""
    models = list(system.models)
    if models and WRITES_PROMPTS & set(methods) and any(k.kind == "prompt" for k in system.system().knobs.values()):
        models.append(PROPOSER_MODEL)
    if not models:
        yield
        return
    from optimas_lg.llm import start_server

    handle = start_server(models=models)
    count_tokens_at(handle, tally)
    previous = os.environ.get("OPTIMAS_LG_LLM_URL")
    os.environ["OPTIMAS_LG_LLM_URL"] = handle.base_url
    try:
        yield
    finally:
        handle.stop()
        if previous is None:
            os.environ.pop("OPTIMAS_LG_LLM_URL", None)
        else:
            os.environ["OPTIMAS_LG_LLM_URL"] = previous


def _names(text: str, known: Sequence[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {list(known)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=sys.modules["bench.suite"].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="system runs each method may spend")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the per-cell JSON results go")
    parser.add_argument("--markdown", action="store_true", help="rebuild the results section of docs/benchmarks.md")
    parser.add_argument("--plot", action="store_true", help="redraw the gain-vs-runs plot")
    parser.add_argument("--doc", type=Path, default=None, help="the page --markdown rewrites (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    if args.markdown or args.plot:
        from bench.suite import report

        results = report.load_results(args.out)
        if args.plot:
            print(report.plot(results, args.out / "gain_vs_runs.png"))
        if args.markdown:
            print(report.rewrite_doc(results, args.doc or report.DOC, args.budget))
        return 0
    systems = _names(args.systems, list(SYSTEMS), "systems", parser)
    methods = _names(args.methods, list(METHODS), "methods", parser)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    tally = Tally()
    for name in systems:
        todo = [Cell(name, m, s, args.budget) for s in seeds for m in methods]
        todo = [c for c in todo if not is_done(c, args.out)]
        if not todo:
            continue
        with model_server(SYSTEMS[name], methods, tally):
            for cell in todo:
                if is_done(cell, args.out):  # another process finished it meanwhile
                    continue
                print(f"== {cell.system} {cell.method} seed {cell.seed} budget {cell.budget}", flush=True)
                row = run_cell(cell, SYSTEMS[name], tally, args.out)
                test = (row.get("test") or {}).get("mean")
                print(f"   {row['status']}: test {test if test is None else round(test, 3)}, "
                      f"runs {row.get('system_runs')}, {row.get('wall_seconds', 0):.0f} s "
                      f"{row.get('error') or row.get('reason') or ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
