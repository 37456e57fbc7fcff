"""The LRF's learning curve: held-out ranking accuracy per node against the system runs
spent on pair collection.

For each system, the examples are split once: a *pool* the pairs are collected from and
a *held-out* set whose pairs (collected once, generously, and cached) are only ever used
to measure. A point of the curve is (variant, budget, seed): pairs collected from the
pool's recorded calls with ``max_runs=budget`` (``Workspace.collect_pairs``, the loop's
own pairs step, its seed choosing calls and candidates), a fresh LRF trained on all of
them, and its ranking accuracy on the cached held-out pairs per node, with the 95% Wilson
interval of ``lrf.trust``. Budgets count system runs (rollouts), never seconds.

A *variant* is a set of ``PairConfig`` / ``LRFConfig`` overrides (``--pairs``, ``--lrf``),
so each lever is measured against the same eval set. Everything is cached under
``bench/.cache/lrf_curve/<system>/`` (the recording job's store, the eval pairs, the
judge's verdicts, one JSON file per point), so a killed run resumes where it stopped.
``--report`` writes docs/bench/lrf_curve.json and the plot docs/bench/lrf_curve.png
from whatever points are cached.

    python bench/lrf_curve.py --system stark --budgets 50,100,200 --seeds 0,1,2
    python bench/lrf_curve.py --system offline_qa --budgets 400 --seeds 0 --variant more-llm \
        --pairs '{"llm_samples": 4}'
    python bench/lrf_curve.py --system offline_qa --judge     # the LLM judge on the eval pairs
    python bench/lrf_curve.py --report
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads collapse on shared cores
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's optimas_lg, not an installed one

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from optimas_lg.data import Example, load_examples  # noqa: E402
from optimas_lg.errors import DataError  # noqa: E402
from optimas_lg.graph import serde  # noqa: E402
from optimas_lg.graph.system import System  # noqa: E402
from optimas_lg.graph.target import load_target  # noqa: E402
from optimas_lg.loop.config import OptimizeConfig  # noqa: E402
from optimas_lg.loop.workspace import Workspace  # noqa: E402
from optimas_lg.lrf import (  # noqa: E402
    OVERALL,
    LocalRewardModel,
    LRFConfig,
    LRFTrainer,
    PreferencePair,
    judge_accuracy,
    ranking_accuracy,
    wilson_interval,
)
from optimas_lg.lrf.collect import PairConfig, PairStats  # noqa: E402
from optimas_lg.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache" / "lrf_curve"
OUT = REPO / "docs" / "bench" / "lrf_curve"
MODEL = "local/smollm2-135m"
LRF = LRFConfig(epochs=3, max_tokens=128, progress=False)
"""The LRF every point trains: the loop's backbone, ``make demo``'s epochs and text budget."""
EVAL_PAIRS = PairConfig(samples=4, llm_samples=3, calls_per_node=None)
"""How the held-out pairs are collected (by default): every held-out example, more candidates per call."""


@dataclass(frozen=True)
class Bench:
    """One system under test: its graph, metric, examples and the knobs its runs start from.

    ``examples`` returns the (pool, held-out) example lists: split files of an example
    folder (``split_files``) or a system's own loader."""

    target: str
    metric: str
    examples: Callable[[], tuple[list[Example], list[Example]]]
    goal: str
    knobs: dict[str, Any] = field(default_factory=dict)
    llm: bool = False  # whether its nodes call the local model (then one server is started)
    eval_pairs: PairConfig = EVAL_PAIRS
    calls_per_node: int | None = None  # recorded calls a point may use per node (None: all the pool's)


def split_files(data: str, pool: tuple[str, ...], held_out: tuple[str, ...], inputs: tuple[str, ...],
                labels: tuple[str, ...]) -> Callable[[], tuple[list[Example], list[Example]]]:
    """The ``pool`` and ``held_out`` split files (``<name>.jsonl``) of the folder ``data``, read
    with ``load_examples`` (``DataError`` if one is missing)."""

    def split(names: tuple[str, ...]) -> list[Example]:
        return [e for n in names for e in load_examples(REPO / data / f"{n}.jsonl", inputs, labels)]

    return lambda: (split(pool), split(held_out))


def pubmedqa_examples() -> tuple[list[Example], list[Example]]:
    """PubMedQA's 500 rows (``examples/pubmedqa/data.py``, seed 0): its 120-row val split as
    the pool, the first 60 of its test split (the suite's test examples) held out; disjoint."""
    from examples.pubmedqa.data import load_split

    return load_split("val"), load_split("test", limit=60)


