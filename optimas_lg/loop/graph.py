"""The optimizer loop as a LangGraph ``StateGraph`` (resumable with a checkpointer,
inspectable in LangGraph Studio).

    start → baseline → collect → pairs → train_lrf → pick_node → propose → validate
          ↑                                                  ↓ (accepted)   ↓ (rejected / no change)
          └────────────── check_stop ←──── adapt ←───────────┘──────────────┘
    check_stop → pick_node | final → END

The state holds ids, scores and the history only (JSON); the user's system, data and
the local reward model live in a ``Workspace`` rebuilt from the job when resuming.
"""

from __future__ import annotations

import operator
import random
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg.errors import OptimasError
from optimas_lg.graph.knobs import defaults
from optimas_lg.loop.budget import Spent
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.gate import paired_gate, validate_knobwise
from optimas_lg.loop.workspace import Workspace
from optimas_lg.lrf import ranking_accuracy
from optimas_lg.lrf.collect import PairConfig, stored_pairs
from optimas_lg.proposers import ProposalContext
from optimas_lg.store import Store


class LoopState(TypedDict, total=False):
    """What Studio shows and the checkpointer keeps between steps."""

    job_id: int
    iteration: int
    initial_config_id: int
    current_config_id: int
    current_knobs: dict[str, Any]
    current_val: float
    current_val_scores: list[float | None]
    baseline_val: float
    test_before: float | None
    test_after: float | None
    lrf_path: str | None
    node: str | None
    proposal: dict[str, Any] | None
    decision: dict[str, Any] | None
    rounds_without_gain: int
    spent: dict[str, Any]
    history: Annotated[list[dict[str, Any]], operator.add]
    stop_reason: str | None
    report: str | None


@dataclass
class LoopContext:
    """Run-time context of the loop. From Python, ``workspace`` carries live objects;
    from Studio or the CLI, the spec fields name them and a workspace is built."""

    target: str = "examples/offline_qa/agent.py:builder"
    metric: str = "examples/offline_qa/metric.py:metric"
    train: str = "examples/offline_qa/data/train.jsonl"
    val: str | None = "examples/offline_qa/data/val.jsonl"
    test: str | None = "examples/offline_qa/data/test.jsonl"
    inputs: list[str] | None = field(default_factory=lambda: ["question"])
    labels: list[str] | None = field(default_factory=lambda: ["answer", "hops", "support"])
    store: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    workspace: Any = None


_WORKSPACES: dict[int, Workspace] = {}


def register_workspace(ws: Workspace) -> None:
    """Make a workspace available to the loop's nodes by job id."""
    _WORKSPACES[ws.job_id] = ws


def workspace_for(job_id: int) -> Workspace:
    """The live workspace of a job started or resumed in this process."""
    ws = _WORKSPACES.get(job_id)
    if ws is None:
        raise OptimasError(f"job {job_id} has no workspace in this process; run or resume it through "
                           "optimas_lg.optimize / optimas-lg optimize")
    return ws


def _workspace(state: LoopState, runtime: Runtime[LoopContext]) -> Workspace:
    ws = workspace_for(state["job_id"])
    if state.get("lrf_path") and ws.lrf_path != state["lrf_path"]:
        ws.load_lrf(state["lrf_path"], stored_pairs(ws.store, ws.job_id))
    return ws


