"""The optimizer loop's nodes. Each takes the checkpointed ``LoopState`` and the run's
``LoopContext``, gets the live job from the context, and returns a state update with
the loop's records as JSON (``optimas_lg.loop.records``)."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any, Literal

from langgraph.runtime import Runtime

from optimas_lg.data import Example
from optimas_lg.errors import OptimasError, error_line
from optimas_lg.graph.knobs import KnobSpec
from optimas_lg.loop.budget import Spent, round_share, system_round_share
from optimas_lg.loop.gate import check_score, paired_gate, validate_knobwise
from optimas_lg.loop.pair_plan import PairPlan, plan_pairs
from optimas_lg.loop.passes import next_node, searched_before_a_change, unvisited_in_pass
from optimas_lg.loop.records import (
    Collected,
    Decision,
    Evaluation,
    Final,
    GateStep,
    LRFEvent,
    NodePicked,
    NodeProposal,
    NodesSkipped,
    PairsCollected,
    changes_between,
    entries,
    entry,
)
from optimas_lg.loop.state import LoopContext, LoopState
from optimas_lg.loop.system_round import SYSTEM_ROUND_REASON, affords_system_round, system_search
from optimas_lg.loop.workspace import Workspace
from optimas_lg.lrf.collect import PairStats, stored_pairs
from optimas_lg.lrf.trust import LRFTrust
from optimas_lg.proposers import ALL_NODES, GlobalCheckFn, Proposal, ProposalContext, RecordedCall, proposer_groups
from optimas_lg.store import Store, queries
from optimas_lg.store.lifecycle import job_guard

Node = Callable[[LoopState, Runtime[LoopContext]], dict[str, Any]]


def accounted(fn: Node) -> Node:
    """Refresh ``spent`` after a node (the step's own system runs and tokens on top of the
    checkpointed totals, wall time summed over steps), so the budget holds across resumes;
    a node that raises marks the job failed or interrupted (a run from Studio has no other
    place to record it).

    A step killed before its checkpoint is redone on resume: its first attempt's runs are
    not counted (``Workspace.begin_step``) and its events are dropped first, so the redone
    step records once.
    """

    def wrapper(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
        start = time.perf_counter()
        ws = runtime.context.job(state)
        before = Spent.from_json(state.get("spent") or {})
        if "last_event_id" in state:  # absent only in checkpoints of older versions
            queries.delete_events_after(ws.store, state["job_id"], state["last_event_id"])
        ws.begin_step(before)
        with job_guard(ws.store, state["job_id"]):
            update = fn(state, runtime)
        update["last_event_id"] = queries.last_event_id(ws.store, state["job_id"])
        iterations = Spent.from_json(update.get("spent") or {}).iterations or before.iterations
        spent = dataclasses.replace(ws.spent(), iterations=iterations,
                                    seconds=before.seconds + time.perf_counter() - start)
        update["spent"] = spent.to_json()
        return update

    wrapper.__name__ = fn.__name__  # not functools.wraps: LangGraph must see (state, runtime) only
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _record(ws: Workspace, evaluation: Evaluation, iteration: int, node: str | None = None) -> Evaluation:
    """Store an evaluation; one whose every run failed stops the job, except a proposal's
    (the gate rejects it as a change that breaks runs)."""
    ws.store.add_event(ws.job_id, evaluation.kind, evaluation.to_json(), node=node, iteration=iteration)
    if evaluation.all_failed and evaluation.label != "proposal":
        first = error_line(evaluation.first_error or "?")
        raise OptimasError(f"job {ws.job_id}: every {evaluation.split} run ({evaluation.label}, config "
                           f"{evaluation.config_id}) failed; the first error: {first}")
    return evaluation


# -- nodes ------------------------------------------------------------------------
def start(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Open the job: from Python or the CLI it exists already; from Studio it is created
    here from the context's spec and settings."""
    ctx = runtime.context
    if "job_id" not in state:  # a new job from Studio: everything loads before the job exists
        spec, config = ctx.spec(), ctx.options()
        store = Store(ctx.store)
        ws = Workspace.from_spec(spec, config, store)
        ws.check_gate_can_decide()
        ws.bind(spec.create_job(store, config))
        ctx.workspace = ws
        return {"job_id": ws.job_id, "last_event_id": 0}
    ctx.job(state)
    return {"job_id": state["job_id"], "last_event_id": 0}  # the loop starts (or starts over) with no events