SYSTEMS = {
    # The knobs of bench/lrf_alignment.py: a middling config whose candidates move the score both ways.
    "offline_qa": Bench("examples/offline_qa/agent.py:builder", "examples/offline_qa/metric.py:metric",
                        split_files("examples/offline_qa/data", ("train", "val"), ("test",), ("question",),
                                    ("answer",)),
                        "Answer the question with exactly the right name, as short as possible "
                        "(scored by token F1 against the gold answer).",
                        {"query_mode": "rewrite", "top_k": 2, "hops": 2, "answer_format": "entity"}, llm=True,
                        # every held-out question, 4 knob samples and 3 LLM samples per call (EVAL_PAIRS):
                        # affordable since the model server answers repeated requests from its cache
                        # (24 questions with 3 + 2 samples gave `retrieve` only 10 eval pairs)
                        # the loop's default: every call of the last node costs LLM calls, even when its
                        # scoring costs no system run (exact_last)
                        calls_per_node=PairConfig.calls_per_node),
    "stark": Bench("examples/stark/agent.py:builder", "examples/stark/metric.py:metric",
                   split_files("examples/stark/data", ("train", "val"), ("test",), ("question",), ("answers",)),
                   "Rank a gold answer entity as high as possible (scored by reciprocal rank)."),
    # The suite's `unoptimized` config (the graph's defaults: SmolLM2-135M on both nodes), so knob
    # samples (Qwen2.5-0.5B for a node) and LLM samples can move the score both ways.
    "pubmedqa": Bench("examples/pubmedqa/agent.py:builder", "examples/pubmedqa/metric.py:metric",
                      pubmedqa_examples,
                      "Decide whether the abstract's findings answer the research question yes, no or maybe "
                      "(scored by accuracy of the decision).",
                      {"analyst_model": MODEL, "solver_model": MODEL}, llm=True),
}


@contextlib.contextmanager
def model_server(bench: Bench, needed: bool) -> Iterator[None]:
    """One local model server for the system's nodes (and the judge), when needed."""
    if not needed:
        yield
        return
    from optimas_lg.llm import start_server
    from optimas_lg.llm.server import URL_ENV

    with start_server([MODEL], in_process=False) as server:
        os.environ[URL_ENV] = server.base_url
        try:
            yield
        finally:
            os.environ.pop(URL_ENV, None)


class Cache:
    """One system's cached state: the recording job, the eval pairs, the judge, the points."""

    def __init__(self, name: str) -> None:
        self.dir = CACHE / name
        (self.dir / "points").mkdir(parents=True, exist_ok=True)

    def store_url(self) -> str:
        return f"sqlite:///{self.dir / 'store.db'}"

    def read(self, name: str) -> Any:
        path = self.dir / name
        return json.loads(path.read_text()) if path.exists() else None

    def write(self, name: str, value: Any) -> None:
        path = self.dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, indent=1) + "\n")
        tmp.replace(path)  # a point is either whole or absent

    def points(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted((self.dir / "points").glob("*.json"))]


def workspace(bench: Bench, cache: Cache, store: Store, pool: list[Example],
              held: list[Example]) -> tuple[Workspace, list[str], list[str]]:
    """The system's workspace bound to its recording job (recorded once: every pool and
    held-out example run under the start knobs), with the pool's and held-out keys."""
    system = System.load(bench.target)
    metric = load_target(bench.metric)
    ws = Workspace.create(system, metric, pool, [], held, store, OptimizeConfig(seed=0))
    knobs = system.knob_values(bench.knobs)
    recording = cache.read("recording.json")
    if recording is None:
        job = store.create_job("bench", bench.target, {"bench": "lrf_curve", "knobs": knobs})
        ws.bind(job)
        config_id = store.add_config(knobs, bench.target, note="bench lrf_curve")
        summary = ws.run(pool + held, knobs, config_id, purpose="collect")
        recording = {"job_id": job, "runs": summary.n_runs, "failed": summary.n_failed, "mean": summary.mean}
        cache.write("recording.json", recording)
    ws.bind(recording["job_id"])
    return ws, [e.key for e in pool], [e.key for e in held]


def pairs_to_json(pairs: list[PreferencePair]) -> list[dict]:
    return [{**p.to_dict(), **{k: serde.to_json(getattr(p, k)) for k in ("inputs", "chosen", "rejected")}}
            for p in pairs]


def pairs_from_json(rows: list[dict], types: serde.Types) -> list[PreferencePair]:
    return [PreferencePair(**{**r, **{k: serde.from_json(r[k], types) for k in ("inputs", "chosen", "rejected")}})
            for r in rows]