def _timed(fn):
    """Give a node its workspace, and refresh ``spent`` (system runs and tokens from the
    store, wall time summed over steps) so the budget holds across resumes."""

    def wrapper(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
        start = time.perf_counter()
        ws = _workspace(state, runtime)
        update = fn(state, runtime, ws)
        before = state.get("spent") or {}
        runs, tokens = ws.spent()
        iterations = (update.get("spent") or before).get("iterations", 0)
        update["spent"] = Spent(iterations, runs, tokens,
                                before.get("seconds", 0.0) + time.perf_counter() - start).to_dict()
        return update

    wrapper.__name__ = fn.__name__  # not functools.wraps: LangGraph must see (state, runtime) only
    wrapper.__doc__ = fn.__doc__
    return wrapper


# -- nodes ------------------------------------------------------------------------
def start(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Open the job (from Studio: build the workspace from the context's spec)."""
    if "job_id" in state and state["job_id"] in _WORKSPACES:
        return {"job_id": state["job_id"]}
    ctx = runtime.context or LoopContext()
    spec = JobSpec(ctx.target, ctx.metric, ctx.train, ctx.val, ctx.test, ctx.inputs, ctx.labels)
    config = OptimizeConfig.from_dict(ctx.settings)
    store = Store(ctx.store)
    job_id = state.get("job_id") or spec.create_job(store, config)
    register_workspace(Workspace.from_spec(spec, config, store, job_id))
    return {"job_id": job_id}


def baseline(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Score the initial config on validation (and test) data."""
    knobs = defaults(ws.system.knobs)
    config_id = ws.store.add_config(knobs, ws.system.name, note="initial")
    val = ws.evaluate(ws.valset, knobs, config_id)
    ws.store.add_event(ws.job_id, "evaluation", val.payload("val", "baseline", config_id, ws.config.val_repeats), iteration=0)
    test_before = None
    if ws.testset:
        test = ws.evaluate(ws.testset, knobs, config_id)
        ws.store.add_event(ws.job_id, "evaluation", test.payload("test", "baseline", config_id, ws.config.val_repeats), iteration=0)
        test_before = test.mean
    return {"iteration": 0, "initial_config_id": config_id, "current_config_id": config_id, "current_knobs": knobs,
            "current_val": val.mean, "current_val_scores": val.scores, "baseline_val": val.mean,
            "test_before": test_before, "rounds_without_gain": 0, "lrf_path": None}


def collect(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Run the training examples under the current config; the recorder keeps every node call."""
    summary = ws.run(ws.trainset, state["current_knobs"], state["current_config_id"], purpose="collect")
    return {"history": [{"event": "collect", "runs": len(summary.results), "failed": summary.n_failed,
                         "mean": summary.mean}]}


def pairs(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Preference pairs for every optimizable node from Monte-Carlo rollouts, within what
    is left of ``budget.max_system_runs``."""
    max_runs = ws.remaining_runs()
    _, stats = ws.collect_pairs(state["current_knobs"], ws.config.pairs, "initial", max_runs=max_runs)
    return {"history": [{"event": "pairs", "pairs": stats.pairs, "candidates": stats.candidates,
                         "llm_candidates": stats.llm_candidates, "failed_candidates": stats.failed_candidates,
                         "skipped_calls": stats.skipped_calls, "system_runs": stats.system_runs,
                         "max_runs": max_runs}]}


def train_lrf(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Train the shared-backbone LRF; report ranking accuracy on pairs held out by example."""
    all_pairs = stored_pairs(ws.store, ws.job_id)
    if not all_pairs:
        failed = sum(h["failed"] for h in state.get("history", []) if h.get("event") == "collect")
        skipped = sum(sum((h.get("skipped_calls") or {}).values())
                      for h in state.get("history", []) if h.get("event") == "pairs")
        if skipped:
            raise OptimasError(
                f"job {ws.job_id}: no preference pairs to train the local rewards on: the system-run budget "
                f"(budget.max_system_runs = {ws.config.budget.max_system_runs}) was spent before pair collection "
                f"could score candidates for {skipped} recorded calls; raise the budget or lower "
                "pairs.samples / pairs.llm_samples / pairs.calls_per_node.")
        raise OptimasError(
            f"job {ws.job_id}: no preference pairs to train the local rewards on ({failed} of "
            f"{len(ws.trainset)} training runs failed; candidates of one input that all score the same "
            "give no pair). Check the failed runs with `optimas-lg store info` and the runs table, "
            "or give more training examples / samples per call.")
    report, _, _ = ws.train_lrf(all_pairs, "initial")
    return {"lrf_path": ws.lrf_path,
            "history": [{"event": "lrf", "accuracy": report.eval_accuracy or {}, "pairs": len(all_pairs)}]}


def pick_node(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Choose the node to improve this round (uniformly at random, seeded)."""
    iteration = state["iteration"] + 1
    rng = random.Random(f"{ws.config.seed}:pick:{iteration}")
    return {"iteration": iteration, "node": rng.choice(ws.tunable_nodes()),
            "proposal": None, "decision": None, "spent": {**(state.get("spent") or {}), "iterations": iteration}}


def propose(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Improve the picked node's knobs against its LRF, each with the optimizer for its
    kind (cheap kinds first, each starting from the values the previous ones chose)."""
    node, iteration = state["node"], state["iteration"]
    calls, _ = ws.node_calls(node)
    reads = sorted({k for c in calls for k in (c.reads or [])})
    ctx = ProposalContext(
        node=node, knobs=ws.tunable_knobs(node), current=dict(state["current_knobs"]),
        inputs=[ws.decode(c) for c in calls], score=ws.lrf_scorer(node, reads), run_node=ws.run_node(node),
        reads=reads, writes=sorted({k for c in calls if isinstance(c.output, dict) for k in c.output}),
        doc=ws.system.graph.nodes[node].doc or "", llm_prompts=ws.llm_prompts(calls),
        global_check=ws.global_check(state["current_config_id"]),
        store=ws.store, job_id=ws.job_id, iteration=iteration, seed=ws.config.seed)
    first = None
    for knob in ctx.knobs:
        proposal = ws.proposers[knob.kind].propose(ctx, knob)
        first = first or proposal
        ctx.current = proposal.values
    changed = [k.name for k in ctx.knobs if ctx.current[k.name] != state["current_knobs"][k.name]]
    return {"proposal": {"node": node, "knob": ", ".join(changed) or ", ".join(k.name for k in ctx.knobs),
                         "previous": {k: state["current_knobs"][k] for k in changed},
                         "value": {k: ctx.current[k] for k in changed}, "values": ctx.current,
                         "current_score": first.current_score, "proposed_score": proposal.proposed_score}}


def validate(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Paired comparison on the validation set, knob by knob when the round changed
    several (``gate.validate_knobwise``); record the decision with its evidence."""
    prop, iteration = state["proposal"], state["iteration"]
    if not prop["value"]:
        decision = {**_decision_base(prop, len(ws.valset), state["current_val"]), "accepted": False,
                    "val_proposed": state["current_val"], "mean_diff": 0.0, "stderr": 0.0,
                    "rule": "no change proposed", "config_id": None, "reason": "the LRF preferred the current value"}
        ws.store.add_event(ws.job_id, "decision", decision, node=prop["node"], iteration=iteration)
        return {"decision": decision}
    tried: list[tuple[int, dict[str, Any], list[float | None]]] = []

    def evaluate(values: dict[str, Any], knobs: tuple[str, ...]) -> list[float | None]:
        config_id = ws.store.add_config(values, ws.system.name, parent_id=state["current_config_id"],
                                        note=f"iteration {iteration}: {', '.join(knobs)}")
        val = ws.evaluate(ws.valset, values, config_id)
        ws.store.add_event(ws.job_id, "evaluation", val.payload("val", "proposal", config_id, ws.config.val_repeats),
                           node=prop["node"], iteration=iteration)
        tried.append((config_id, values, val.scores))
        return val.scores

    values, scores, steps = validate_knobwise(state["current_knobs"], state["current_val_scores"], prop["value"],
                                              evaluate, ws.config.gate)
    accepted = any(step.accepted for step in steps)
    if accepted:
        kept = [k for k in prop["value"] if values[k] != state["current_knobs"][k]]
        prop = {**prop, "knob": ", ".join(kept), "previous": {k: prop["previous"][k] for k in kept},
                "value": {k: values[k] for k in kept}, "values": values}
        config_id = next(cid for cid, tried_values, _ in tried if tried_values == values)
    else:
        config_id, _, scores = tried[-1]
    gate = paired_gate(state["current_val_scores"], scores, ws.config.gate)
    reason = gate.reason if len(steps) == 1 else "; ".join(
        f"{', '.join(step.knobs)}: {step.decision.reason} ({'kept' if step.accepted else 'not kept'})" for step in steps)
    decision = {**_decision_base(prop, len(ws.valset), state["current_val"]), "accepted": accepted,
                "val_current": gate.mean_current, "val_proposed": gate.mean_proposed, "mean_diff": gate.mean_diff,
                "stderr": gate.stderr, "rule": gate.rule, "config_id": config_id, "reason": reason,
                "steps": [{"knobs": list(step.knobs), "accepted": step.accepted, "gain": step.decision.mean_diff,
                           "stderr": step.decision.stderr} for step in steps],
                "scores": scores}
    ws.store.add_event(ws.job_id, "decision", {k: v for k, v in decision.items() if k != "scores"},
                       node=prop["node"], iteration=iteration)
    return {"decision": decision, "proposal": prop}


def _decision_base(prop: dict[str, Any], n: int, val_current: float) -> dict[str, Any]:
    single = len(prop["value"]) == 1  # one knob changed: log its plain values
    return {"knob": prop["knob"], "n": n,
            "old": next(iter(prop["previous"].values())) if single else prop["previous"],
            "new": next(iter(prop["value"].values())) if single else prop["value"],
            "val_current": val_current}


def route_decision(state: LoopState) -> Literal["adapt", "check_stop"]:
    return "adapt" if state["decision"]["accepted"] else "check_stop"


def adapt(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Accept the change, then keep the LRF aligned: fresh trajectories on a mini-batch,
    fresh pairs, a few steps mixed with the replay buffer."""
    decision, prop = state["decision"], state["proposal"]
    knobs, config_id = prop["values"], decision["config_id"]
    batch = ws.sample_train(ws.config.adapt_examples, f"adapt:{state['iteration']}")
    remaining = ws.remaining_runs()
    if remaining is not None:  # the budget's system runs bound the fresh runs and their rollouts
        batch = batch[:remaining]
    fresh = []
    if batch:
        ws.run(batch, knobs, config_id, purpose="collect")
        fresh_config = PairConfig(**{**ws.config.pairs.__dict__, "calls_per_node": None})
        fresh, _ = ws.collect_pairs(knobs, fresh_config, f"adapt{state['iteration']}", [e.key for e in batch],
                                    max_runs=ws.remaining_runs())
    update: dict[str, Any] = {
        "current_knobs": knobs, "current_config_id": config_id, "current_val": decision["val_proposed"],
        "current_val_scores": decision["scores"], "rounds_without_gain": 0,
        "history": [{"event": "accepted", "iteration": state["iteration"], "node": prop["node"],
                     "knob": prop["knob"], "val": decision["val_proposed"]}]}
    if not fresh:
        return update
    before = ranking_accuracy(ws.lrf, fresh)
    report = ws.trainer.adapt(fresh)
    path = ws.save_lrf(f"adapt{state['iteration']}")
    ckpt = ws.store.add_lrf_checkpoint(path, ws.lrf.config.resolved_backbone(), sorted(ws.lrf.nodes),
                                       {"fresh_accuracy_before": before}, job_id=ws.job_id)
    ws.store.add_event(ws.job_id, "lrf", {"stage": "adapt", "checkpoint_id": ckpt, "n_pairs": len(fresh),
                                          "accuracy": before, "train_accuracy": report.train_accuracy},
                       iteration=state["iteration"])
    return {**update, "lrf_path": path}


def check_stop(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Stop when a budget limit is reached; otherwise go round again."""
    accepted = bool(state.get("decision") and state["decision"]["accepted"])
    rounds = 0 if accepted else state.get("rounds_without_gain", 0) + 1
    spent = Spent(**(state.get("spent") or {}))
    reason = ws.config.budget.stop_reason(spent, rounds)
    ws.store.add_event(ws.job_id, "budget", {**spent.to_dict()}, iteration=state["iteration"])
    if not accepted:
        prop = state["proposal"]
        return {"rounds_without_gain": rounds, "stop_reason": reason,
                "history": [{"event": "rejected", "iteration": state["iteration"], "node": prop["node"],
                             "knob": prop["knob"], "reason": state["decision"]["reason"]}]}
    return {"rounds_without_gain": rounds, "stop_reason": reason}


def route_stop(state: LoopState) -> Literal["pick_node", "final"]:
    return "final" if state.get("stop_reason") else "pick_node"


def final(state: LoopState, runtime: Runtime[LoopContext], ws: Workspace) -> dict[str, Any]:
    """Score the best config on the test set and write the report."""
    test_after = None
    if ws.testset:
        test = ws.evaluate(ws.testset, state["current_knobs"], state["current_config_id"])
        ws.store.add_event(ws.job_id, "evaluation", test.payload("test", "final", state["current_config_id"],
                                                                 ws.config.val_repeats), iteration=state["iteration"])
        test_after = test.mean
    ws.store.add_event(ws.job_id, "final", {
        "initial_config_id": state["initial_config_id"], "best_config_id": state["current_config_id"],
        "val_before": state["baseline_val"], "val_after": state["current_val"],
        "test_before": state.get("test_before"), "test_after": test_after, "stop_reason": state.get("stop_reason")})
    ws.store.finish_job(ws.job_id, "done")
    report = None
    if ws.config.write_report:
        from optimas_lg.home import subdir
        from optimas_lg.loop.report import write_report

        report = str(write_report(ws.store, ws.job_id, subdir("reports") / str(ws.job_id)))
    return {"test_after": test_after, "report": report}


def build_optimizer_graph() -> StateGraph:
    """The optimizer loop as an uncompiled ``StateGraph`` (compile it with a checkpointer
    to make it resumable; ``langgraph dev`` supplies its own)."""
    builder = StateGraph(LoopState, context_schema=LoopContext)
    builder.add_node("start", start)
    for fn in (baseline, collect, pairs, train_lrf, pick_node, propose, validate, adapt, check_stop, final):
        builder.add_node(fn.__name__, _timed(fn))
    builder.add_edge(START, "start")
    builder.add_edge("start", "baseline")
    builder.add_edge("baseline", "collect")
    builder.add_edge("collect", "pairs")
    builder.add_edge("pairs", "train_lrf")
    builder.add_edge("train_lrf", "pick_node")
    builder.add_edge("pick_node", "propose")
    builder.add_edge("propose", "validate")
    builder.add_conditional_edges("validate", route_decision)
    builder.add_edge("adapt", "check_stop")
    builder.add_conditional_edges("check_stop", route_stop)
    builder.add_edge("final", END)
    return builder