def baseline(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Score the initial config (the defaults, or the warm start) on validation (and test) data."""
    ws = runtime.context.job(state)
    knobs = ws.initial_knobs()
    config_id = ws.config_version(knobs, "initial")
    val = _record(ws, ws.evaluate("val", "baseline", knobs, config_id), iteration=0)
    test_before = _record(ws, ws.evaluate("test", "baseline", knobs, config_id), iteration=0).mean \
        if ws.testset else None
    return {"iteration": 0, "initial_config_id": config_id, "current_config_id": config_id, "current_knobs": knobs,
            "current_val": val.mean, "current_val_scores": val.scores, "baseline_val": val.mean,
            "baseline_error": val.first_error and error_line(val.first_error),
            "test_before": test_before, "rounds_without_gain": 0, "lrf_path": None}


def collect(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Run the training examples under the current config; the recorder keeps every node
    call, each of which a round must be able to run its node on again."""
    ws = runtime.context.job(state)
    summary = ws.run(ws.trainset, state["current_knobs"], state["current_config_id"], purpose="collect")
    first = next((error_line(r.error) for r in summary.results if r.error), None)
    if summary.n_failed == summary.n_runs:
        raise OptimasError(f"job {ws.job_id}: all {summary.n_runs} training runs failed; the first error: "
                           f"{first or '?'}")
    ws.check_replayable()
    return {"history": [entry(Collected(summary.n_runs, summary.n_failed, summary.mean, first))]}


def pairs(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Preference pairs for every node whose proposers rank with the LRF, from Monte-Carlo
    rollouts, within ``pairs_share`` of what is left of ``budget.max_system_runs`` (none
    when the ranking uses no LRF); under ``pairs_plan_accuracy`` only for the nodes whose
    LRF could earn trust on them (``loop.pair_plan``)."""
    ws = runtime.context.job(state)
    if not ws.config.uses_lrf:
        return {}
    remaining = ws.remaining_runs()
    max_runs = None if remaining is None else int(remaining * ws.config.pairs_share)
    using = ws.nodes_using_lrf(state["current_knobs"])
    plan = PairPlan(using, {})
    if ws.config.pairs_plan_accuracy is not None:
        plan = plan_pairs(ws.pair_costs(using, ws.config.pairs), max_runs, ws.config.pairs_plan_accuracy,
                          ws.config.lrf_eval_fraction)
    _, stats = ws.collect_pairs(state["current_knobs"], ws.config.pairs, "initial", nodes=plan.nodes,
                                max_runs=max_runs)
    return {"history": [entry(_pairs_record(ws, stats, using, max_runs, plan.left_out))]}


def _pairs_record(ws: Workspace, stats: PairStats, using: list[str], max_runs: int | None,
                  left_out: dict[str, str] | None = None) -> PairsCollected:
    return PairsCollected(stats.pairs, stats.candidates, stats.llm_candidates, stats.failed_candidates,
                          stats.skipped_calls, stats.system_runs, max_runs,
                          [n for n in ws.reached_nodes() if n not in using], stats.headroom(), left_out or {})


def train_lrf(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Train the shared-backbone LRF; report ranking accuracy on pairs held out by example
    (skipped when the ranking uses no LRF, or there is no pair: no node's proposers rank with it,
    every candidate tied, or the budget left none)."""
    ws = runtime.context.job(state)
    if not ws.config.uses_lrf:
        return {}
    all_pairs = stored_pairs(ws.store, ws.job_id, types=ws.system.types)
    if not all_pairs:  # proposers that rank with the LRF fall back on the global check
        return {}
    event, _ = ws.rewards.train(all_pairs, "initial")
    return {"lrf_path": ws.rewards.path, "history": [entry(event)]}


def pick_node(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Choose the node to improve this round among the tunable nodes that ran under the
    current config and have not had a round in this pass (``unvisited_in_pass``), by
    ``node_order`` (``passes.next_node``: by default the largest headroom the pairs
    measured, seeded draws between equals). A node an accepted change routes around is
    dead; one never reached has no inputs to work on. The first round is the system round
    (``*``: every reached node's choice and numeric knobs at once, ``loop.system_round``)
    when it is on and affordable."""
    ws = runtime.context.job(state)
    spent = Spent.from_json(state.get("spent") or {})
    reason = _stop_reason(ws, spent, state.get("rounds_without_gain", 0), state.get("slowest_round", 0.0))
    if reason is not None:  # the steps before the first round may have used up a limit
        ws.store.add_event(ws.job_id, spent.kind, spent.to_json(), iteration=state["iteration"])
        return {"stop_reason": reason}
    iteration = state["iteration"] + 1
    reached = ws.reached_nodes(state["current_config_id"])
    if not reached:
        raise OptimasError(f"job {ws.job_id}: no tunable node ({', '.join(ws.tunable_nodes())}) has a recorded "
                           "call in the training runs, so there is nothing to optimize on")
    rng = random.Random(f"{ws.config.seed}:pick:{iteration}")
    headroom: dict[str, float] = {}
    for collected in entries(state.get("history"), PairsCollected):  # each node's latest measurement
        headroom.update(collected.headroom)
    decisions = [(d.node, d.accepted) for d in entries(state.get("history"), Decision)]
    if not decisions and _starts_with_system_round(ws, state, reached, iteration):
        node, why = ALL_NODES, SYSTEM_ROUND_REASON
    else:
        unvisited = unvisited_in_pass([node for node, _ in decisions], reached)
        node, why = next_node(unvisited, headroom, ws.config.node_order, rng, searched_before_a_change(decisions))
    picked = NodePicked(iteration, node, why)
    ws.store.add_event(ws.job_id, picked.kind, picked.to_json(), node=node, iteration=iteration)
    update = {"iteration": iteration, "node": node, "proposal": None, "decision": None,
              "spent": {**(state.get("spent") or {}), "iterations": iteration}, "round_started": spent.seconds,
              "history": [entry(picked)]}
    unreached = [n for n in ws.tunable_nodes() if n not in reached]
    if unreached:
        skipped = NodesSkipped(iteration, unreached)
        ws.store.add_event(ws.job_id, skipped.kind, skipped.to_json(), iteration=iteration)
        update["history"].append(entry(skipped))
    return update


def _starts_with_system_round(ws: Workspace, state: LoopState, reached: list[str], iteration: int) -> bool:
    """Whether the first round is the system round: it is on, some knob of the ``reached``
    nodes qualifies, and the round's share pays for two trials (``loop.system_round``)."""
    return (ws.config.system_round and system_search(_knobs_of(ws, reached), ws.proposers) is not None
            and affords_system_round(_round_runs(ws, state, iteration, system=True), _global_runs(ws)))


def _knobs_of(ws: Workspace, nodes: list[str]) -> list[KnobSpec]:
    return [k for node in nodes for k in ws.tunable_knobs(node)]


def _global_runs(ws: Workspace) -> int:
    """System runs one global check spends (``_global_check``)."""
    return min(ws.config.global_examples, len(ws.trainset)) * max(1, ws.config.val_repeats)


def _global_check(ws: Workspace, state: LoopState) -> tuple[GlobalCheckFn, int]:
    """The round's global check (the metric's mean over a seeded training mini-batch under
    an assignment) and the system runs one check spends."""
    check_batch = ws.sample_train(ws.config.global_examples, "global-check")
    current: list[Evaluation] = []  # the current config's latest check, kept to compare failing candidates to

    def check(knobs: dict[str, Any]) -> Evaluation:
        config_id = ws.config_version(knobs, f"iteration {state['iteration']}: global check",
                                      state["current_config_id"])
        return ws.evaluate_examples(check_batch, "train", "global-check", knobs, config_id)

    def global_check(knobs: dict[str, Any]) -> float:
        evaluation = check(knobs)
        if knobs == state["current_knobs"]:  # searches score the current values first: keep them
            current[:] = [evaluation]
            return evaluation.mean
        if None not in evaluation.scores:
            return evaluation.mean
        if not current:  # a search that did not start from the current values: run them once
            current.append(check(dict(state["current_knobs"])))
        return check_score(current[0].scores, evaluation.scores)

    return global_check, _global_runs(ws)


def _proposal_context(ws: Workspace, node: str, state: LoopState) -> ProposalContext:
    """What the proposers of ``node`` may use: its recorded inputs, the node run alone,
    its LRF, and a few full-system runs as the global check."""
    calls, run_keys = ws.node_calls(node, [e.key for e in ws.trainset])
    reads = sorted({k for c in calls for k in (c.reads or [])})
    scores = queries.run_scores(ws.store, list(run_keys))
    return ProposalContext(
        node=node, knobs=ws.tunable_knobs(node), inputs=[ws.decode(c.inputs) for c in calls],
        score=ws.scorer(node, reads, state["iteration"]), run_node=lambda st, knobs: ws.run_node(node, st, knobs),
        reads=reads, writes=sorted({k for c in calls if isinstance(c.output, dict) for k in c.output}),
        doc=ws.system.graph.nodes[node].doc or "", llm_prompts=ws.llm_prompts(calls),
        value_cost=_value_cost(ws) if ws.config.objective.lambda_cost > 0 else None,
        calls=[RecordedCall(c.id, c.run_id, run_keys[c.run_id], scores.get(c.run_id), c.inputs, c.output)
               for c in calls],
        trust=_lrf_trust(state, node) if ws.config.uses_lrf else None, global_only=ws.config.ranking == "global",
        **_round_context(ws, state))


def _system_context(ws: Workspace, state: LoopState, knobs: list[KnobSpec]) -> ProposalContext:
    """What the system round's search may use: the global check alone (``loop.system_round``)."""
    def no_node(*_: Any) -> Any:
        raise OptimasError("the system round scores assignments on the global metric only")

    return ProposalContext(node=ALL_NODES, knobs=knobs, inputs=[], score=no_node, run_node=no_node,
                           **_round_context(ws, state, system=True))


def _round_context(ws: Workspace, state: LoopState, system: bool = False) -> dict[str, Any]:
    """The ``ProposalContext`` fields of the round rather than of a node: the values in force,
    the global check and the runs it may spend, what the gate already judged."""
    global_check, global_runs = _global_check(ws, state)
    return dict(current=dict(state["current_knobs"]), charge_tokens=ws.charge_proposer, global_check=global_check,
                global_runs=global_runs, runs_left=lambda: _round_runs(ws, state, state["iteration"], system),
                store=ws.store, job_id=ws.job_id, iteration=state["iteration"], seed=ws.config.seed,
                run_cost=ws.run_cost(), rejected=_rejected(state), judged=judged_changes(state))


def _rejected(state: LoopState) -> list[dict[str, Any]]:
    """The changes the gate rejected under the LRF in force (not to propose again)."""
    return [r["changes"] for r in state.get("rejected") or [] if r["lrf"] == state.get("lrf_path")]


def judged_changes(state: LoopState) -> list[dict[str, Any]]:
    """Every change the gate found no better so far: each rejected one, and the values each
    accepted change replaced (going back to them would undo a change the gate kept)."""
    judged = [r["changes"] for r in state.get("rejected") or []]
    judged += [{k: c.old for k, c in d.changes.items()} for d in entries(state.get("history"), Decision)
               if d.accepted and d.changes]
    return judged


def _lrf_trust(state: LoopState, node: str) -> LRFTrust:
    """How far ``node``'s LRF is trusted, by the latest LRF event that measured it (held-out
    pairs after training, fresh pairs after adapting); unmeasured, it is not trusted, and
    with no pair collected for the node, its head is untrained."""
    if not any(c.pairs.get(node) for c in entries(state.get("history"), PairsCollected)):
        return LRFTrust.untrained(node)
    for event in reversed(entries(state.get("history"), LRFEvent)):
        trust = event.trust(node)
        if trust is not None:
            return trust
    return LRFTrust.measure(node, None, 0, 0)


def _value_cost(ws: Workspace) -> Callable[[Any], float | None]:
    """A knob value's price when it names a priced model (prompt + completion USD per 1M tokens)."""
    def cost(value: Any) -> float | None:
        price = ws.prices.price(value) if isinstance(value, str) else None
        return None if price is None else sum(price)
    return cost


def propose(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Improve the picked node's knobs, each group with the proposer that serves it (cheap
    kinds first, each group starting from the values the previous ones chose; by default
    one joint search over the node's numeric and choice knobs). A knob the node does not
    read under the values in force (a code path an earlier change turned off) is skipped,
    and so is one whose proposer trains on the LRF (LoRA) when the node has none. A knob
    that only a change proposed earlier in the round turns off is searched under the
    values in force: the gate, which validates each search's change apart, may reject
    that change and keep this one.
    The system round (``*``) searches the reached nodes' choice and numeric knobs together
    on the global metric."""
    ws = runtime.context.job(state)
    node = state["node"] or ""
    proposals: list[Proposal] = []
    skipped: dict[str, str] = {}
    if node == ALL_NODES:
        found = system_search(_knobs_of(ws, ws.reached_nodes(state["current_config_id"])), ws.proposers)
        assert found is not None  # pick_node chose the system round because one exists
        system_proposer, system_knobs = found
        ctx = _system_context(ws, state, system_knobs)
        proposals += system_proposer.propose_all(ctx, system_knobs)
    else:
        ctx = _proposal_context(ws, node, state)
        in_force = dict(ctx.current)
        read_in_force = ws.knobs_read(node, ctx.inputs, in_force)
        for proposer, knobs in proposer_groups(ctx.knobs, ws.proposers):
            if proposer.trains_on_lrf and ctx.without_lrf:
                skipped.update({k.name: "no LRF: it trains on the node's LRF scores, and the node has none"
                                for k in knobs})
                continue
            read = read_in_force if ctx.current == in_force else ws.knobs_read(node, ctx.inputs, ctx.current)
            live = [k for k in knobs if read is None or k.name in read]
            # read under the values in force, not under a change proposed earlier in this round,
            # which the gate may yet reject: searched under the values in force
            switched_off = [k for k in knobs if k not in live and (read_in_force is None or k.name in read_in_force)]
            skipped.update({k.name: "dead: the node does not read it under the values in force"
                            for k in knobs if k not in live and k not in switched_off})
            proposals += proposer.propose_all(ctx, live)
            if switched_off:
                tentative, ctx.current = ctx.current, dict(in_force)
                proposals += proposer.propose_all(ctx, switched_off)
                ctx.current = {**tentative, **{k.name: ctx.current[k.name] for k in switched_off}}
    objective, first, last = round_scores(proposals, ctx)
    trust = list(dict.fromkeys(d for p in proposals if (d := p.details.get("trust_decision"))))
    record = NodeProposal(node, [k.name for k in ctx.knobs if k.name not in skipped],
                          changes_between(state["current_knobs"], ctx.current), ctx.current, first, last, skipped,
                          objective, "; ".join(trust) or None, [p.knob_names for p in proposals if p.changed])
    return {"proposal": record.to_json()}


def round_scores(proposals: list[Proposal], ctx: ProposalContext) -> tuple[str | None, float | None, float | None]:
    """The round's objective and the node's score before and after it: the first proposal's
    current score and the last one's proposed score, when every search scored by the same
    objective; all ``None`` when they did not, or when "LRF" scores come from no LRF at all
    (an untrained head or ``ranking="global"``: ties that say nothing)."""
    objectives = {p.details.get("objective", "lrf") for p in proposals}
    if len(objectives) != 1 or any(ctx.lrf_ties(p.details) for p in proposals):
        return None, None, None
    return objectives.pop(), proposals[0].current_score, proposals[-1].proposed_score


def validate(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Paired comparison on the validation set, knob by knob when the round changed
    several (``gate.validate_knobwise``); record the decision with its evidence."""
    ws = runtime.context.job(state)
    prop, iteration = NodeProposal.from_json(state["proposal"] or {}), state["iteration"]
    if not prop.changes:
        decision = Decision(prop.node, {}, len(ws.valset), False, state["current_val"], state["current_val"], 0.0,
                            0.0, "no change proposed", "the search kept the current values",
                            scores=state["current_val_scores"])
    elif not _can_validate(ws):  # no evidence can be bought: say so, and show no made-up val score
        decision = Decision(prop.node, prop.changes, 0, False, state["current_val"], state["current_val"], 0.0,
                            0.0, "not validated", "not validated for lack of system runs "
                            f"(budget.max_system_runs = {ws.config.budget.max_system_runs})")
    else:
        decision = _gate(ws, state, prop, iteration)
    ws.store.add_event(ws.job_id, decision.kind, decision.to_json(), node=prop.node, iteration=iteration)
    return {"decision": decision.to_json()}


def _gate(ws: Workspace, state: LoopState, prop: NodeProposal, iteration: int) -> Decision:
    current_scores = state["current_val_scores"]
    tried: list[tuple[int, dict[str, Any], dict[int, float | None]]] = []  # config id, values, index -> score
    parts: dict[int, list[tuple[list[int], Evaluation]]] = {}  # config id -> its validation, part by part
    unaffordable: list[tuple[str, ...]] = []

    def evaluate(values: dict[str, Any], knobs: tuple[str, ...], indices: list[int]) -> list[float | None]:
        starts = not tried or tried[-1][1] is not values  # both parts of a try get the same values object
        if starts and not _can_validate(ws):  # the budget cannot pay for it: no evidence, so no gain
            unaffordable.append(knobs)
            tried.append((state["current_config_id"], values, {i: current_scores[i] for i in indices}))
            return [current_scores[i] for i in indices]
        if starts:
            note = f"iteration {iteration}: {', '.join(knobs)}"
            tried.append((ws.config_version(values, note, state["current_config_id"]), values, {}))
        config_id, _, got = tried[-1]
        part = ws.evaluate_examples([ws.valset[i] for i in indices], "val", "proposal", values, config_id)
        parts.setdefault(config_id, []).append((indices, part))
        got.update(zip(indices, part.scores))
        return part.scores

    new_values = {k: c.new for k, c in prop.changes.items()}
    values, scores, steps = validate_knobwise(state["current_knobs"], current_scores, new_values, evaluate,
                                              ws.config.gate, prop.change_units(), ws.validation_order())
    for config_parts in parts.values():
        _record(ws, Evaluation.joined(config_parts), iteration, prop.node)
    accepted = any(step.accepted for step in steps)
    broken = None
    if accepted:
        config_id = next(cid for cid, tried_values, _ in tried if tried_values == values)
        broken = _breaks_limits(ws, Evaluation.joined(parts[config_id]) if config_id in parts else None)
        accepted = broken is None
    if accepted:
        changes = {k: c for k, c in prop.changes.items() if values[k] != state["current_knobs"][k]}
        gate = paired_gate(current_scores, scores, ws.config.gate)
    else:  # the evidence: the last try, on the examples it ran
        changes, (config_id, _, got) = prop.changes, tried[-1]
        ran = sorted(got)
        scores = [got[i] for i in ran]
        gate = paired_gate([current_scores[i] for i in ran], scores, ws.config.gate)
    reason = steps[0].decision.reason if len(steps) == 1 else "; ".join(
        f"{', '.join(s.knobs)}: {s.decision.reason} ({'kept' if s.accepted else 'not kept'})" for s in steps)
    if broken:
        reason += f"; not accepted, over the objective's limits: {broken}"
    if unaffordable:
        reason += (f"; not validated for lack of system runs: {'; '.join(', '.join(k) for k in unaffordable)} "
                   f"(budget.max_system_runs = {ws.config.budget.max_system_runs})")
    return Decision(prop.node, changes, gate.n, accepted, gate.mean_current, gate.mean_proposed,
                    gate.mean_diff, gate.stderr, gate.rule, reason, config_id,
                    [GateStep(list(s.knobs), s.accepted, s.decision.mean_diff, s.decision.stderr) for s in steps],
                    scores)


def _breaks_limits(ws: Workspace, val: Evaluation | None) -> str | None:
    """How the config of validation ``val`` breaks the objective's per-run limits (``None``: it keeps them)."""
    if val is None or val.cost_per_run is None:
        return None
    return ws.config.objective.violation(val.cost_per_run, val.seconds_per_run or 0.0)


def _round_runs(ws: Workspace, state: LoopState, round_: int, system: bool = False) -> int | None:
    """What round ``round_`` may spend besides its validation (its proposers, or the LRF
    update before it): ``round_share`` of the runs left over the rounds still to come, one
    per reached node at most, or for the ``system`` round ``system_round_share`` (``None``:
    no limit on system runs)."""
    remaining = ws.remaining_runs()
    if remaining is None:
        return None
    rounds = min(len(ws.reached_nodes(state["current_config_id"])), ws.config.budget.max_iterations - round_ + 1)
    if system:
        return system_round_share(remaining, ws.validation_runs(), rounds, ws.config.system_round_share)
    return round_share(remaining, ws.validation_runs(), rounds)


def _can_validate(ws: Workspace) -> bool:
    """Whether what is left of ``budget.max_system_runs`` pays for one validation."""
    remaining = ws.remaining_runs()
    return remaining is None or remaining >= ws.validation_runs()


def route_decision(state: LoopState) -> Literal["adapt", "check_stop"]:
    return "adapt" if Decision.from_json(state["decision"] or {}).accepted else "check_stop"


def adapt(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Accept the change, then keep the LRF aligned: fresh trajectories on a mini-batch,
    fresh pairs, a few steps mixed with the replay buffer (unless ``adapt_lrf`` is off or
    there is no LRF). The fresh trajectories are run whenever another round may follow
    (they are the next rounds' recorded inputs; after the last iteration nothing reads
    them); pairs and LRF steps only while some live knob's proposer still ranks with the
    LRF (``Workspace.nodes_using_lrf``), and only for nodes the first pairs step did not
    leave out (``loop.pair_plan``)."""
    ws = runtime.context.job(state)
    decision, iteration = Decision.from_json(state["decision"] or {}), state["iteration"]
    knobs = {**state["current_knobs"], **{k: c.new for k, c in decision.changes.items()}}
    update: dict[str, Any] = {
        "current_knobs": knobs, "current_config_id": decision.config_id, "current_val": decision.val_proposed,
        "current_val_scores": decision.scores, "rounds_without_gain": 0, "rejected": [],
        "history": [entry(decision)]}
    if iteration >= ws.config.budget.max_iterations:  # no round after this one would read them
        return update
    batch = ws.sample_train(ws.config.adapt_examples, f"adapt:{iteration}")
    share = _round_runs(ws, state, iteration + 1)  # the update spends from the next round's share
    if share is not None:
        batch = batch[:share]
    fresh = []
    if batch:
        config_id = decision.config_id or state["current_config_id"]
        ws.run(batch, knobs, config_id, purpose="collect")
        batch += _reach_new_nodes(ws, batch, knobs, config_id, share)
    nodes = ws.nodes_using_lrf(knobs) if batch and ws.config.adapt_lrf and state.get("lrf_path") else []
    first_plan = entries(state.get("history"), PairsCollected)[:1]
    nodes = [n for n in nodes if not first_plan or n not in first_plan[0].left_out]
    if nodes:
        fresh_config = dataclasses.replace(ws.config.pairs, calls_per_node=None)
        max_runs = None if share is None else share - len(batch)
        fresh, stats = ws.collect_pairs(knobs, fresh_config, f"adapt{iteration}", [e.key for e in batch],
                                        nodes=nodes, max_runs=max_runs)
        update["history"].append(entry(_pairs_record(ws, stats, nodes, max_runs)))  # fresh headroom for pick_node
    if not fresh:
        return update
    event = ws.rewards.adapt(fresh, f"adapt{iteration}", iteration)
    return {**update, "lrf_path": ws.rewards.path, "history": [*update["history"], entry(event)]}


def _reach_new_nodes(ws: Workspace, batch: list[Example], knobs: dict[str, Any], config_id: int,
                     share: int | None) -> list[Example]:
    """More training examples, in batches of the adapt batch's size, until every node the
    accepted change newly reaches (it ran in validation, in no training run) has recorded
    inputs, or the training set or the round's ``share`` of runs runs out; those run."""
    ran = {e.key for e in batch}
    rest = [e for e in ws.sample_train(len(ws.trainset), "reach") if e.key not in ran]
    extra: list[Example] = []
    while rest and ws.unrecorded_nodes(config_id):
        size = len(batch) if share is None else min(len(batch), share - len(batch) - len(extra))
        if size <= 0:
            break
        chunk, rest = rest[:size], rest[size:]
        ws.run(chunk, knobs, config_id, purpose="collect")
        extra += chunk
    return extra


def check_stop(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Stop when a budget limit is reached, or when another round would likely end past
    ``max_seconds`` or could not be validated; otherwise go round again."""
    ws = runtime.context.job(state)
    decision = Decision.from_json(state["decision"] or {})
    rounds = 0 if decision.accepted else state.get("rounds_without_gain", 0) + 1
    spent = Spent.from_json(state.get("spent") or {})
    slowest = max(state.get("slowest_round", 0.0), spent.seconds - state.get("round_started", spent.seconds))
    reason = _stop_reason(ws, spent, rounds, slowest)
    ws.store.add_event(ws.job_id, spent.kind, spent.to_json(), iteration=state["iteration"])
    update: dict[str, Any] = {"rounds_without_gain": rounds, "stop_reason": reason, "slowest_round": slowest}
    if not decision.accepted:
        update["history"] = [entry(decision)]
        update["rejected"] = [*(state.get("rejected") or []),
                              *({"lrf": state.get("lrf_path"), "changes": c} for c in rejected_changes(decision))]
    return update


def _stop_reason(ws: Workspace, spent: Spent, rounds_without_gain: int, slowest_round: float) -> str | None:
    """Why no further round may start: a budget limit reached, no time for a round as slow as
    the slowest so far, or too few runs left to validate one."""
    budget = ws.config.budget
    reason = budget.stop_reason(spent, rounds_without_gain) or budget.no_time_for_a_round(spent.seconds,
                                                                                            slowest_round)
    if reason is None and not _can_validate(ws):
        limits = [f"max_system_runs {budget.max_system_runs}"] if budget.max_system_runs is not None else []
        if budget.max_cost is not None:
            limits.append(f"max_cost {budget.max_cost:g} USD, {spent.cost:g} USD spent")
        reason = (f"budget reached: {ws.remaining_runs()} system runs left, fewer than one validation "
                  f"({ws.validation_runs()} runs; {'; '.join(limits)})")
    return reason


def rejected_changes(decision: Decision) -> list[dict[str, Any]]:
    """The changes (``{knob: value}``) a rejected decision tried: each gate step's, or the
    whole change when it was tried in one step; none when it was never validated (``n`` 0)."""
    if not decision.n:
        return []
    new = {k: c.new for k, c in decision.changes.items()}
    tried = [{k: new[k] for k in step.knobs if k in new} for step in decision.steps]
    return [c for c in tried if c] or ([new] if new else [])


def route_stop(state: LoopState) -> Literal["pick_node", "final"]:
    return "final" if state.get("stop_reason") else "pick_node"


def route_round(state: LoopState) -> Literal["propose", "final"]:
    return "final" if state.get("stop_reason") else "propose"


def final(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    """Score the best config on the test set, record the outcome and write the report."""
    ws = runtime.context.job(state)
    test_after = None
    if ws.testset:
        test = ws.evaluate("test", "final", state["current_knobs"], state["current_config_id"])
        test_after = _record(ws, test, state["iteration"]).mean
    outcome = Final(state["initial_config_id"], state["current_config_id"], state["baseline_val"],
                    state["current_val"], state.get("test_before"), test_after, state.get("stop_reason"))
    ws.store.add_event(ws.job_id, outcome.kind, outcome.to_json())
    ws.store.finish_job(ws.job_id, "done")
    report = None
    if ws.config.write_report:
        from optimas_lg.loop.report import report_dir, write_report  # matplotlib only when a report is made

        report = str(write_report(ws.store, ws.job_id, report_dir(ws.store, ws.job_id)))
    return {"test_after": test_after, "report": report}