def eval_pairs(ws: Workspace, cache: Cache, bench: Bench, knobs: dict[str, Any],
               held: list[str]) -> list[PreferencePair]:
    """The held-out pairs, collected once from the held-out examples and cached (node by
    node, so an interrupted collection keeps the nodes it finished)."""
    cached = cache.read("eval_pairs.json")
    if cached is None:
        stats, rows, seconds = PairStats(), [], 0.0
        for node in reversed(ws.tunable_nodes()):  # the last nodes' rollouts are the shortest
            name = f"eval_pairs_{node}.json"
            if cache.read(name) is None:
                start = time.perf_counter()
                pairs, node_stats = ws.collect_pairs(knobs, bench.eval_pairs, f"eval-{node}", example_keys=held,
                                                     nodes=[node])
                cache.write(name, {"stats": dataclasses.asdict(node_stats), "seconds": time.perf_counter() - start,
                                   "pairs": pairs_to_json(pairs)})
            part = cache.read(name)
            stats.add(PairStats(**part["stats"]))
            rows += part["pairs"]
            seconds += part["seconds"]
        cached = {"settings": dataclasses.asdict(bench.eval_pairs),
                  "examples": len({r["example_key"] for r in rows}), "system_runs": stats.system_runs,
                  "stats": dataclasses.asdict(stats), "pairs_per_node": stats.pairs, "seconds": seconds, "pairs": rows}
        cache.write("eval_pairs.json", cached)
    return pairs_from_json(cached["pairs"], ws.system.types)


