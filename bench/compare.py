"""optimas-lg against DSPy MIPROv2 and GEPA on the offline QA agent, same model, same budget.

All methods optimize the same system (``examples/offline_qa``: rewrite -> BM25 multi-hop
retrieve -> answer) on SmolLM2-135M served by ONE local optimas-lg model server started
here, with the same train (36) and val (30) questions and the same budget of system runs;
each result is then scored on the 60 test questions by the same kind of evaluator.

- ``unoptimized``: the agent's default knobs (val and test only).
- ``optimas``: ``optimas_lg.optimize`` with the demo's config (``examples.offline_qa.demo``),
  ``max_system_runs=BUDGET``; the final config is scored on test with ``graph.invoke``.
- ``mipro`` / ``gepa``: the same steps as a DSPy program (``mipro_lenient``: MIPROv2 whose
  proposer replies are taken whole when they lack DSPy's field markers, since SmolLM2 never
  writes them and stock MIPROv2 stops at the first such reply). A small DSPy adapter renders
  exactly the agent's prompts (instruction + "Question: ..." / instruction + "Facts: ..." +
  "Question: ..." as one user message, stop at the first newline, the agent's max_tokens)
  and takes the first line of the reply, so the unoptimized DSPy program sends the very
  same requests as the unoptimized agent. The retriever is the agent's own BM25 with the
  agent's default top_k=1, hops=1 (DSPy optimizers tune prompts and demos, not these
  knobs). DSPy's own signatures (MIPROv2's proposer) keep DSPy's ChatAdapter.

Counted for every method: system runs (program executions, including those inside the
optimizer; test-set runs are counted apart), LLM tokens (prompt + completion, counted at
the server for every request any client makes, so proposer and reflection calls are
included), and wall time. Results go to ``docs/bench/compare.json`` (merged per method, so
methods can be run one at a time) and ``docs/bench/compare.png``.

    OPTIMAS_LG_HOME=$(mktemp -d) OPTIMAS_LG_MODEL_CACHE=storage/models \\
        .venv/bin/python -m bench.compare [--budget 200] [--methods unoptimized,optimas,mipro,gepa]
    .venv/bin/python -m bench.compare --plot-only    # redraw docs/bench/compare.png
    .venv/bin/python -m bench.compare --markdown     # the tables of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads collapse on shared cores
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch its price list
os.environ.setdefault("DSPY_CACHEDIR", os.path.join(os.environ.get("OPTIMAS_LG_HOME", "/tmp"), "dspy_cache"))

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/compare.py` (make bench) must import examples/

from examples.offline_qa.agent import (  # noqa: E402
    ANSWER_TOKENS,
    BASE_MODEL,
    REWRITE_TOKENS,
    AgentConfig,
    builder,
    knowledge_base,
    load_split,
)
from examples.offline_qa.metric import metric, token_f1  # noqa: E402
from optimas_lg.data import Example  # noqa: E402

OUT_JSON = ROOT / "docs" / "bench" / "compare.json"
OUT_PNG = ROOT / "docs" / "bench" / "compare.png"
METHODS = ("unoptimized", "optimas", "mipro", "mipro_lenient", "gepa")
CONCURRENCY = 8  # the server batches up to 8 requests; every method runs 8 examples at a time


# -- counting ----------------------------------------------------------------------------
class Counter:
    """Thread-safe running totals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, int] = {}

    def add(self, **kw: int) -> None:
        with self._lock:
            for k, v in kw.items():
                self.values[k] = self.values.get(k, 0) + int(v or 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


SERVER = Counter()  # tokens of every completion the local server returns
RUNS = Counter()  # DSPy program executions


def count_server_tokens() -> bool:
    """Count prompt/completion tokens of every response at the server (all clients alike).

    Wraps the server's usage helper (``optimas_lg.llm.schema._usage``); returns False if the
    helper is gone, and the benchmark then falls back to client-side counts.
    """
    from optimas_lg.llm import schema

    original = getattr(schema, "_usage", None)
    if original is None:
        return False

    def counted(result: Any) -> dict:
        usage = original(result)
        SERVER.add(prompt=usage["prompt_tokens"], completion=usage["completion_tokens"], requests=1)
        return usage

    schema._usage = counted
    return True


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


# -- LangGraph evaluation (unoptimized agent, optimas-lg's result) ------------------------
def evaluate_graph(examples: list[Example], config: Any) -> list[float]:
    graph = builder.compile()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        outputs = list(pool.map(lambda e: graph.invoke(e.inputs, context=config), examples))
    return [metric(e, o) for e, o in zip(examples, outputs)]


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


# -- the DSPy program ---------------------------------------------------------------------
def dspy_parts(base_url: str) -> dict[str, Any]:
    """The DSPy LM, adapter, program class and metrics (imported lazily: dspy is optional)."""
    import dspy
    from dspy.utils.exceptions import AdapterParseError

    rewrite_sig = dspy.Signature("question -> query", instructions=AgentConfig.rewrite_prompt)
    answer_sig = dspy.Signature("facts, question -> answer", instructions=AgentConfig.answer_prompt)
    task_fields = {(("question",), ("query",)), (("facts", "question"), ("answer",))}

    def is_task(signature: Any) -> bool:
        return (tuple(signature.input_fields), tuple(signature.output_fields)) in task_fields

    def render(signature: Any, values: dict[str, Any]) -> str:
        # byte for byte the agent's prompts (examples/offline_qa/agent.py: rewrite, answer)
        if "facts" in signature.input_fields:
            return f"{signature.instructions}\n\nFacts:\n{values['facts']}\n\nQuestion: {values['question']}"
        return f"{signature.instructions}\n\nQuestion: {values['question']}"

    class SamePromptAdapter(dspy.ChatAdapter):
        """The agent's prompts for the two task signatures; demos become earlier user/assistant
        turns; the reply's first line is the output. Other signatures: DSPy's ChatAdapter
        (without the JSON fallback, which needs response_format the local server refuses)."""

        lenient = False  # set for "mipro_lenient" only

        def __init__(self) -> None:
            super().__init__(use_json_adapter_fallback=False)

        def format(self, signature: Any, demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
            if not is_task(signature):
                return super().format(signature, demos, inputs)
            (out,) = signature.output_fields
            messages: list[dict[str, Any]] = []
            for demo in demos:
                if all(demo.get(k) is not None for k in [*signature.input_fields, out]):
                    messages += [{"role": "user", "content": render(signature, demo)},
                                 {"role": "assistant", "content": str(demo[out])}]
            messages.append({"role": "user", "content": render(signature, inputs)})
            return messages

        def parse(self, signature: Any, completion: str) -> dict[str, Any]:
            if not is_task(signature):
                try:
                    return super().parse(signature, completion)
                except AdapterParseError:
                    if not self.lenient:
                        raise
                    # lenient: a reply without DSPy's [[ ## field ## ]] markers fills the last
                    # output field whole (the proposer's signatures end with the instruction)
                    *first, last = signature.output_fields
                    text = re.sub(r"\[\[ ## \w+ ## \]\]", "", completion).strip()
                    return {**{f: "" for f in first}, last: text}
            (out,) = signature.output_fields
            return {out: completion.strip().split("\n", 1)[0].strip()}

    cfg = AgentConfig()
    kb = knowledge_base()

    class OfflineQA(dspy.Module):
        """rewrite -> BM25 multi-hop retrieve (the agent's own) -> answer, default knobs."""

        def __init__(self) -> None:
            super().__init__()
            self.rewrite = dspy.Predict(rewrite_sig, max_tokens=REWRITE_TOKENS, stop=["\n"])
            self.answer = dspy.Predict(answer_sig, max_tokens=ANSWER_TOKENS, stop=["\n"])

        def forward(self, question: str) -> Any:
            RUNS.add(runs=1)
            try:  # an empty first line is an empty query in the agent, not an error
                query = self.rewrite(question=question).query or ""
            except AdapterParseError:
                query = ""
            facts = "\n".join(kb.multi_hop(query, cfg.top_k, cfg.hops)) or "(none found)"
            try:
                answer = self.answer(facts=facts, question=question).answer or ""
            except AdapterParseError:
                answer = ""
            return dspy.Prediction(query=query, facts=facts, answer=answer)

    def score(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> float:
        return token_f1(getattr(pred, "answer", "") or "", gold.answer)

    def feedback_metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        f1 = score(gold, pred)
        text = (f"Token F1 {f1:.2f}. The correct answer is '{gold.answer}'; the system answered "
                f"'{getattr(pred, 'answer', '')}'. The search query was '{getattr(pred, 'query', '')}'. "
                f"The facts needed were: {' '.join(gold.support)}")
        return dspy.Prediction(score=f1, feedback=text)

    def task_lm() -> Any:
        return dspy.LM(f"openai/{BASE_MODEL}", api_base=f"{base_url}/v1", api_key="local", temperature=0.0,
                       max_tokens=ANSWER_TOKENS, cache=False, num_retries=1)

    def helper_lm(max_tokens: int, temperature: float) -> Any:
        """The same SmolLM2 as proposer (MIPROv2) or reflection LM (GEPA)."""
        return dspy.LM(f"openai/{BASE_MODEL}", api_base=f"{base_url}/v1", api_key="local",
                       temperature=temperature, max_tokens=max_tokens, cache=False, num_retries=1)

    def to_dspy(examples: list[Example]) -> list[Any]:
        return [dspy.Example(question=e["question"], answer=e["answer"], hops=e["hops"], support=e["support"])
                .with_inputs("question") for e in examples]

    def evaluate(program: Any, examples: list[Any]) -> list[float]:
        def one(ex: Any) -> float:
            return score(ex, program(**ex.inputs()))
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            return list(pool.map(one, examples))

    return {"dspy": dspy, "adapter": SamePromptAdapter(), "program": OfflineQA, "score": score,
            "feedback_metric": feedback_metric, "task_lm": task_lm, "helper_lm": helper_lm,
            "to_dspy": to_dspy, "evaluate": evaluate}


def lm_history_tokens(*histories: list[dict[str, Any]]) -> dict[str, int]:
    """Client-side token counts from DSPy LMs' histories (a cross-check of the server count)."""
    prompt = completion = calls = 0
    for history in histories:
        for entry in history:
            usage = entry.get("usage") or {}
            prompt += int(usage.get("prompt_tokens") or 0)
            completion += int(usage.get("completion_tokens") or 0)
            calls += 1
    return {"prompt": prompt, "completion": completion, "calls": calls}


def instructions_of(program: Any) -> dict[str, Any]:
    return {name: {"instructions": p.signature.instructions, "demos": len(p.demos)}
            for name, p in program.named_predictors()}


# -- methods ------------------------------------------------------------------------------
def run_unoptimized(ctx: dict[str, Any]) -> dict[str, Any]:
    val = evaluate_graph(ctx["val"], AgentConfig())
    return {"val_f1": mean(val), "optimize_runs": len(ctx["val"]), "final": dataclasses.asdict(AgentConfig()),
            "note": "default knobs, no optimization; the 30 val runs are its only runs before test"}


def run_optimas(ctx: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import func, select

    from examples.offline_qa.demo import DEMO_CONFIG
    from optimas_lg import optimize
    from optimas_lg.store import Store
    from optimas_lg.store import models as m

    store = Store()
    result = optimize(builder, ctx["train"], metric, valset=ctx["val"], settings=DEMO_CONFIG, store=store,
                      max_system_runs=ctx["budget"], max_seconds=ctx["max_seconds"])
    with store.session() as s:
        by_purpose = dict(s.execute(select(m.Run.purpose, func.count()).where(m.Run.job_id == result.job_id)
                                    .group_by(m.Run.purpose)).all())
        store_tokens = s.scalar(
            select(func.coalesce(func.sum(m.LLMCall.prompt_tokens + m.LLMCall.completion_tokens), 0))
            .join(m.Run, m.Run.id == m.LLMCall.run_id).where(m.Run.job_id == result.job_id)) or 0
    return {"val_f1": result.val_after, "val_before": result.val_before, "optimize_runs": sum(by_purpose.values()),
            "runs_by_purpose": by_purpose, "store_tokens_in_runs": int(store_tokens), "job_id": result.job_id,
            "stop_reason": result.stop_reason, "final": result.best_knobs, "_config": result.best_config,
            "config": {"demo_config": DEMO_CONFIG.to_dict(), "max_system_runs": ctx["budget"],
                       "max_seconds": ctx["max_seconds"]},
            "history": result.to_dict()["history"]}


def run_mipro_lenient(ctx: dict[str, Any]) -> dict[str, Any]:
    """MIPROv2 as ``run_mipro``, but a proposer reply that lacks DSPy's field markers is
    taken whole instead of raising (stock MIPROv2 stops at SmolLM2's first such reply)."""
    adapter = ctx["dspy_parts"]["adapter"]
    adapter.lenient = True
    try:
        out = run_mipro(ctx)
    finally:
        adapter.lenient = False
    out["config"]["lenient_proposer_parse"] = True
    return out


def run_mipro(ctx: dict[str, Any]) -> dict[str, Any]:
    d = ctx["dspy_parts"]
    dspy = d["dspy"]
    prompt_lm = d["helper_lm"](max_tokens=ctx["helper_tokens"], temperature=1.0)
    settings = dict(num_candidates=3, max_bootstrapped_demos=1, max_labeled_demos=0)
    compile_kw = dict(num_trials=ctx["mipro_trials"], minibatch=True, minibatch_size=10, minibatch_full_eval_steps=5,
                      view_data_batch_size=5)
    optimizer = dspy.MIPROv2(metric=d["score"], prompt_model=prompt_lm, task_model=ctx["lm"], auto=None,
                             num_threads=CONCURRENCY, seed=0, max_errors=1000, **settings)
    program = optimizer.compile(d["program"](), trainset=ctx["dtrain"], valset=ctx["dval"], **compile_kw)
    val = getattr(program, "score", None)  # dspy.Evaluate's score: a percentage
    return {"val_f1": None if val is None else val / 100, "final": instructions_of(program), "_program": program,
            "_lms": [prompt_lm],
            "config": {"MIPROv2": {**settings, "auto": None}, "compile": compile_kw,
                       "prompt_model_max_tokens": ctx["helper_tokens"]}}


def run_gepa(ctx: dict[str, Any]) -> dict[str, Any]:
    d = ctx["dspy_parts"]
    dspy = d["dspy"]
    reflection_lm = d["helper_lm"](max_tokens=ctx["helper_tokens"], temperature=1.0)
    settings = dict(max_metric_calls=ctx["budget"], reflection_minibatch_size=3, num_threads=CONCURRENCY, seed=0,
                    track_stats=True)
    optimizer = dspy.GEPA(metric=d["feedback_metric"], reflection_lm=reflection_lm, **settings)
    program = optimizer.compile(d["program"](), trainset=ctx["dtrain"], valset=ctx["dval"])
    results = getattr(program, "detailed_results", None)
    val = None
    extra: dict[str, Any] = {}
    if results is not None:
        val = results.val_aggregate_scores[results.best_idx]
        extra = {"candidates": len(results.candidates), "val_scores": results.val_aggregate_scores,
                 "total_metric_calls": getattr(results, "total_metric_calls", None)}
    return {"val_f1": val, "final": instructions_of(program), "_program": program, "_lms": [reflection_lm],
            "config": {"GEPA": settings, "reflection_lm_max_tokens": ctx["helper_tokens"]}, **extra}


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "unoptimized": run_unoptimized, "optimas": run_optimas, "mipro": run_mipro, "mipro_lenient": run_mipro_lenient,
    "gepa": run_gepa}


def run_method(name: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """Optimize (timed, counted), then score the result on test (counted apart)."""
    is_dspy = name in ("mipro", "mipro_lenient", "gepa")
    row: dict[str, Any] = {"method": name, "started": time.strftime("%Y-%m-%d %H:%M"), "load1_start": load1()}
    tokens0, runs0 = SERVER.snapshot(), RUNS.snapshot()
    lm_hist0 = len(ctx["lm"].history) if is_dspy else 0
    start = time.perf_counter()
    try:
        out = RUNNERS[name](ctx)
    except Exception as exc:  # noqa: BLE001 - a peer that cannot run is a result, reported as such
        row.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-3000:],
                   seconds=time.perf_counter() - start, tokens=delta(SERVER.snapshot(), tokens0))
        if is_dspy:
            row["optimize_runs"] = delta(RUNS.snapshot(), runs0).get("runs", 0)
        return row
    row["seconds"] = time.perf_counter() - start
    tokens = delta(SERVER.snapshot(), tokens0)
    row["tokens"] = {**tokens, "total": tokens.get("prompt", 0) + tokens.get("completion", 0)}
    if is_dspy:
        row["optimize_runs"] = delta(RUNS.snapshot(), runs0).get("runs", 0)
        row["client_tokens"] = lm_history_tokens(ctx["lm"].history[lm_hist0:], *(lm.history for lm in out.pop("_lms")))
    program, config = out.pop("_program", None), out.pop("_config", None)
    row.update(out)

    # test: 60 questions, same evaluator family for every method
    tokens1, start = SERVER.snapshot(), time.perf_counter()
    if is_dspy:
        scores = ctx["dspy_parts"]["evaluate"](program, ctx["dtest"])
    else:
        scores = evaluate_graph(ctx["test"], config if config is not None else AgentConfig())
    test_tokens = delta(SERVER.snapshot(), tokens1)
    row.update(test_f1=mean(scores), test_scores=scores, test_runs=len(scores),
               test_seconds=time.perf_counter() - start,
               test_tokens=test_tokens.get("prompt", 0) + test_tokens.get("completion", 0), load1_end=load1())
    return row


# -- output -------------------------------------------------------------------------------
def load_results() -> dict[str, Any]:
    return json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {"methods": {}}


def plot(data: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [data["methods"][m] for m in METHODS if m in data["methods"]]
    labels = {"unoptimized": "unoptimized", "optimas": "optimas-lg", "mipro": "DSPy MIPROv2\n(stock)",
              "mipro_lenient": "MIPROv2\n(lenient parse)", "gepa": "DSPy GEPA"}
    repeats = [r["test_f1"] for r in data.get("optimas_runs") or []]
    if len(repeats) > 1:  # the bars show the last run; say so when there were others
        scores = ", ".join(f"{x:.2f}" for x in repeats)
        labels["optimas"] = f"optimas-lg, last of\n{len(repeats)} runs: \n{scores}"
    names = [labels[r["method"]] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    panels = [("test F1 (60 questions)", [r.get("test_f1") for r in rows]),
              ("system runs while optimizing", [r.get("optimize_runs") for r in rows]),
              ("wall time while optimizing (min)", [(r.get("seconds") or 0) / 60 for r in rows])]
    palette = {"unoptimized": "#999999", "optimas": "#1f77b4", "mipro": "#ff7f0e", "mipro_lenient": "#ffbb78",
               "gepa": "#2ca02c"}
    colors = [palette[r["method"]] for r in rows]
    for ax, (title, values) in zip(axes, panels):
        shown = [v if v is not None else 0 for v in values]
        bars = ax.bar(names, shown, color=colors)
        for bar, v, r in zip(bars, values, rows):
            text = ("error" if "error" in r and v is None else f"{v:.3f}" if title.startswith("test") and v is not None
                    else f"{v:.1f}" if isinstance(v, float) else str(v))
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"offline QA agent on SmolLM2-135M (CPU), budget {data.get('budget')} system runs", fontsize=11)
    fig.tight_layout()
    fig.savefig(OUT_PNG, dpi=110)
    plt.close(fig)


def print_table(data: dict[str, Any]) -> None:
    print(f"{'method':12s} {'test F1':>8s} {'val F1':>8s} {'runs':>6s} {'tokens':>9s} {'minutes':>8s}")
    for name in METHODS:
        r = data["methods"].get(name)
        if r is None:
            continue
        if "error" in r:
            print(f"{name:12s} ERROR after {r.get('seconds', 0):.0f}s: {r['error'][:200]}")
            continue
        val = r.get("val_f1")
        print(f"{name:12s} {r['test_f1']:8.3f} {val if val is None else format(val, '8.3f'):>8} "
              f"{r['optimize_runs']:6d} {r['tokens']['total']:9d} {r['seconds'] / 60:8.1f}")


LABELS = {"unoptimized": "unoptimized (defaults)", "optimas": "optimas-lg", "mipro": "DSPy MIPROv2 (stock)",
          "mipro_lenient": "DSPy MIPROv2, lenient proposer parse", "gepa": "DSPy GEPA"}


def lrf_throughput_line(d: dict[str, Any]) -> str:
    """The docs/benchmarks.md line for ``bench/lrf_throughput.py``'s result."""
    return (f"- `lrf_throughput.json` (`bench/lrf_throughput.py`): LRF on {d['backbone'].split(' (')[0]}, "
            f"{d['candidates']} offline QA candidates of {d['nodes']} nodes "
            f"({d['tokens_per_text']['mean']:.0f} tokens on average), batch {d['batch_size']}: raw backbone forward "
            f"{d['raw_texts_per_s']} texts/s (sorted by token count), `score_many` {d['score_many_per_s']} "
            f"candidates/s = {d['score_ratio']:.3f} of raw (goal >= {d['goal_score_ratio']}); training "
            f"{d['train_pairs_per_s']} pairs/s = {d['train_ratio']:.3f} of raw; "
            f"load average {d['load_average_start'][0]} on {d['cpus']} cores.")


def markdown(data: dict[str, Any]) -> str:
    """The comparison table and the other result files in docs/bench/ as markdown."""
    lines = ["| method | test F1 (60) | val F1 (30) | system runs | LLM tokens | wall time | test eval |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in METHODS:
        r = data["methods"].get(name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {LABELS[name]} | error | - | {r.get('optimize_runs', '-')} | "
                         f"{r['tokens'].get('prompt', 0) + r['tokens'].get('completion', 0)} | "
                         f"{r['seconds']:.0f} s | `{r['error'].splitlines()[0][:90]}` |")
            continue
        val = "-" if r.get("val_f1") is None else f"{r['val_f1']:.3f}"
        lines.append(f"| {LABELS[name]} | {r['test_f1']:.3f} | {val} | {r['optimize_runs']} | "
                     f"{r['tokens']['total']:,} | {r['seconds'] / 60:.1f} min | {r['test_runs']} runs, "
                     f"{r['test_tokens']:,} tokens, {r['test_seconds']:.0f} s |")
    repeats = data.get("optimas_runs") or []
    if repeats:
        lines += ["", "optimas-lg, every run of this session (same budget and data; the optimizer's code moved "
                  "between runs):", "",
                  "| run | started | test F1 | val F1 | system runs | LLM tokens | wall time | final knobs changed "
                  "| stop |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        defaults = dataclasses.asdict(AgentConfig())
        for i, r in enumerate(repeats, 1):
            changed = ", ".join(f"{k}={v!r}" for k, v in r["final"].items() if defaults.get(k) != v) or "none"
            lines.append(f"| {i} | {r.get('started', '')} | {r['test_f1']:.3f} | {r['val_f1']:.3f} | "
                         f"{r['optimize_runs']} | {r['tokens']['total']:,} | {r['seconds'] / 60:.1f} min | "
                         f"{changed} | {r.get('stop_reason')} |")
    lines += ["", "Other result files in docs/bench/:", ""]
    bench = OUT_JSON.parent
    if (bench / "store_ingest.json").exists():
        d = json.loads((bench / "store_ingest.json").read_text())
        w, lite, pg = d["workload"], d["sqlite"], d["postgresql"]
        lines.append(f"- `store_ingest.json` (`bench/store_ingest.py`): {w['runs']:,} runs with "
                     f"{w['node_calls_per_run']} node calls each ({w['batched_rows']:,} rows) through the batched "
                     "writer from "
                     f"{w['producer_threads']} threads: SQLite {lite['batched_rows_per_s']:,} rows/s, PostgreSQL "
                     f"{pg['batched_rows_per_s']:,} rows/s ({d['postgresql_vs_sqlite_batched']}x SQLite); one "
                     f"transaction per row: SQLite {lite['single_rows_per_s']:,}, PostgreSQL "
                     f"{pg['single_rows_per_s']:,} rows/s; {pg['settings']}; median of {w['repeats']} interleaved "
                     "repeats; load average "
                     f"{d['load_average_1m']} on {d['cpus']} cores (goal >= {d['goal_batched_rows_per_s']:,} rows/s "
                     "batched).")
    if (bench / "record_overhead.json").exists():
        d = json.loads((bench / "record_overhead.json").read_text())
        lines.append(f"- `record_overhead.json` (`bench/record_overhead.py`): {d['nodes']}-node graph, "
                     f"~{d['work_per_node_ms']} ms CPU per node, {d['runs']} runs: median {d['plain_median_ms']} ms "
                     f"plain vs {d['recorded_median_ms']} ms recorded, ratio {d['ratio']} (goal <= {d['goal']}); "
                     f"{d['ratio_without_store_writes']} without store writes; load average {d['load_average_1m']} "
                     f"on {d['cpus']} cores.")
    if (bench / "local_server.json").exists():
        d = json.loads((bench / "local_server.json").read_text())
        rows = "; ".join(f"{r['setting']}: {r['tokens_per_s']:.1f} tok/s, {r['ratio_to_concurrency_1']:.2f}x its "
                         f"concurrency 1, {r.get('mean_rows_per_step', 1.0):.1f} rows/step" for r in d["rows"])
        lines.append(f"- `local_server.json` (`bench/local_server.py`): {d['requests']} greedy requests of "
                     f"{d['max_tokens']} tokens to {d['model']}: {rows}; load average "
                     f"{d['load_average_1min_at_end']:.1f} on {d['cpu_count']} cores (goal >= 4x at concurrency 8).")
    if (bench / "lrf_throughput.json").exists():
        lines.append(lrf_throughput_line(json.loads((bench / "lrf_throughput.json").read_text())))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=200, help="system runs each optimizer may spend")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--max-seconds", type=float, default=480.0, help="optimas-lg's own time cap")
    parser.add_argument("--mipro-trials", type=int, default=9)
    parser.add_argument("--helper-tokens", type=int, default=160,
                        help="max_tokens of the proposer / reflection LM (the same SmolLM2)")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from compare.json")
    parser.add_argument("--markdown", action="store_true", help="print the tables of docs/benchmarks.md")
    args = parser.parse_args()
    if args.plot_only or args.markdown:
        data = load_results()
        if args.plot_only:
            plot(data)
            print_table(data)
        if args.markdown:
            print(markdown(data))
        return

    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")

    from optimas_lg.llm import start_server

    counting = count_server_tokens()
    data = load_results()
    data.update(budget=args.budget, model=BASE_MODEL, cpus=os.cpu_count(), python=platform.python_version(),
                server_side_token_count=counting)
    load_start, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M:%S")
    handle = start_server(models=[BASE_MODEL])
    os.environ["OPTIMAS_LG_LLM_URL"] = handle.base_url  # optimas-lg's chat_model uses this very server
    try:
        ctx: dict[str, Any] = {"train": load_split("train"), "val": load_split("val"), "test": load_split("test"),
                               "budget": args.budget, "max_seconds": args.max_seconds,
                               "mipro_trials": args.mipro_trials, "helper_tokens": args.helper_tokens}
        if {"mipro", "mipro_lenient", "gepa"} & set(methods):
            import dspy

            parts = dspy_parts(handle.base_url)
            ctx["dspy_parts"] = parts
            ctx["lm"] = parts["task_lm"]()
            dspy.configure(lm=ctx["lm"], adapter=parts["adapter"])
            ctx.update(dtrain=parts["to_dspy"](ctx["train"]), dval=parts["to_dspy"](ctx["val"]),
                       dtest=parts["to_dspy"](ctx["test"]))
            data["dspy_version"] = dspy.__version__
        for name in methods:
            print(f"== {name} (load {load1()})", flush=True)
            row = run_method(name, ctx)
            data["methods"][name] = row
            if name == "optimas" and "error" not in row:
                data.setdefault("optimas_runs", []).append({k: v for k, v in row.items() if k != "test_scores"})
            data["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
            OUT_JSON.write_text(json.dumps(data, indent=2, default=str) + "\n")
            summary = {k: row.get(k) for k in ("test_f1", "val_f1", "optimize_runs", "seconds", "error")}
            print(f"   {summary} tokens={row.get('tokens', {}).get('total')}", flush=True)
    finally:
        handle.stop()
    data.setdefault("invocations", []).append({
        "methods": methods, "started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()]})
    OUT_JSON.write_text(json.dumps(data, indent=2, default=str) + "\n")
    plot(data)
    print_table(data)


if __name__ == "__main__":
    main()