def counts(pairs: list[PreferencePair], accuracy: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per node (and overall): n, correct, accuracy and the 95% Wilson interval."""
    n_by = Counter(p.node for p in pairs)
    n_by[OVERALL] = len(pairs)
    out = {}
    for node, n in n_by.items():
        acc = accuracy.get(node)
        correct = round(acc * n) if acc is not None else None
        low, high = wilson_interval(correct / n, n) if correct is not None else (0.0, 1.0)
        out["overall" if node == OVERALL else node] = {"n": n, "correct": correct, "accuracy": acc,
                                                      "low": low, "high": high}
    return out


def point(ws: Workspace, knobs: dict[str, Any], pool: list[str], evals: list[PreferencePair], variant: str,
          pair_config: PairConfig, untrained: LocalRewardModel, budget: int, seed: int) -> dict[str, Any]:
    """One point of the curve: collect within ``budget`` runs, train a copy of ``untrained``
    (its training order seeded by ``seed``; every point starts from the same heads), measure
    on ``evals``."""
    start = time.perf_counter()
    stage = f"{variant}-b{budget}-s{seed}"
    train, stats = ws.collect_pairs(knobs, dataclasses.replace(pair_config, seed=seed), stage,
                                    example_keys=pool, max_runs=budget)
    collected = time.perf_counter()
    result: dict[str, Any] = {"variant": variant, "budget": budget, "seed": seed, "system_runs": stats.system_runs,
                              "stats": dataclasses.asdict(stats), "train_pairs": dict(Counter(p.node for p in train)),
                              "train_examples": len({p.example_key for p in train})}
    model = copy.deepcopy(untrained)  # loading the backbone again would cost more than training it
    if train:
        LRFTrainer(model, dataclasses.replace(model.config, seed=seed)).train(train)
    accuracy = ranking_accuracy(model, evals)  # budget 0: the untrained heads, where every curve starts
    result["eval"] = counts(evals, accuracy)
    result["seconds"] = {"collect": collected - start, "train_eval": time.perf_counter() - collected}
    return result


def run(args: argparse.Namespace) -> None:
    bench = SYSTEMS[args.system]
    cache = Cache(args.system)
    pair_config = dataclasses.replace(PairConfig(calls_per_node=bench.calls_per_node), **json.loads(args.pairs))
    lrf_config = dataclasses.replace(LRF, **json.loads(args.lrf))
    pool_examples, held_examples = bench.examples()  # before the model server: a missing file fails at once
    with model_server(bench, bench.llm or args.judge), Store(cache.store_url()) as store:
        ws, pool, held = workspace(bench, cache, store, pool_examples, held_examples)
        knobs = ws.system.knob_values(bench.knobs)
        evals = eval_pairs(ws, cache, bench, knobs, held)
        print(f"{args.system}: {len(evals)} eval pairs {dict(Counter(p.node for p in evals))}", flush=True)
        if args.judge and cache.read("judge.json") is None:
            from optimas_lg.llm import chat_model

            start = time.perf_counter()
            verdict = judge_accuracy(evals, chat_model(MODEL, temperature=0, max_tokens=8), ws.rewards.nodes,
                                     bench.goal)
            cache.write("judge.json", {"model": MODEL, "goal": bench.goal, "eval": counts(evals, verdict.accuracy),
                                       "unparsed": verdict.unparsed, "seconds": time.perf_counter() - start})
        untrained = LocalRewardModel(ws.rewards.nodes, lrf_config)
        for budget in args.budgets:
            for seed in args.seeds:
                name = f"points/{args.variant}-b{budget:05d}-s{seed}.json"
                if cache.read(name) is not None:
                    continue
                result = point(ws, knobs, pool, evals, args.variant, pair_config, untrained, budget, seed)
                result["settings"] = {"pairs": dataclasses.asdict(pair_config), "lrf": dataclasses.asdict(lrf_config)}
                cache.write(name, result)
                overall = result["eval"]["overall"]
                print(f"{args.variant} budget {budget} seed {seed}: runs {result['system_runs']}, pairs "
                      f"{result['train_pairs']}, overall {overall['accuracy']} [{overall['low']:.2f}, "
                      f"{overall['high']:.2f}] n={overall['n']}; "
                      + ", ".join(f"{k} {v['accuracy'] if v['accuracy'] is None else round(v['accuracy'], 3)}"
                                  for k, v in result["eval"].items() if k != "overall"), flush=True)


def summarize(points: list[dict]) -> dict[str, dict]:
    """Per variant, budget and node: the mean accuracy over seeds, its range, and the
    Wilson interval of the seeds' pooled counts."""
    table: dict[str, dict] = {}
    for p in points:
        for node, e in p["eval"].items():
            if e["accuracy"] is None:
                continue
            cell = table.setdefault(p["variant"], {}).setdefault(str(p["budget"]), {}).setdefault(
                node, {"accuracies": [], "correct": 0, "n": 0, "seeds": []})
            cell["accuracies"].append(e["accuracy"])
            cell["seeds"].append(p["seed"])
            cell["correct"] += e["correct"]
            cell["n"] += e["n"]
    for by_budget in table.values():
        for by_node in by_budget.values():
            for cell in by_node.values():
                accs = cell["accuracies"]
                cell["mean"] = sum(accs) / len(accs)
                cell["min"], cell["max"] = min(accs), max(accs)
                cell["pooled_low"], cell["pooled_high"] = wilson_interval(cell["correct"] / cell["n"], cell["n"])
    return table


def report() -> None:
    """docs/bench/lrf_curve.json and .png from every cached point; a system with no cache
    here (its cache is per machine) keeps what the last report said of it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result: dict[str, Any] = {"lrf": dataclasses.asdict(LRF), "systems": {}}
    previous = json.loads(OUT.with_suffix(".json").read_text())["systems"] if OUT.with_suffix(".json").exists() else {}
    for name in SYSTEMS:
        cache = Cache(name)
        evals = cache.read("eval_pairs.json")
        if evals is None and cache.read("recording.json") is None and name in previous:
            result["systems"][name] = previous[name]
            continue
        if evals is None:  # the held-out pairs are still being collected: say how far it got
            parts = {p.stem.removeprefix("eval_pairs_"): json.loads(p.read_text())
                     for p in sorted(cache.dir.glob("eval_pairs_*.json"))}
            result["unfinished"] = {**result.get("unfinished", {}), name: {
                "recording": cache.read("recording.json"),
                "eval_nodes_done": {n: {k: v for k, v in part.items() if k != "pairs"} for n, part in parts.items()}}}
            continue
        points = cache.points()
        result["systems"][name] = {
            "recording": cache.read("recording.json"), "knobs": SYSTEMS[name].knobs,
            "eval": {k: v for k, v in evals.items() if k != "pairs"}, "judge": cache.read("judge.json"),
            "curve": summarize(points), "points": points}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    systems = list(result["systems"])
    if not systems:
        return
    fig, axes = plt.subplots(1, len(systems), figsize=(6 * len(systems), 4.2), squeeze=False)
    for ax, name in zip(axes[0], systems):
        sysres = result["systems"][name]
        curves = sysres["curve"]
        if not curves:
            ax.set_title(f"{name}: no point yet", fontsize=9)
            continue
        richest = max(curves, key=lambda v: len(curves[v]))  # per-node lines for the variant with most budgets
        budgets = sorted({b for v in curves.values() for b in v}, key=int)
        nodes = sorted({n for b in curves[richest].values() for n in b} - {"overall"})
        for node in nodes:
            xs = sorted(int(b) for b in curves[richest] if node in curves[richest][b])
            cells = [curves[richest][str(x)][node] for x in xs]
            line = ax.plot(xs, [c["mean"] for c in cells], marker="o", linewidth=1, label=f"{node} ({richest})")[0]
            ax.fill_between(xs, [c["pooled_low"] for c in cells], [c["pooled_high"] for c in cells],
                            color=line.get_color(), alpha=0.10)
        for i, variant in enumerate(curves):  # 4 line styles, then the same in grey
            xs = sorted(int(b) for b in curves[variant])
            ax.plot(xs, [curves[variant][str(x)]["overall"]["mean"] for x in xs], color="black" if i < 4 else "grey",
                    linestyle=("-", "--", ":", "-.")[i % 4], marker="x", linewidth=2, label=f"overall ({variant})")
        judge = sysres.get("judge")
        if judge:
            ax.axhline(judge["eval"]["overall"]["accuracy"], color="grey", linestyle=":",
                       label=f"LLM judge overall ({MODEL})")
        ax.axhline(0.5, color="grey", linewidth=0.8)
        ax.axhline(0.75, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("symlog", linthresh=min(int(b) for b in budgets if int(b) > 0))  # budget 0: untrained
        ax.set_xticks([int(b) for b in budgets], budgets)
        ax.minorticks_off()
        ax.set_ylim(0.2, 1.0)
        ax.set_xlabel("system runs spent on pairs")
        ax.set_ylabel("held-out ranking accuracy")
        ax.set_title(f"{name}: {sum(sysres['eval']['pairs_per_node'].values())} eval pairs "
                     "(mean over seeds, 95% Wilson band)", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=110)
    print(f"wrote {OUT.with_suffix('.json')} and {OUT.with_suffix('.png')}")
    for name in systems:
        if result["systems"][name]["curve"]:
            print(tables(name, result["systems"][name]))


def _cell(cell: dict | None) -> str:
    if cell is None:
        return "-"
    spread = f" ({cell['min']:.2f}-{cell['max']:.2f})" if len(cell["accuracies"]) > 1 else ""
    return f"{cell['mean']:.3f}{spread} [{cell['pooled_low']:.2f}, {cell['pooled_high']:.2f}]"


def tables(name: str, sysres: dict) -> str:
    """Markdown: overall accuracy per variant and budget, then per node."""
    curve = sysres["curve"]
    budgets = sorted({b for v in curve.values() for b in v}, key=int)
    lines = [f"**{name}**: overall held-out ranking accuracy, mean over seeds (range) [95% Wilson of the pooled "
             "counts]", "", "| variant | " + " | ".join(budgets) + " |", "| --- |" + " ---: |" * len(budgets)]
    for variant, by_budget in curve.items():
        lines.append(f"| {variant} | " + " | ".join(_cell(by_budget.get(b, {}).get("overall")) for b in budgets)
                     + " |")
    nodes = sorted({n for v in curve.values() for b in v.values() for n in b} - {"overall"})
    lines += ["", f"**{name}**: per node (eval pairs per node: {sysres['eval']['pairs_per_node']})", "",
              "| variant | budget | seeds | " + " | ".join(nodes) + " |",
              "| --- | ---: | ---: |" + " ---: |" * len(nodes)]
    for variant, by_budget in curve.items():
        for b in sorted(by_budget, key=int):
            seeds = len(by_budget[b]["overall"]["accuracies"])
            lines.append(f"| {variant} | {b} | {seeds} | " + " | ".join(_cell(by_budget[b].get(n)) for n in nodes)
                         + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=sorted(SYSTEMS))
    parser.add_argument("--budgets", type=lambda s: [int(x) for x in s.split(",")], default=[50, 100, 200, 400, 800])
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    parser.add_argument("--variant", default="default", help="Name of the PairConfig/LRFConfig overrides.")
    parser.add_argument("--pairs", default="{}", help="PairConfig overrides as JSON.")
    parser.add_argument("--lrf", default="{}", help="LRFConfig overrides as JSON.")
    parser.add_argument("--judge", action="store_true", help=f"Also rank the eval pairs with {MODEL} as a judge.")
    parser.add_argument("--report", action="store_true", help="Write the JSON and the plot from the cache.")
    args = parser.parse_args()
    os.chdir(REPO)  # the systems' targets are paths relative to the repository
    if args.system:
        try:
            run(args)
        except DataError as error:
            sys.exit(f"lrf_curve: {args.system}: {error}")
    if args.report:
        report()


if __name__ == "__main__":
    main()
